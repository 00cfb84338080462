"""Which ticket a message continues, if any.

Headers first: a reply to one of our outbound messages joins its ticket whoever sends
it (a colleague copied on our answer may follow up); a reply to one of the customer's
own messages joins only for that customer. Then the reference in the subject, which
anybody can type, and so is trusted only from the ticket's own customer.
"""

from __future__ import annotations

from typing import NamedTuple

from consultant.mail.parse import ParsedMessage
from consultant.tickets.references import reference_in
from consultant.tickets.rows import Pending, RowWriter


class Thread(NamedTuple):
    ticket_id: int | Pending  # Pending: opened earlier in the same batch
    customer_id: int
    status: str


def referenced_ids(parsed: ParsedMessage) -> list[str]:
    """The Message-IDs a message answers, newest first."""
    return list(dict.fromkeys((*reversed(parsed.in_reply_to), *reversed(parsed.references))))


def find_thread(w: RowWriter, parsed: ParsedMessage, customer_id: int | None) -> Thread | None:
    for message_id in referenced_ids(parsed):
        for direction, ticket_id in w.tickets_of(message_id):
            ticket = w.ticket(ticket_id)
            if ticket is None:
                continue
            owner, status = ticket
            if direction == "outbound" or owner == customer_id:
                return Thread(ticket_id, owner, status)
    reference = reference_in(parsed.subject)
    if reference is not None and customer_id is not None:
        ticket = w.ticket(reference)
        if ticket is not None and ticket[0] == customer_id:
            return Thread(reference, ticket[0], ticket[1])
    return None
