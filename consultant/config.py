"""Configuration from TOML.

Nothing is required: with no file at all the service runs on the embedded default
(everything under one data directory on this machine).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from consultant.mail.addresses import is_addr_spec

ENV_CONFIG = "CONSULTANT_CONFIG"
ENV_HOME = "CONSULTANT_HOME"


class ConfigError(Exception):
    """The configuration file is missing, unreadable or has a wrong value."""


def default_data_dir() -> Path:
    """Where the embedded default keeps its files: $CONSULTANT_HOME, else XDG data home."""
    if home := os.environ.get(ENV_HOME):
        return Path(home)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "caseconsultant"


@dataclass(frozen=True)
class CodesConfig:
    database: Path


@dataclass(frozen=True)
class DraftingConfig:
    templates_dir: Path | None = None
    suggestions: int = 5
    service_name: str = "CaseConsultant"


@dataclass(frozen=True)
class IngestConfig:
    """Limits and rules every ingress (IMAP, pipe, SMTP) applies the same way."""

    max_message_bytes: int = 50 * 1024 * 1024
    max_attachment_bytes: int = 25 * 1024 * 1024
    rate_limit: int = 30  # messages per sender per window; 0 turns the limit off
    rate_window_minutes: int = 60
    allow: tuple[str, ...] = ()  # addresses and domains; empty means everyone
    not_allowed: str = "hold"  # or "decline"
    our_addresses: tuple[str, ...] = ()
    # The authserv-id our receiving mail server writes in Authentication-Results: only
    # its results are believed. Unset: the topmost header, which that server adds.
    authserv_id: str | None = None
    due_hours: int = 24  # a new or reopened ticket is due this long after it arrives
    # Text extraction from attachments (PDF): the most its content may decompress to,
    # and the wall-clock time one message's attachments may take.
    extract_max_bytes: int = 64 * 1024 * 1024
    extract_seconds: float = 20.0


TLS_MODES = ("none", "starttls", "implicit")


@dataclass(frozen=True)
class MailboxConfig:
    name: str
    host: str
    username: str
    port: int = 993
    password: str | None = None
    password_command: str | None = None
    oauth2_token_command: str | None = None
    tls: str = "implicit"
    verify_tls: bool = True
    ca_file: Path | None = None
    folder: str = "INBOX"
    processed_folder: str | None = "Processed"
    processed_flag: str = "$CaseConsultant"
    batch_size: int = 200
    idle: bool = True
    poll_interval: float = 60.0
    timeout: float = 60.0
    lease_seconds: float = 60.0  # how long a dead poller blocks its successor at most


@dataclass(frozen=True)
class SmtpdConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    recipients: tuple[str, ...] = ()  # addresses or "@domain"; empty accepts any


@dataclass(frozen=True)
class QueueConfig:
    """Where drafting and delivery tasks wait for a worker."""

    broker_url: str
    sweep_seconds: float = 30.0  # how often tickets that missed the queue are found
    task_time_limit: float = 300.0


@dataclass(frozen=True)
class SmtpConfig:
    """The server replies leave through; with no host they go to the Maildir outbox."""

    host: str | None = None
    port: int = 587
    tls: str = "starttls"
    verify_tls: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    password_command: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class DeliveryConfig:
    """How answers go out: who they are from, retries, the outbox and the Sent copy."""

    from_address: str
    outbox: Path  # the Maildir replies go to when [smtp] has no host
    from_name: str = "CaseConsultant"
    acknowledge: bool = True  # send every new ticket's customer its reference at once
    max_attempts: int = 8  # transient failures (4xx, no connection) before it is failed
    retry_seconds: float = 60.0  # the first retry's delay; it doubles, up to an hour
    sent_mailbox: str | None = None  # a [[mailboxes]] name whose Sent folder gets a copy
    sent_folder: str = "Sent"
    max_recipients: int = 10  # addresses one message may go to (To and Cc together)


@dataclass(frozen=True)
class WebConfig:
    """The review app. Without a secret_key, one is made once and kept in the data
    directory (readable by its owner only)."""

    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str | None = None
    public_url: str | None = None  # https://... marks session cookies Secure
    session_hours: float = 12.0
    # Addresses (or networks, "10.0.0.0/8") of reverse proxies whose X-Forwarded-For
    # is believed; none by default, so a client cannot pick its own address.
    trusted_proxies: tuple[str, ...] = ()

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https://"))


@dataclass(frozen=True)
class Config:
    data_dir: Path
    codes: CodesConfig
    database_url: str
    queue: QueueConfig
    delivery: DeliveryConfig
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    web: WebConfig = field(default_factory=WebConfig)
    drafting: DraftingConfig = field(default_factory=DraftingConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    mailboxes: tuple[MailboxConfig, ...] = ()
    smtpd: SmtpdConfig = field(default_factory=SmtpdConfig)
    source: Path | None = None

    def mailbox(self, name: str) -> MailboxConfig:
        for mailbox in self.mailboxes:
            if mailbox.name == name:
                return mailbox
        known = ", ".join(m.name for m in self.mailboxes) or "none"
        raise ConfigError(f"no mailbox named {name!r} in the config (configured: {known})")


class _Section:
    """One table of the file: typed reads of its keys, each error naming the key.

    A key the table does not have is an error, naming the nearest one it has: a typo
    (`hostname` for `host`) must not quietly leave a setting at its default.
    """

    def __init__(self, data: object, name: str, known: type | Iterable[str]) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"[{name}] must be a table")
        keys = [f.name for f in fields(known)] if isinstance(known, type) else list(known)
        for key in data:
            if key not in keys:
                raise ConfigError(_unknown(f"{name}.{key}", [f"{name}.{k}" for k in keys]))
        self.data = data
        self.name = name

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def _key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def int(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{self._key(key)} must be a whole number from {low} to {high}")
        return value

    def seconds(self, key: str, default: float, high: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
            raise ConfigError(f"{self._key(key)} must be a number of seconds from 0 to {high:g}")
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(key)} must be true or false")
        return value

    def str(self, key: str, default: str | None = None) -> str | None:
        """A one-line string (a value with a line break could end up in a header)."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f'{self._key(key)} must be a string in quotes, like "{value}"')
        if any(c in value for c in "\r\n\x00"):
            raise ConfigError(f"{self._key(key)} must be one line")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(key, default)
        if value not in choices:
            quoted = [f'"{c}"' for c in choices]
            allowed = " or ".join(quoted) if len(quoted) == 2 else "one of " + ", ".join(quoted)
            raise ConfigError(f"{self._key(key)} must be {allowed}, not {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self._key(key)} must be a list of non-empty strings")
        return tuple(v.strip().lower() for v in value)

    def path(self, key: str, base: Path, default: Path | None = None) -> Path | None:
        """A path, relative to the config file's folder unless absolute."""
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self._key(key)} must be a non-empty string path")
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path

    def networks(self, key: str) -> tuple[str, ...]:
        """IP addresses and networks, checked and normalized ("10.0.0.0/8", "::1")."""
        networks = []
        for value in self.strings(key):
            try:
                networks.append(str(ipaddress.ip_network(value, strict=False)))
            except ValueError:
                raise ConfigError(
                    f"{self._key(key)}: {value!r} is not an IP address or network like 10.0.0.0/8"
                ) from None
        return tuple(networks)


def _unknown(key: str, known: list[str]) -> str:
    nearest = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {nearest[0]}?" if nearest else "valid keys: " + ", ".join(known)
    return f"unknown key {key}: {hint}"


TABLES = (
    "paths",
    "codes",
    "drafting",
    "database",
    "ingest",
    "mailboxes",
    "smtpd",
    "queue",
    "smtp",
    "delivery",
    "web",
)


def _tables(data: dict) -> dict[str, object]:
    for name in data:
        if name not in TABLES:
            nearest = difflib.get_close_matches(name, TABLES, n=1, cutoff=0.6)
            hint = f"did you mean [{nearest[0]}]?" if nearest else "tables: " + ", ".join(TABLES)
            raise ConfigError(f"unknown table [{name}]: {hint}")
    return data


def _ingest(table: _Section) -> IngestConfig:
    return IngestConfig(
        max_message_bytes=table.int("max_message_bytes", 50 << 20, 1024, 1 << 31),
        max_attachment_bytes=table.int("max_attachment_bytes", 25 << 20, 0, 1 << 31),
        rate_limit=table.int("rate_limit", 30, 0, 100_000),
        rate_window_minutes=table.int("rate_window_minutes", 60, 1, 7 * 24 * 60),
        allow=table.strings("allow"),
        not_allowed=table.choice("not_allowed", "hold", ("hold", "decline")),
        our_addresses=table.strings("our_addresses"),
        authserv_id=table.str("authserv_id"),
        due_hours=table.int("due_hours", 24, 1, 24 * 365),
        extract_max_bytes=table.int("extract_max_bytes", 64 << 20, 1024, 1 << 31),
        extract_seconds=table.seconds("extract_seconds", 20, 3600),
    )


SECRETS = ("password", "password_command", "oauth2_token_command")


def _mailbox(data: object, index: int, base: Path) -> MailboxConfig:
    prefix = f"mailboxes[{index}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix} must be a table ([[mailboxes]])")
    table = _Section(data, prefix, MailboxConfig)
    for key in ("name", "host", "username"):
        if not table.str(key):
            raise ConfigError(f"{prefix}.{key} is required (a non-empty string)")
    tls = table.choice("tls", "implicit", TLS_MODES)
    if sum(key in table for key in SECRETS) != 1:
        raise ConfigError(
            f"{prefix} needs exactly one of password, password_command or oauth2_token_command"
        )
    return MailboxConfig(
        name=data["name"],
        host=data["host"],
        username=data["username"],
        port=table.int("port", 143 if tls != "implicit" else 993, 1, 65535),
        password=table.str("password"),
        password_command=table.str("password_command"),
        oauth2_token_command=table.str("oauth2_token_command"),
        tls=tls,
        verify_tls=table.bool("verify_tls", True),
        ca_file=table.path("ca_file", base),
        folder=table.str("folder", "INBOX") or "INBOX",
        processed_folder=table.str("processed_folder", "Processed") or None,
        processed_flag=table.str("processed_flag") or "$CaseConsultant",
        batch_size=table.int("batch_size", 200, 1, 10_000),
        idle=table.bool("idle", True),
        poll_interval=table.seconds("poll_interval", 60, 3600),
        timeout=table.seconds("timeout", 60, 3600),
        lease_seconds=table.seconds("lease_seconds", 60, 3600),
    )


def _mailboxes(value: object, base: Path) -> tuple[MailboxConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError("mailboxes must be an array of tables ([[mailboxes]])")
    mailboxes = tuple(_mailbox(table, i, base) for i, table in enumerate(value))
    names = [m.name for m in mailboxes]
    if len(set(names)) != len(names):
        raise ConfigError("mailboxes[].name must be unique: the poller's lock is per name")
    return mailboxes


def _smtpd(table: _Section) -> SmtpdConfig:
    return SmtpdConfig(
        host=table.str("host", "127.0.0.1") or "127.0.0.1",
        port=table.int("port", 8025, 0, 65535),
        recipients=table.strings("recipients"),
    )


BROKERS = ("redis", "rediss", "sqlite")


def _broker_url(table: _Section, data_dir: Path) -> str:
    url = table.str("broker_url") or f"sqlite:///{data_dir / 'queue.sqlite'}"
    scheme = url.partition("://")[0]
    if scheme.startswith("sqla+"):
        raise ConfigError(
            "queue.broker_url: kombu's SQLAlchemy transport is no longer the embedded "
            "queue; use sqlite:///PATH (or remove broker_url for the default)"
        )
    if "://" not in url or scheme not in BROKERS or (scheme == "sqlite" and "///" not in url):
        raise ConfigError(
            "queue.broker_url must be redis://HOST:6379/0, rediss://... or sqlite:///PATH "
            f"(the embedded queue), not {url!r}"
        )
    return url


def _queue(table: _Section, data_dir: Path) -> QueueConfig:
    return QueueConfig(
        broker_url=_broker_url(table, data_dir),
        sweep_seconds=table.seconds("sweep_seconds", 30, 86400),
        task_time_limit=table.seconds("task_time_limit", 300, 86400),
    )


def _smtp(table: _Section, base: Path) -> SmtpConfig:
    if not table.data:
        return SmtpConfig()
    if not table.str("host"):
        raise ConfigError(
            "smtp.host is required in [smtp] (without [smtp], replies go to the Maildir outbox)"
        )
    tls = table.choice("tls", "starttls", TLS_MODES)
    if "password" in table and "password_command" in table:
        raise ConfigError("smtp needs at most one of password and password_command")
    if ("password" in table or "password_command" in table) and "username" not in table:
        raise ConfigError("smtp.username is required when a password is set")
    default_port = {"starttls": 587, "implicit": 465, "none": 25}[tls]
    return SmtpConfig(
        host=table.str("host"),
        port=table.int("port", default_port, 1, 65535),
        tls=tls,
        verify_tls=table.bool("verify_tls", True),
        ca_file=table.path("ca_file", base),
        username=table.str("username"),
        password=table.str("password"),
        password_command=table.str("password_command"),
        timeout=table.seconds("timeout", 60, 3600),
    )


def _web(table: _Section) -> WebConfig:
    secret = table.str("secret_key")
    if secret is not None and len(secret) < 32:
        raise ConfigError(
            "web.secret_key must be at least 32 characters; make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
        )
    public_url = table.str("public_url")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise ConfigError("web.public_url must start with https:// (or http://)")
    hours = table.data.get("session_hours", 12)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 720:
        raise ConfigError("web.session_hours must be a number of hours from 0 to 720")
    return WebConfig(
        host=table.str("host", "127.0.0.1") or "127.0.0.1",
        port=table.int("port", 8000, 0, 65535),
        secret_key=secret,
        public_url=public_url,
        session_hours=float(hours),
        trusted_proxies=table.networks("trusted_proxies"),
    )


def _address(value: str | None, key: str) -> str:
    """An addr-spec fit for a From header."""
    if not value or not is_addr_spec(value):
        raise ConfigError(f"{key} must be a plain email address like consult@example.com")
    return value.lower()


def _delivery(
    table: _Section, data_dir: Path, base: Path, ingest: IngestConfig, service_name: str
) -> DeliveryConfig:
    default_from = ingest.our_addresses[0] if ingest.our_addresses else "consult@localhost"
    return DeliveryConfig(
        from_address=_address(table.str("from_address", default_from), "delivery.from_address"),
        from_name=table.str("from_name", service_name) or "",
        outbox=table.path("outbox", base, data_dir / "outbox") or data_dir / "outbox",
        acknowledge=table.bool("acknowledge", True),
        max_attempts=table.int("max_attempts", 8, 1, 100),
        retry_seconds=table.seconds("retry_seconds", 60, 3600),
        sent_mailbox=table.str("sent_mailbox"),
        sent_folder=table.str("sent_folder", "Sent") or "Sent",
        max_recipients=table.int("max_recipients", 10, 1, 1000),
    )


def _drafting(table: _Section, base: Path) -> DraftingConfig:
    service_name = table.str("service_name", "CaseConsultant")
    if not service_name or len(service_name) > 100:
        raise ConfigError("drafting.service_name must be a name of 1 to 100 characters")
    return DraftingConfig(
        templates_dir=table.path("templates_dir", base),
        suggestions=table.int("suggestions", 5, 0, 50),
        service_name=service_name,
    )


def _database_url(table: _Section, data_dir: Path) -> str:
    url = table.str("url") or f"sqlite:///{data_dir / 'consultant.sqlite'}"
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        backend = None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            "database.url must be an SQLAlchemy URL like "
            "postgresql+psycopg://user:password@host/database or sqlite:///path/file.sqlite"
        )
    return url


def _read(source: Path) -> dict:
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {source} does not exist; create it from config.example.toml "
            f"or unset {ENV_CONFIG} to use the embedded default"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {source} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {source} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read PATH, else $CONSULTANT_CONFIG, else use the embedded default."""
    chosen = path or os.environ.get(ENV_CONFIG)
    source = Path(chosen).expanduser() if chosen else None
    data = _tables(_read(source)) if source else {}
    base = source.resolve().parent if source else Path.cwd()

    def section(name: str, known: type | Iterable[str]) -> _Section:
        return _Section(data.get(name, {}), name, known)

    data_dir = section("paths", ("data_dir",)).path("data_dir", base) or default_data_dir()
    codes = section("codes", CodesConfig).path("database", base) or data_dir / "codes.sqlite"
    drafting = _drafting(section("drafting", DraftingConfig), base)
    ingest = _ingest(section("ingest", IngestConfig))
    delivery = _delivery(
        section("delivery", DeliveryConfig), data_dir, base, ingest, drafting.service_name
    )
    if delivery.from_address not in ingest.our_addresses:
        # Our own From address is ours: mail from it is never taken for a question.
        ingest = replace(ingest, our_addresses=(*ingest.our_addresses, delivery.from_address))
    mailboxes = _mailboxes(data.get("mailboxes", []), base)
    if delivery.sent_mailbox is not None and delivery.sent_mailbox not in {
        m.name for m in mailboxes
    }:
        raise ConfigError(
            f"delivery.sent_mailbox {delivery.sent_mailbox!r} names no [[mailboxes]] entry"
        )
    return Config(
        data_dir=data_dir,
        codes=CodesConfig(database=codes),
        database_url=_database_url(section("database", ("url",)), data_dir),
        drafting=drafting,
        ingest=ingest,
        mailboxes=mailboxes,
        smtp=_smtp(section("smtp", SmtpConfig), base),
        web=_web(section("web", WebConfig)),
        delivery=delivery,
        smtpd=_smtpd(section("smtpd", SmtpdConfig)),
        queue=_queue(section("queue", QueueConfig), data_dir),
        source=source,
    )
