"""Ingestion benchmark: IMAP messages into tickets per second, against mbsync on the same mail.

Run: python bench/ingest.py [--messages 2000] [--batch-size 200] [--no-postgres] [--profile F]

A private Dovecot gets the same N made-up coding questions in several users' INBOXes
(untimed). Then, timed: `mbsync` (isync) pulls an INBOX to a fresh Maildir, the whole
command, the practical limit of IMAP fetch on this machine (median of --mbsync-runs
passes, each on a mailbox of its own, so none reads from a warm index); the real poller
(MailboxPoller.run_once: batch FETCH, one transaction per batch, MOVE to Processed)
stores another INBOX into a fresh SQLite file and, unless --no-postgres, a third into a
fresh PostgreSQL database (on 127.0.0.1:5432 if it answers, else a private cluster),
dropped afterwards. Each poller runs in its own process, logging as `consultant poll`
does (to a file here), so its peak RSS is its own; its time is run_once alone, without
interpreter start and schema migration, which a long-running poller pays once. The
issue's goal: the poller within 2.5x of mbsync. --profile FILE adds a separate
SQLite run under cProfile, writes its stats to FILE and prints where the time went.
Prints figures; exits non-zero only if a run lost or doubled messages.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from consultant.config import IngestConfig, MailboxConfig
from consultant.database.migrate import open_database
from consultant.mail.imap_poller import MailboxPoller
from consultant.mail.parse import parse_message
from consultant.tickets.intake import Intake, Outcome
from consultant.tickets.models import Ticket

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/ingest.py` puts bench/, not the root, first
    sys.path.insert(0, str(ROOT))

from tests.mailmaker import question  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.postgres import postgres_server  # noqa: E402

GOAL = 2.5  # the issue: the poller within 2.5x of mbsync
MESSAGES_PER_SENDER = 20  # under the default rate limit (30 an hour): every message opens a ticket
HTML_SHARE = 0.35
TIME = "/usr/bin/time"  # GNU time (Debian package `time`), for mbsync's peak RSS

# Every clinic, person, phone number and case below is made up.
CLINICS = [
    ("Lakeside Orthopedics", "lakeside-ortho.example"),
    ("Riverbend Family Medicine", "riverbendfm.example"),
    ("North Valley Cardiology", "nvcardio.example"),
    ("Cedar Hill Pediatrics", "cedarhillpeds.example"),
    ("Harbor Point Dermatology", "harborderm.example"),
    ("Summit Internal Medicine", "summit-im.example"),
    ("Prairie Wound Care Center", "prairiewound.example"),
    ("Bayview Gastroenterology", "bayviewgi.example"),
    ("Oak Ridge Physical Therapy", "oakridgept.example"),
    ("Maple Street Urology", "maplest-uro.example"),
    ("Westfield Sleep Clinic", "westfieldsleep.example"),
    ("Granite Peak Pulmonology", "granitepulm.example"),
]
FIRST = ["Dana", "Lee", "Morgan", "Avery", "Jordan", "Casey", "Riley", "Quinn", "Parker", "Sam"]
LAST = ["Coder", "Biller", "Reyes", "Okafor", "Lindqvist", "Novak", "Haddad", "Tran", "Moreau"]
TITLES = ["CPC, Coding Specialist", "Billing Manager", "CCS, HIM Coder", "Revenue Cycle Lead"]
DIAGNOSES = [
    ("E11.65", "type 2 diabetes with hyperglycemia"),
    ("I50.23", "acute on chronic systolic heart failure"),
    ("M17.11", "primary osteoarthritis of the right knee"),
    ("S52.531A", "a closed Colles' fracture of the right radius, initial encounter"),
    ("L89.153", "a stage 3 pressure ulcer of the sacral region"),
    ("J44.1", "COPD with acute exacerbation"),
    ("N40.1", "BPH with lower urinary tract symptoms"),
    ("G47.33", "obstructive sleep apnea"),
    ("K21.9", "GERD without esophagitis"),
    ("F33.1", "major depressive disorder, recurrent, moderate"),
]
PROCEDURES = ["99213", "99214", "99215", "20610", "29881", "29877", "11042", "97110", "45378"]
SUPPLIES = ["J1100", "J3301", "G0439", "A6212", "E0601"]
MODIFIERS = ["25", "59", "XS", "RT", "LT", "50", "GA", "KX", "TC", "26"]
SUBJECTS = [
    "Question about {dx}",
    "Coding question: {cpt} with {dx}",
    "Modifier {mod} on {cpt}?",
    "{cpt} + {cpt2} same day",
    "Denial for {cpt} - which diagnosis?",
    "Is {dx} billable?",
    "{supply} documentation",
    "Help with claim for {cpt}",
]
QUESTIONS = [
    "We saw an established patient with {dxname} and also did {cpt} in the same visit. "
    "Can we bill {cpt2} with modifier {mod}, or does the payer bundle it?",
    "The provider documented {dxname} but our encoder suggests a different code than "
    "{dx}. Which one should go first on the claim, and is {dx} specific enough?",
    "Our claim for {cpt} came back denied with remark code N479. The note supports "
    "{dxname}. Do we need modifier {mod}, or a different diagnosis pointer?",
    "Is {supply} still valid this year, and does it need the {mod} modifier when the "
    "documentation is on file? The payer's policy page is not clear on it.",
    "For {cpt} done on both sides, do we report one line with modifier 50 or two lines "
    "with RT and LT? This payer has rejected both ways before.",
    "The visit note is for {dxname}, follow-up after six weeks. Does the history and exam "
    "support {cpt} or should it be {cpt2}? The provider spent about 35 minutes.",
]
DETAILS = [
    "For context: the patient (a made-up case, 58 years old) was seen on 10/14 for the "
    "follow-up, labs were reviewed, and the plan changed after the visit.",
    "The procedure note says the injection was done under ultrasound guidance, and the "
    "supply was taken from office stock rather than billed by the pharmacy.",
    "We checked the NCCI edits and found a pair edit with modifier indicator 1, so a "
    "modifier is allowed if the documentation supports a separate service.",
    "This is the third time this month we have had this question from our providers, so "
    "a short explanation we can forward to them would help a lot.",
    "The claim has not been filed yet; we are holding it until we hear back. Timely "
    "filing for this payer is 90 days, so there is no rush this week.",
    "Attached to the chart is the operative report, but nothing else from the hospital; "
    "the discharge summary has not come over yet.",
]
ANSWERS = [
    "Thanks for the question. Based on the note you described, {dx} is billable and "
    "specific enough; list it first because it is the reason for the visit.",
    "Short answer: yes, with modifier {mod}, as long as the note shows a separately "
    "identifiable service. Keep the documentation with the claim in case of review.",
    "{cpt} and {cpt2} are bundled for this payer, so only one is paid unless the second "
    "service was on a different site; in that case modifier XS is the better choice.",
    "The denial is about the diagnosis pointer, not the procedure. Point {cpt} to {dx} "
    "and resubmit as a corrected claim (frequency code 7).",
]
FOOTER = (
    "CONFIDENTIALITY NOTICE: This e-mail and any attachments are for the sole use of the "
    "intended recipient(s) and may contain confidential information. If you are not the "
    "intended recipient, please contact the sender by reply e-mail and destroy all copies "
    "of the original message."
)
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]


@dataclass(frozen=True)
class Sender:
    name: str
    address: str
    clinic: str
    title: str
    phone: str


def senders(count: int) -> list[Sender]:
    """COUNT distinct made-up coders spread over the clinics."""
    people = []
    for i in range(count):
        clinic, domain = CLINICS[i % len(CLINICS)]
        first = FIRST[(i + i // len(CLINICS)) % len(FIRST)]  # still one per (clinic, i)
        last = LAST[(i // (len(CLINICS) * len(FIRST))) % len(LAST)]
        cycle = i // (len(CLINICS) * len(FIRST) * len(LAST))
        local = f"{first}.{last}{cycle or ''}".lower()
        people.append(
            Sender(
                name=f"{first} {last}",
                address=f"{local}@{domain}",
                clinic=clinic,
                title=TITLES[i % len(TITLES)],
                phone=f"(555) 01{i % 100:02d}-{1000 + i % 9000}",
            )
        )
    return people


def _fill(template: str, rng: random.Random) -> str:
    dx, dxname = rng.choice(DIAGNOSES)
    cpt, cpt2 = rng.sample(PROCEDURES, 2)
    return template.format(
        dx=dx,
        dxname=dxname,
        cpt=cpt,
        cpt2=cpt2,
        mod=rng.choice(MODIFIERS),
        supply=rng.choice(SUPPLIES),
    )


def _signature(sender: Sender) -> str:
    return (
        f"--\n{sender.name}, {sender.title}\n{sender.clinic}\n"
        f"Phone {sender.phone} | Fax (555) 0199-0000\n\n{FOOTER}"
    )


def _history(rng: random.Random, sender: Sender) -> str:
    """Quoted history as mail clients write it: our earlier answer, then their question."""
    answer = "\n".join(_fill(rng.choice(ANSWERS), rng) for _ in range(rng.randint(1, 2)))
    earlier = "\n\n".join(_fill(rng.choice(QUESTIONS), rng) for _ in range(rng.randint(1, 2)))
    day = rng.choice(DAYS)
    inner = f"On {day}, Oct {rng.randint(1, 28)}, 2026 at 9:{rng.randint(10, 59)} AM {sender.name} "
    inner += f"<{sender.address}> wrote:\n{earlier}\n\n{_signature(sender)}"
    quoted_inner = "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
    outer = f"{answer}\n\nCaseConsultant coding desk\n\n{quoted_inner}"
    lines = "\n".join(f"> {line}".rstrip() for line in outer.splitlines())
    return (
        f"On {day}, Oct {rng.randint(1, 28)}, 2026 at 2:{rng.randint(10, 59)} PM "
        f"CaseConsultant <consult@caseconsultant.example> wrote:\n{lines}"
    )


def _html(own: str, history: str, sender: Sender) -> str:
    """An Outlook-ish HTML alternative of the same text."""
    paragraphs = "".join(
        f'<p class="MsoNormal" style="margin:0 0 8pt 0">{p.replace(chr(10), "<br>")}</p>'
        for p in own.split("\n\n")
    )
    quoted = history.replace("\n", "<br>\n")
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "<style>p.MsoNormal{margin:0;font-family:Calibri,sans-serif}</style></head>"
        f'<body lang="EN-US"><div class="WordSection1">{paragraphs}'
        f'<div style="font-size:9pt;color:#555"><b>{sender.name}</b> | {sender.title}<br>'
        f"{sender.clinic}<br>Phone {sender.phone}<br><small>{FOOTER}</small></div>"
        f'<blockquote style="border-left:1px solid #ccc;padding-left:8px">{quoted}</blockquote>'
        "</div></body></html>"
    )


def generate(count: int, seed: int = 2026) -> list[bytes]:
    """COUNT varied made-up questions with CRLF line ends, as they travel over IMAP."""
    rng = random.Random(seed)
    people = senders(max(1, -(-count // MESSAGES_PER_SENDER)))
    messages = []
    for i in range(count):
        sender = people[i % len(people)]
        subject = _fill(rng.choice(SUBJECTS), rng)
        own = [f"Hi {rng.choice(['all', 'team', 'there'])},"]
        target = rng.randint(2000, 3000)
        reply = rng.random() < 0.6
        history = _history(rng, sender) if reply else ""
        size = len(history) + len(_signature(sender))
        while size < target or len(own) < 3:
            paragraph = _fill(rng.choice(QUESTIONS + DETAILS), rng)
            own.append(paragraph)
            size += len(paragraph) + 2
        own.append(f"Thanks,\n{sender.name.split()[0]}")
        body = "\n\n".join(own) + "\n\n" + _signature(sender)
        if history:
            body += "\n\n" + history
        thread = [f"<ans-{i}-{n}@caseconsultant.example>" for n in range(rng.randint(1, 3))]
        raw = question(
            body + "\n",
            sender=sender.address,
            name=sender.name,
            subject=f"Re: {subject}" if reply else subject,
            message_id=f"<bench-{seed}-{i}@{sender.address.partition('@')[2]}>",
            in_reply_to=thread[-1] if reply else None,
            references=" ".join(thread) if reply else None,
            headers={
                "Received": f"from mail.{sender.address.partition('@')[2]} (10.0.{i % 250}.7) "
                "by mx.caseconsultant.example with ESMTPS; Mon, 2 Nov 2026 15:30:02 +0000",
                "X-Mailer": rng.choice(["Microsoft Outlook 16.0", "Thunderbird 128.3", "Gmail"]),
                "Content-Language": "en-US",
            },
        )
        if rng.random() < HTML_SHARE:
            message = message_from_bytes(raw, policy=policy.default)
            assert isinstance(message, EmailMessage)
            message.add_alternative(_html("\n\n".join(own), history, sender), subtype="html")
            raw = message.as_bytes()
        messages.append(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return messages


# --- measuring ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM, which starts afresh at exec, unlike ru_maxrss) or current
    (VmRSS) resident memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/self/status; this bench needs Linux")


class TimedIntake(Intake):
    """Intake that records how long each batch's parse-and-commit takes."""

    def __init__(self, engine: Engine, config: IngestConfig) -> None:
        super().__init__(engine, config)
        self.batch_seconds: list[float] = []

    def accept_batch(
        self,
        raws: Sequence[bytes],
        source: str,
        *,
        also: Callable[[Session], None] | None = None,
    ) -> list[Outcome]:
        start = time.perf_counter()
        try:
            return super().accept_batch(raws, source, also=also)
        finally:
            self.batch_seconds.append(time.perf_counter() - start)


def poll_child(spec: dict) -> None:
    """One poller pass in this (fresh) process; prints its figures as JSON."""
    logging.basicConfig(
        filename=spec["log"],
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    engine = open_database(spec["url"])
    intake = TimedIntake(engine, IngestConfig())
    mailbox = MailboxConfig(
        name=spec["user"],
        host=spec["host"],
        port=spec["port"],
        username=spec["user"],
        password=spec["password"],
        tls="none",
        batch_size=spec["batch_size"],
        idle=False,
    )
    poller = MailboxPoller(mailbox, intake)
    start_rss = rss_mb("VmRSS")
    profiler = cProfile.Profile() if spec["profile"] else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    stored = poller.run_once()
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - start
    if profiler is not None:
        profiler.dump_stats(spec["profile"])
    with Session(engine) as session:
        tickets = session.exec(select(func.count()).select_from(Ticket)).one()
    engine.dispose()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "stored": stored,
                "tickets": tickets,
                "batches": intake.batch_seconds,
                "start_rss_mb": start_rss,
                "peak_rss_mb": rss_mb(),
            }
        )
    )


@dataclass(frozen=True)
class PollResult:
    label: str
    user: str
    seconds: float
    start_rss_mb: float
    peak_rss_mb: float
    batches: list[float]
    stored: int
    tickets: int


def poll(
    label: str,
    server: Dovecot,
    user: str,
    url: str,
    batch_size: int,
    tmp: Path,
    profile: Path | None = None,
) -> PollResult:
    spec = {
        "host": server.host,
        "port": server.port("none"),
        "user": user,
        "password": server.password(user),
        "url": url,
        "batch_size": batch_size,
        "log": str(tmp / f"{user}.log"),
        "profile": str(profile) if profile else None,
    }
    done = subprocess.run(  # the spec on stdin keeps the password out of `ps`
        [sys.executable, __file__, "--child"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {label} pass failed:\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return PollResult(
        label,
        user,
        figures["seconds"],
        figures["start_rss_mb"],
        figures["peak_rss_mb"],
        figures["batches"],
        figures["stored"],
        figures["tickets"],
    )


def mbsync(server: Dovecot, user: str, tmp: Path) -> tuple[float, float, int]:
    """mbsync pulling USER's INBOX into a fresh Maildir: seconds, peak RSS in MB, files written.

    GNU time reports mbsync's own peak RSS; the ru_maxrss of a child this process forks
    directly would start at this process's size.
    """
    maildir = tmp / f"{user}-maildir"
    config = tmp / f"{user}.mbsyncrc"
    config.write_text(server.mbsync_config(user, server.password(user), maildir))
    rss = tmp / f"{user}.rss"
    start = time.perf_counter()
    done = subprocess.run(
        [TIME, "-f", "%M", "-o", str(rss), "mbsync", "-q", "-c", str(config), "-a"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mbsync failed with status {done.returncode}:\n{done.stderr}")
    files = sum(1 for sub in ("cur", "new") for p in (maildir / sub).iterdir() if p.is_file())
    return seconds, int(rss.read_text().split()[-1]) / 1024, files


# Where a profiled function's own time goes, by the path of its file; the first match wins.
AREAS = (
    (
        "IMAP: imapclient, sockets, poller",
        ("imapclient/", "imaplib", "socket", "ssl", "mail/imap_"),
    ),
    (
        "parsing: email, re, consultant.mail, nh3",
        ("/email/", "/re/", "consultant/mail/", "/encodings/"),
    ),
    (
        "SQL: SQLAlchemy, driver, intake rules",
        (
            "sqlalchemy/",
            "sqlmodel/",
            "psycopg",
            "consultant/tickets/",
            "consultant/database/",
            "/json/",
        ),
    ),
    ("logging", ("/logging/", "consultant/logs.py")),
)


def profile_summary(
    path: Path, title: str, areas: Sequence[tuple[str, Sequence[str]]] = AREAS, top: int = 15
) -> None:
    """Own time by area (AREAS: label and path parts, the first match wins; a C
    function's time goes to its callers' areas), then the slowest of our own functions by
    cumulative time: names nothing, so it survives refactoring."""

    def area_of(file: str) -> str:
        return next((label for label, parts in areas if any(p in file for p in parts)), "other")

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    spent: dict[str, float] = {}
    for (file, _, _), (_, _, own, _, callers) in stats.items():
        if file != "~":
            spent[area_of(file)] = spent.get(area_of(file), 0.0) + own
            continue
        weight = sum(c[3] for c in callers.values()) or 1.0
        for (caller_file, _, _), c in callers.items():
            area = "other" if caller_file == "~" else area_of(caller_file)
            spent[area] = spent.get(area, 0.0) + own * c[3] / weight
    total = sum(spent.values())
    print(f"{title}: {path}")
    for area, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"{area:<52} {seconds:7.2f} s  {100 * seconds / total:5.1f}%")
    ours = [
        (value[3], value[1], f"{Path(file).parent.name}/{Path(file).name}:{line} {name}")
        for (file, line, name), value in stats.items()
        if "/consultant/" in file
    ]
    print(f"-- our {top} slowest functions, cumulative")
    for cumulative, calls, where in sorted(ours, reverse=True)[:top]:
        print(
            f"{where:<60} {cumulative:7.2f} s  {100 * cumulative / total:5.1f}%  {calls:>8,} calls"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=MailboxConfig.batch_size)
    parser.add_argument(
        "--postgres",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also poll into a fresh PostgreSQL database (default: yes)",
    )
    parser.add_argument(
        "--mbsync-runs",
        type=int,
        default=3,
        help="mbsync passes, each on its own mailbox; the median is the reference (default: 3)",
    )
    parser.add_argument("--profile", type=Path, help="also profile a SQLite pass into this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.messages, args.batch_size, args.mbsync_runs) < 1:
        parser.error("--messages, --batch-size and --mbsync-runs must be at least 1")
    if args.child:
        poll_child(json.load(sys.stdin))
        return

    messages = generate(args.messages)
    sizes = [len(m) for m in messages]
    html = sum(b"text/html" in m for m in messages)
    start = time.perf_counter()
    for raw in messages:
        parse_message(raw)
    parse_seconds = time.perf_counter() - start

    syncs = [f"mbsync{i}" for i in range(1, args.mbsync_runs + 1)]
    users = [*syncs, "sqlite"] + (["postgres"] if args.postgres else [])
    users += ["profile"] if args.profile else []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as name, Dovecot() as server:
        tmp = Path(name)
        for user in users:
            server.add_user(user, secrets.token_urlsafe(12))
            result = server.append(user, "INBOX", messages)
            if result.refused or len(result.uids) != len(messages):
                raise SystemExit(f"Dovecot refused messages for {user}: {result.refused}")

        synced = sorted(mbsync(server, user, tmp) for user in syncs)
        sync_seconds, sync_rss, _ = synced[len(synced) // 2]
        for _, _, files in synced:
            if files != len(messages):
                failures.append(f"mbsync wrote {files} files, not {len(messages)}")
        sqlite = f"sqlite:///{tmp}/tickets.sqlite"
        runs = [poll("poller -> SQLite", server, "sqlite", sqlite, args.batch_size, tmp)]
        pg_note = ""
        if args.postgres:
            with postgres_server() as pg, pg.database() as url:
                runs.append(
                    poll("poller -> PostgreSQL", server, "postgres", url, args.batch_size, tmp)
                )
                pg_note = "private cluster" if pg.private else f"{pg.host}:{pg.port}"
        checked = list(runs)
        if args.profile:
            profiled = f"sqlite:///{tmp}/profile.sqlite"
            checked.append(
                poll("profiled", server, "profile", profiled, args.batch_size, tmp, args.profile)
            )
        for run in checked:
            inbox = server.folder_uids(run.user, "INBOX")
            processed = server.folder_uids(run.user, "Processed")
            if run.stored != len(messages) or run.tickets != len(messages):
                failures.append(f"{run.label}: stored {run.stored}, tickets {run.tickets}")
            if inbox or len(processed) != len(messages):
                failures.append(f"{run.label}: INBOX {len(inbox)}, Processed {len(processed)}")

    n = len(messages)
    version = subprocess.run(["mbsync", "--version"], capture_output=True, text=True).stdout
    print(
        f"== {n:,} messages ({min(sizes) / 1024:.1f}-{max(sizes) / 1024:.1f} KB, "
        f"mean {sum(sizes) / n / 1024:.1f} KB, {html:,} with an HTML part), "
        f"batch size {args.batch_size}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'':<24}{'seconds':>8}{'msg/s':>8}{'x mbsync':>10}{'RSS MB start':>14}{'peak':>6}"
        f"{'batch p50 ms':>14}{'p99':>6}{'in batches s':>14}{'rest s':>8}"
    )
    label = f"mbsync ({version.strip()})"
    runs_text = ", ".join(f"{seconds:.2f}" for seconds, _, _ in synced)
    print(f"{label:<24}{sync_seconds:8.2f}{n / sync_seconds:8.0f}{1:10.2f}{'':>14}{sync_rss:6.0f}")
    for run in runs:
        in_batches = sum(run.batches)
        print(
            f"{run.label:<24}{run.seconds:8.2f}{n / run.seconds:8.0f}"
            f"{run.seconds / sync_seconds:10.2f}{run.start_rss_mb:14.0f}{run.peak_rss_mb:6.0f}"
            f"{percentile(run.batches, 0.5) * 1000:14.0f}"
            f"{percentile(run.batches, 0.99) * 1000:6.0f}"
            f"{in_batches:14.2f}{run.seconds - in_batches:8.2f}"
        )
    print(
        f"{'parse_message alone':<24}{parse_seconds:8.2f}{n / parse_seconds:8.0f}"
        f"{parse_seconds / sync_seconds:10.2f}  (in-process, no IMAP, no database)"
    )
    print(
        "'start': the poller's RSS after imports and schema check; 'batch': one "
        "Intake.accept_batch (parse + SQL + commit); 'rest': IMAP SEARCH/FETCH/MOVE and leases."
    )
    print(f"mbsync passes, each on its own mailbox: {runs_text} s; the median is the reference.")
    if pg_note:
        print(f"PostgreSQL: a fresh database on {pg_note}, dropped afterwards.")
    worst = max(run.seconds / sync_seconds for run in runs)
    verdict = "within" if worst <= GOAL else f"{worst / GOAL:.1f}x over"
    print(f"goal: within {GOAL}x of mbsync; slowest poller run is {worst:.2f}x ({verdict})")
    if args.profile:
        profile_summary(
            args.profile,
            "== profile of a separate SQLite pass under cProfile (slower than unprofiled)",
        )
    if failures:
        raise SystemExit("check FAILED: " + "; ".join(failures))
    print(f"check: {n:,} tickets per database, every INBOX empty, {n:,} in each Processed: ok")


if __name__ == "__main__":
    main()
