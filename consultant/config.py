"""Configuration from TOML.

Nothing is required: with no file at all the service runs on the embedded default
(everything under one data directory on this machine).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

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


def _path(value: object, key: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _int(table: dict, key: str, prefix: str, default: int, low: int, high: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{prefix}.{key} must be a whole number from {low} to {high}")
    return value


def _seconds(table: dict, key: str, prefix: str, default: float, high: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
        raise ConfigError(f"{prefix}.{key} must be a number of seconds from 0 to {high:g}")
    return float(value)


def _str(table: dict, key: str, prefix: str, default: str | None = None) -> str | None:
    value = table.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{prefix}.{key} must be a string")
    return value


def _strings(table: dict, key: str, prefix: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{prefix}.{key} must be a list of non-empty strings")
    return tuple(v.strip().lower() for v in value)


def _ingest(table: dict) -> IngestConfig:
    not_allowed = _str(table, "not_allowed", "ingest", "hold")
    if not_allowed not in ("hold", "decline"):
        raise ConfigError('ingest.not_allowed must be "hold" or "decline"')
    return IngestConfig(
        max_message_bytes=_int(table, "max_message_bytes", "ingest", 50 << 20, 1024, 1 << 31),
        max_attachment_bytes=_int(table, "max_attachment_bytes", "ingest", 25 << 20, 0, 1 << 31),
        rate_limit=_int(table, "rate_limit", "ingest", 30, 0, 100_000),
        rate_window_minutes=_int(table, "rate_window_minutes", "ingest", 60, 1, 7 * 24 * 60),
        allow=_strings(table, "allow", "ingest"),
        not_allowed=not_allowed,
        our_addresses=_strings(table, "our_addresses", "ingest"),
        due_hours=_int(table, "due_hours", "ingest", 24, 1, 24 * 365),
        extract_max_bytes=_int(table, "extract_max_bytes", "ingest", 64 << 20, 1024, 1 << 31),
        extract_seconds=_seconds(table, "extract_seconds", "ingest", 20, 3600),
    )


def _mailbox(table: object, index: int, base: Path) -> MailboxConfig:
    prefix = f"mailboxes[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{prefix} must be a table ([[mailboxes]])")
    for key in ("name", "host", "username"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise ConfigError(f"{prefix}.{key} is required (a non-empty string)")
    tls = _str(table, "tls", prefix, "implicit")
    if tls not in TLS_MODES:
        raise ConfigError(f"{prefix}.tls must be one of {', '.join(TLS_MODES)}")
    secrets = [k for k in ("password", "password_command", "oauth2_token_command") if k in table]
    if len(secrets) != 1:
        raise ConfigError(
            f"{prefix} needs exactly one of password, password_command or oauth2_token_command"
        )
    verify = table.get("verify_tls", True)
    idle = table.get("idle", True)
    if not isinstance(verify, bool) or not isinstance(idle, bool):
        raise ConfigError(f"{prefix}.verify_tls and {prefix}.idle must be true or false")
    processed = _str(table, "processed_folder", prefix, "Processed")
    return MailboxConfig(
        name=table["name"],
        host=table["host"],
        username=table["username"],
        port=_int(table, "port", prefix, 143 if tls != "implicit" else 993, 1, 65535),
        password=_str(table, "password", prefix),
        password_command=_str(table, "password_command", prefix),
        oauth2_token_command=_str(table, "oauth2_token_command", prefix),
        tls=tls,
        verify_tls=verify,
        ca_file=_path(table["ca_file"], f"{prefix}.ca_file", base) if "ca_file" in table else None,
        folder=_str(table, "folder", prefix, "INBOX") or "INBOX",
        processed_folder=processed or None,
        processed_flag=_str(table, "processed_flag", prefix) or "$CaseConsultant",
        batch_size=_int(table, "batch_size", prefix, 200, 1, 10_000),
        idle=idle,
        poll_interval=_seconds(table, "poll_interval", prefix, 60, 3600),
        timeout=_seconds(table, "timeout", prefix, 60, 3600),
        lease_seconds=_seconds(table, "lease_seconds", prefix, 60, 3600),
    )


def _mailboxes(value: object, base: Path) -> tuple[MailboxConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError("mailboxes must be an array of tables ([[mailboxes]])")
    mailboxes = tuple(_mailbox(table, i, base) for i, table in enumerate(value))
    names = [m.name for m in mailboxes]
    if len(set(names)) != len(names):
        raise ConfigError("mailboxes[].name must be unique: the poller's lock is per name")
    return mailboxes


def _smtpd(table: dict) -> SmtpdConfig:
    return SmtpdConfig(
        host=_str(table, "host", "smtpd", "127.0.0.1") or "127.0.0.1",
        port=_int(table, "port", "smtpd", 8025, 0, 65535),
        recipients=_strings(table, "recipients", "smtpd"),
    )


def _queue(table: dict, data_dir: Path) -> QueueConfig:
    return QueueConfig(
        broker_url=_str(table, "broker_url", "queue")
        or f"sqla+sqlite:///{data_dir / 'queue.sqlite'}",
        sweep_seconds=_seconds(table, "sweep_seconds", "queue", 30, 86400),
        task_time_limit=_seconds(table, "task_time_limit", "queue", 300, 86400),
    )


def _smtp(table: dict, base: Path) -> SmtpConfig:
    if "host" not in table:
        return SmtpConfig()
    tls = _str(table, "tls", "smtp", "starttls")
    if tls not in TLS_MODES:
        raise ConfigError(f"smtp.tls must be one of {', '.join(TLS_MODES)}")
    if "password" in table and "password_command" in table:
        raise ConfigError("smtp needs at most one of password and password_command")
    if ("password" in table or "password_command" in table) and "username" not in table:
        raise ConfigError("smtp.username is required when a password is set")
    verify = table.get("verify_tls", True)
    if not isinstance(verify, bool):
        raise ConfigError("smtp.verify_tls must be true or false")
    default_port = {"starttls": 587, "implicit": 465, "none": 25}[tls]
    return SmtpConfig(
        host=_str(table, "host", "smtp") or None,
        port=_int(table, "port", "smtp", default_port, 1, 65535),
        tls=tls,
        verify_tls=verify,
        ca_file=_path(table["ca_file"], "smtp.ca_file", base) if "ca_file" in table else None,
        username=_str(table, "username", "smtp"),
        password=_str(table, "password", "smtp"),
        password_command=_str(table, "password_command", "smtp"),
        timeout=_seconds(table, "timeout", "smtp", 60, 3600),
    )


def _networks(table: dict, key: str, prefix: str) -> tuple[str, ...]:
    """IP addresses and networks, checked and normalized ("10.0.0.0/8", "::1")."""
    networks = []
    for value in _strings(table, key, prefix):
        try:
            networks.append(str(ipaddress.ip_network(value, strict=False)))
        except ValueError:
            raise ConfigError(
                f"{prefix}.{key}: {value!r} is not an IP address or network like 10.0.0.0/8"
            ) from None
    return tuple(networks)


def _hours(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 720:
        raise ConfigError("web.session_hours must be a number of hours from 0 to 720")
    return float(value)


def _web(table: dict) -> WebConfig:
    secret = _str(table, "secret_key", "web")
    if secret is not None and len(secret) < 32:
        raise ConfigError(
            "web.secret_key must be at least 32 characters; make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
        )
    public_url = _str(table, "public_url", "web")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise ConfigError("web.public_url must start with https:// (or http://)")
    return WebConfig(
        host=_str(table, "host", "web", "127.0.0.1") or "127.0.0.1",
        port=_int(table, "port", "web", 8000, 0, 65535),
        secret_key=secret,
        public_url=public_url,
        session_hours=_hours(table.get("session_hours", 12)),
        trusted_proxies=_networks(table, "trusted_proxies", "web"),
    )


def _address(value: str | None, key: str) -> str:
    """An addr-spec fit for a From header: one @, no spaces, no line breaks."""
    if (
        not value
        or value.count("@") != 1
        or any(c.isspace() or c in '<>,;:"()[]\\' for c in value)
        or not all(value.split("@"))
    ):
        raise ConfigError(f"{key} must be a plain email address like consult@example.com")
    return value.lower()


def _delivery(
    table: dict, data_dir: Path, base: Path, ingest: IngestConfig, service_name: str
) -> DeliveryConfig:
    default_from = ingest.our_addresses[0] if ingest.our_addresses else "consult@localhost"
    acknowledge = table.get("acknowledge", True)
    if not isinstance(acknowledge, bool):
        raise ConfigError("delivery.acknowledge must be true or false")
    from_name = _str(table, "from_name", "delivery", service_name) or ""
    if any(c in from_name for c in "\r\n"):
        raise ConfigError("delivery.from_name must be one line")
    return DeliveryConfig(
        from_address=_address(
            _str(table, "from_address", "delivery", default_from), "delivery.from_address"
        ),
        from_name=from_name,
        outbox=_path(table["outbox"], "delivery.outbox", base)
        if "outbox" in table
        else data_dir / "outbox",
        acknowledge=acknowledge,
        max_attempts=_int(table, "max_attempts", "delivery", 8, 1, 100),
        retry_seconds=_seconds(table, "retry_seconds", "delivery", 60, 3600),
        sent_mailbox=_str(table, "sent_mailbox", "delivery"),
        sent_folder=_str(table, "sent_folder", "delivery", "Sent") or "Sent",
        max_recipients=_int(table, "max_recipients", "delivery", 10, 1, 1000),
    )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read PATH, else $CONSULTANT_CONFIG, else use the embedded default."""
    chosen = path or os.environ.get(ENV_CONFIG)
    data: dict = {}
    source: Path | None = None
    if chosen:
        source = Path(chosen).expanduser()
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"config file {source} does not exist; create it from config.example.toml "
                f"or unset {ENV_CONFIG} to use the embedded default"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
    base = source.resolve().parent if source else Path.cwd()

    paths = _table(data, "paths")
    data_dir = (
        _path(paths["data_dir"], "paths.data_dir", base)
        if "data_dir" in paths
        else default_data_dir()
    )

    codes = _table(data, "codes")
    codes_cfg = CodesConfig(
        database=_path(codes["database"], "codes.database", base)
        if "database" in codes
        else data_dir / "codes.sqlite",
    )

    drafting = _table(data, "drafting")
    suggestions = drafting.get("suggestions", 5)
    if not isinstance(suggestions, int) or not 0 <= suggestions <= 50:
        raise ConfigError("drafting.suggestions must be a whole number from 0 to 50")
    drafting_cfg = DraftingConfig(
        templates_dir=_path(drafting["templates_dir"], "drafting.templates_dir", base)
        if "templates_dir" in drafting
        else None,
        suggestions=suggestions,
        service_name=str(drafting.get("service_name", "CaseConsultant")),
    )
    database = _table(data, "database")
    url = _str(database, "url", "database") or f"sqlite:///{data_dir / 'consultant.sqlite'}"
    ingest = _ingest(_table(data, "ingest"))
    delivery = _delivery(
        _table(data, "delivery"), data_dir, base, ingest, drafting_cfg.service_name
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
        codes=codes_cfg,
        database_url=url,
        drafting=drafting_cfg,
        ingest=ingest,
        mailboxes=mailboxes,
        smtp=_smtp(_table(data, "smtp"), base),
        web=_web(_table(data, "web")),
        delivery=delivery,
        smtpd=_smtpd(_table(data, "smtpd")),
        queue=_queue(_table(data, "queue"), data_dir),
        source=source,
    )
