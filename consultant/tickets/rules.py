"""Every decision a message goes through on its way to a ticket, in order.

As in GNU Mailman's rules and chains, each rule is a small named function that looks at
a Candidate (the message and what the intake knows of it) and either decides what
becomes of it or passes it on to the next. RULES lists them in the order they are
asked; the last always decides. Then WARNINGS note what a consultant must see before
answering a message that joins or opens a ticket.

Rules decide; they never store. The intake (tickets.intake) records what they decided,
and which rule decided it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from consultant.config import IngestConfig
from consultant.mail.addresses import domain_of
from consultant.mail.authentication import failed_authentication
from consultant.mail.parse import ParsedMessage
from consultant.tickets.rows import Pending, RowWriter
from consultant.tickets.threading import Thread, find_thread

# Delivery puts this header (our message's id) on everything we send, so a copy that
# comes back forwarded or bounced whole is known for ours even under a new Message-ID.
OUTBOUND_HEADER = "x-caseconsultant-id"
DECLINE_REASON = "declined: the sender is not on the allowlist"
REPLY_TO_CHANGED = "reply-to-changed"
SENDER_UNVERIFIED = "sender-unverified"


def is_allowed(address: str, allow: tuple[str, ...]) -> bool:
    """Whether ADDRESS may open tickets: an empty list allows everyone; entries are
    addresses, or domains ("clinic.example" or "@clinic.example") that also admit
    their subdomains."""
    if not allow:
        return True
    address = address.lower()
    domain = domain_of(address)
    for entry in allow:
        if "@" in entry.lstrip("@"):
            if address == entry:
                return True
            continue
        allowed = entry.lstrip("@")
        if domain == allowed or domain.endswith("." + allowed):
            return True
    return False


def is_ours(address: str | None, config: IngestConfig) -> bool:
    return address is not None and address.lower() in config.our_addresses


@dataclass
class Candidate:
    """A message going through the rules. Rules may note what they found (a reused
    Message-ID gets a key of its own), but never write."""

    w: RowWriter
    config: IngestConfig
    parsed: ParsedMessage | None
    rejection: str | None  # why it could not be parsed
    key: str | None  # what it is stored under: its Message-ID, else its raw hash
    defects: list[str] = field(default_factory=list)
    thread: Thread | None = None

    @property
    def sender(self) -> str | None:
        """Whom the message is from: From, else Reply-To."""
        return self.parsed and (self.parsed.from_address or self.parsed.reply_to)

    @property
    def answer_to(self) -> str | None:
        """Where its sender asks for answers: Reply-To, else From."""
        return self.parsed and (self.parsed.reply_to or self.parsed.from_address)


@dataclass(frozen=True)
class Decision:
    """What becomes of a message: REJECT, DUPLICATE, IGNORE, APPEND, DECLINE, HOLD or
    OPEN. STORE False: the message is stored already (under its key), nothing to add."""

    action: str
    reason: str = ""
    ticket_id: int | Pending | None = None
    store: bool = True
    rule: str = ""


REJECT, DUPLICATE, IGNORE, APPEND, DECLINE, HOLD, OPEN = (
    "reject",
    "duplicate",
    "ignore",
    "append",
    "decline",
    "hold",
    "open",
)

Rule = Callable[[Candidate], Decision | None]


def unparsable(c: Candidate) -> Decision | None:
    """Bytes that are not an email (empty, an Outlook file, over the size limit)."""
    if c.parsed is None or c.key is None:
        return Decision(REJECT, c.rejection or "unparsable")
    return None


def seen_before(c: Candidate) -> Decision | None:
    """The same message twice never makes a second ticket, however it arrives.

    Some senders reuse one Message-ID for different mail (fixed IDs on notifications,
    broken clients): a different message from the same sender is kept beside the first,
    under its ID plus a hash of its content. A different sender's message under someone
    else's Message-ID is a message of its own: it goes on through the rules under such
    a key, and never onto the first one's ticket (which its sender must not learn of).
    """
    assert c.parsed is not None and c.key is not None
    stored = c.w.stored(c.key)
    if stored is None:
        return None
    if stored.direction == "outbound":
        return Decision(IGNORE, "our own outbound message came back", stored.ticket_id, False)
    parsed = c.parsed
    same = (stored.from_address, stored.subject, stored.text) == (
        c.sender,
        parsed.subject,
        parsed.text,
    )
    if parsed.message_id is None or same:
        return Decision(DUPLICATE, "already received", stored.ticket_id, store=False)
    content = hashlib.sha256(
        "\n".join((parsed.from_address or "", parsed.subject, parsed.text)).encode()
    ).hexdigest()
    c.key = f"{parsed.message_id[:900]} content:{content}"
    c.defects.append("reused-message-id")
    again = c.w.stored(c.key)
    if again is not None:
        return Decision(DUPLICATE, "already received", again.ticket_id, store=False)
    if stored.from_address == c.sender:
        reason = "Message-ID already used by a different message; kept beside it"
        return Decision(DUPLICATE, reason, stored.ticket_id)
    return None


def ours_came_back(c: Candidate) -> Decision | None:
    """Our own mail, forwarded or bounced whole under a new Message-ID."""
    assert c.parsed is not None
    if OUTBOUND_HEADER in c.parsed.extra_headers:
        return Decision(IGNORE, f"our own outbound message came back ({OUTBOUND_HEADER} header)")
    return None


def no_sender(c: Candidate) -> Decision | None:
    assert c.parsed is not None
    if c.sender is None and not c.parsed.automated:
        return Decision(REJECT, "no sender address (From or Reply-To) to answer")
    return None


def from_us(c: Candidate) -> Decision | None:
    if is_ours(c.sender, c.config):
        return Decision(IGNORE, "sent from one of our own addresses")
    return None


def automated(c: Candidate) -> Decision | None:
    """Auto-replies, bounces and list mail: kept on their thread, never answered."""
    assert c.parsed is not None
    if not c.parsed.automated:
        return None
    thread = find_thread(c.w, c.parsed, None)
    return Decision(IGNORE, c.parsed.automated, thread.ticket_id if thread else None)


def flooding(c: Candidate) -> Decision | None:
    """Too many messages from one address, or asking for answers at one address: a
    sender cannot make us write to a third party by naming it in Reply-To either."""
    assert c.parsed is not None
    limit = c.config.rate_limit
    if not limit:
        return None
    for address, whose in ((c.sender, "from this sender"), (c.parsed.reply_to, "to this Reply-To")):
        if address and (count := c.w.sent_recently(address)) >= limit:
            return Decision(
                IGNORE,
                f"rate-limited: {count} messages {whose} in "
                f"{c.config.rate_window_minutes} minutes (limit {limit})",
            )
    return None


def reply(c: Candidate) -> Decision | None:
    """A follow-up joins its ticket (threading says which one may)."""
    assert c.parsed is not None and c.sender is not None
    c.thread = find_thread(c.w, c.parsed, c.w.find_customer(c.sender))
    if c.thread is None:
        return None
    return Decision(APPEND, ticket_id=c.thread.ticket_id)


def not_allowed(c: Candidate) -> Decision | None:
    """Senders outside the allowlist are held for a consultant, or declined."""
    assert c.sender is not None
    if is_allowed(c.sender, c.config.allow):
        return None
    if c.config.not_allowed == "decline":
        return Decision(DECLINE, DECLINE_REASON)
    return Decision(HOLD, "held: the sender is not on the allowlist")


def new_question(c: Candidate) -> Decision:
    return Decision(OPEN)


RULES: tuple[Rule, ...] = (
    unparsable,
    seen_before,
    ours_came_back,
    no_sender,
    from_us,
    automated,
    flooding,
    reply,
    not_allowed,
    new_question,
)


def decide(c: Candidate) -> Decision:
    for rule in RULES:
        decision = rule(c)
        if decision is not None:
            return Decision(
                decision.action, decision.reason, decision.ticket_id, decision.store, rule.__name__
            )
    raise AssertionError("the last rule always decides")


Warning = Callable[[Candidate, Decision], str | None]


def new_reply_address(c: Candidate, decision: Decision) -> str | None:
    """A follow-up asking for answers somewhere else than the ticket's address of
    record: answers still go there unless a consultant chooses otherwise."""
    if decision.action != APPEND or decision.ticket_id is None:
        return None
    record = c.w.address_of_record(decision.ticket_id)
    if record is None or c.answer_to is None or c.answer_to == record:
        return None
    return (
        f"{REPLY_TO_CHANGED}: this message asks for answers at {c.answer_to}; the answer "
        f"goes to {record}, the ticket's address of record"
    )


def unverified_sender(c: Candidate, decision: Decision) -> str | None:
    """A From the receiving mail server could not verify: it may be forged."""
    assert c.parsed is not None
    header = c.parsed.extra_headers.get("authentication-results", "")
    if c.parsed.from_address is None:
        return None
    failure = failed_authentication(header, c.parsed.from_address, c.config.authserv_id)
    if failure is None:
        return None
    return (
        f"{SENDER_UNVERIFIED}: the receiving mail server could not verify that "
        f"{c.parsed.from_address} sent this message ({failure}); it may be forged"
    )


WARNINGS: tuple[Warning, ...] = (new_reply_address, unverified_sender)
WARNED = frozenset((APPEND, OPEN, HOLD))


def warnings(c: Candidate, decision: Decision) -> list[str]:
    """What a consultant must confirm before answering the message, if it joins or
    opens a ticket."""
    if decision.action not in WARNED:
        return []
    return [w for check in WARNINGS if (w := check(c, decision)) is not None]
