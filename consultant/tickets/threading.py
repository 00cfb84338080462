"""Which ticket a message continues, if any.

Headers first: a reply to one of our outbound messages joins its ticket whoever sends
it (a colleague copied on our answer may follow up); a reply to one of the customer's
own messages joins only for that customer. Then the reference in the subject, which
anybody can type, and so is trusted only from the ticket's own customer.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlmodel import Session, col, select

from consultant.mail.parse import ParsedMessage
from consultant.tickets.models import Message, Ticket
from consultant.tickets.references import reference_in


class Thread(NamedTuple):
    ticket_id: int
    status: str


def find_thread(session: Session, parsed: ParsedMessage, customer_id: int | None) -> Thread | None:
    ids = list(dict.fromkeys((*reversed(parsed.in_reply_to), *reversed(parsed.references))))
    if ids:
        rows = session.exec(
            select(
                Message.message_id, Message.direction, Ticket.id, Ticket.customer_id, Ticket.status
            )
            .join(Ticket, col(Message.ticket_id) == Ticket.id)
            .where(col(Message.message_id).in_(ids))
        ).all()
        by_id = {row[0]: row[1:] for row in rows}
        for message_id in ids:  # newest reference first
            if message_id not in by_id:
                continue
            direction, ticket_id, owner, status = by_id[message_id]
            if direction == "outbound" or owner == customer_id:
                return Thread(ticket_id, status)
    reference = reference_in(parsed.subject)
    if reference is not None and customer_id is not None:
        row = session.exec(
            select(Ticket.id, Ticket.status).where(
                Ticket.id == reference, Ticket.customer_id == customer_id
            )
        ).first()
        if row is not None:
            return Thread(row[0], row[1])
    return None
