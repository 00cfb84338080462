"""A private Dovecot IMAP server for tests and the ingest benchmark.

`Dovecot` is a context manager: it writes its own configuration into a fresh directory (never
/etc/dovecot), starts `dovecot -F` on free loopback ports with a plain, a STARTTLS and an
implicit-TLS listener, certificates from a throwaway `trustme` CA, users from a passwd-file,
Maildir storage and XOAUTH2/OAUTHBEARER checked against a loopback token-introspection server.
Leaving the block kills every process of the instance and deletes its directory.

What Dovecot 2.3 makes of odd messages (measured on the email corpus): it refuses only
zero-byte messages. Everything else is stored; FETCH BODY[] returns it with CRLF line ends
(LF-only lines converted), NUL bytes as 0x80, and without a CR that directly precedes a line
end or ends the message; CR-only line breaks, 8-bit headers, lines over 998 octets and 3 MB
messages come back otherwise unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple, Self
from urllib.parse import parse_qs

import trustme
from imapclient import IMAPClient, imap_utf7

from tests.servers.children import tied_to_this_process
from tests.servers.ports import LOOPBACK, free_ports

TlsMode = Literal["none", "starttls", "implicit"]

DOVECOT = "/usr/sbin/dovecot"
CONFIG_NAME = "dovecot.conf"
START_TIMEOUT = 20.0
START_ATTEMPTS = 3
STOP_TIMEOUT = 10.0
USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
APPENDUID = re.compile(rb"\[APPENDUID \d+ ([\d:,]+)\]")
BATCH_BYTES = 32 * 1024 * 1024
MAX_BATCH = 1000


class DovecotError(RuntimeError):
    """Dovecot did not start, stop or answer the way a test needs."""


class Ports(NamedTuple):
    plain: int
    starttls: int
    imaps: int


@dataclass(frozen=True)
class AppendResult:
    """What the server holds after `Dovecot.append`, keyed by position in the input.

    `uids` maps each stored message to its UID in the folder; `refused` maps each message the
    server refused to its tagged answer, e.g. "NO Can't save a zero byte message".
    """

    uids: dict[int, int] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Identity:
    """Whom Dovecot's processes and mail files belong to."""

    login_user: str
    internal_user: str
    internal_group: str
    mail_uid: int
    mail_gid: int
    as_root: bool


def _identity() -> _Identity:
    """Root must hand login and mail processes to unprivileged users; others run as themselves.

    As root, Debian's `dovenull` runs the login processes and `dovecot` owns the auth processes
    and the test mail, so no mail is ever accessed as root.
    """
    if os.geteuid() == 0:
        try:
            internal = pwd.getpwnam("dovecot")
            pwd.getpwnam("dovenull")
        except KeyError as exc:
            raise DovecotError(
                f"system user {exc} is missing; install Debian's dovecot-core (dovecot-imapd)"
            ) from exc
        return _Identity(
            login_user="dovenull",
            internal_user="dovecot",
            internal_group=grp.getgrgid(internal.pw_gid).gr_name,
            mail_uid=internal.pw_uid,
            mail_gid=internal.pw_gid,
            as_root=True,
        )
    me = pwd.getpwuid(os.geteuid())
    return _Identity(
        login_user=me.pw_name,
        internal_user=me.pw_name,
        internal_group=grp.getgrgid(os.getegid()).gr_name,
        mail_uid=me.pw_uid,
        mail_gid=os.getegid(),
        as_root=False,
    )


def _config(root: Path, who: _Identity, ports: Ports) -> str:
    """dovecot.conf: everything under `root`, nothing read from /etc/dovecot."""
    # Without root there is no chroot and no changing users: every service runs as us.
    anvil_chroot = "" if who.as_root else "  chroot =\n"
    auth_worker = (
        ""
        if who.as_root
        else """service auth-worker {
  user = $default_internal_user
}
"""
    )
    login_chroot = "" if who.as_root else "  chroot =\n"
    return f"""# Private test instance written by tests/servers/dovecot.py
instance_name = {root.name}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {LOOPBACK}
ssl = yes
ssl_cert = <{root}/tls/server.pem
ssl_key = <{root}/tls/server.key
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login xoauth2 oauthbearer
default_login_user = {who.login_user}
default_internal_user = {who.internal_user}
default_internal_group = {who.internal_group}
first_valid_uid = {who.mail_uid}
last_valid_uid = {who.mail_uid}
first_valid_gid = {who.mail_gid}
last_valid_gid = {who.mail_gid}
mail_location = maildir:~/Maildir
mail_fsync = never
protocol imap {{
  mail_max_userip_connections = 500
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = {root}/users/%u
}}
userdb {{
  driver = passwd-file
  args = {root}/users/%u
}}
service imap-login {{
{login_chroot}  inet_listener imap {{
    port = {ports.plain}
  }}
  inet_listener imap_starttls {{
    port = {ports.starttls}
  }}
  inet_listener imaps {{
    port = {ports.imaps}
    ssl = yes
  }}
}}
# Tests fail logins on purpose; without this, anvil would slow down every later login from
# 127.0.0.1 (for all users) by up to 15 s.
service anvil {{
{anvil_chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{auth_worker}"""


def _oauth2_config(introspection_url: str) -> str:
    """The oauth2 passdb's args file: every bearer token is checked by introspection."""
    return f"""introspection_url = {introspection_url}
introspection_mode = post
username_attribute = username
active_attribute = active
active_value = true
"""


class _Introspection(ThreadingHTTPServer):
    """OAuth2 token introspection (RFC 7662) for tokens a test registered."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _IntrospectionHandler)
        self.tokens: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/introspect"


class _IntrospectionHandler(BaseHTTPRequestHandler):
    server: _Introspection

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode("ascii", "replace"))
        token = form.get("token", [""])[0]
        user = self.server.tokens.get(token)
        body = json.dumps(
            {"active": "true", "username": user} if user else {"active": "false"}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Tokens stay out of the test output."""


def instance_processes(root: Path) -> list[int]:
    """Live processes of the Dovecot instance kept in `root`.

    Its services title themselves "<instance_name>/<service>"; the master, and children it
    has forked but not yet turned into services, still show the master's command line.
    """
    titled = f"{root.name}/".encode()
    master = "\0".join([DOVECOT, "-F", "-c", str(root / CONFIG_NAME)]).encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            text = cmdline.read_bytes()
            if text.startswith((titled, master)):
                found.append(int(cmdline.parent.name))
    return found


class Dovecot:
    """A private Dovecot on 127.0.0.1; use as `with Dovecot({"alice": "pw"}) as server:`.

    Started from the main thread, the master dies with this process (its services follow it),
    so even a killed test run leaves no Dovecot running.
    """

    host = LOOPBACK

    def __init__(self, users: Mapping[str, str] | None = None) -> None:
        self._initial_users = dict(users or {})
        self._users: dict[str, str] = {}
        self._who = _identity()
        self._root: Path | None = None
        self._ports: Ports | None = None
        self._master: subprocess.Popen[bytes] | None = None
        self._introspection: _Introspection | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._master is not None:
            raise DovecotError("this Dovecot is already running; stop() it first")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
        self._root = root
        self._users = {}
        root.chmod(0o755)  # the mail and auth users must reach their files
        if self._who.as_root:
            for parent in root.parents:
                if not parent.stat().st_mode & stat.S_IXOTH:
                    raise DovecotError(
                        f"{parent} is not searchable by Dovecot's users; point TMPDIR at a "
                        "world-searchable directory such as /tmp"
                    )
        for sub in ("run", "state", "tls", "home"):
            (root / sub).mkdir(mode=0o755)
        self._write_tls(root / "tls")
        self._introspection = _Introspection()
        threading.Thread(
            target=self._introspection.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="dovecot-introspection",
            daemon=True,
        ).start()
        (root / "users").mkdir(mode=0o700)
        self._give_to_internal(root / "users")
        for name, password in self._initial_users.items():
            self.add_user(name, password)
        oauth2 = root / "oauth2.conf.ext"
        oauth2.write_text(_oauth2_config(self._introspection.url))
        oauth2.chmod(0o644)
        for attempt in range(1, START_ATTEMPTS + 1):
            # Another process may grab a port between picking and binding it: pick anew.
            self._ports = Ports(*free_ports(3))
            self.config_path.write_text(_config(root, self._who, self._ports))
            if self._launch(last=attempt == START_ATTEMPTS):
                return

    def _launch(self, last: bool) -> bool:
        """Start the master; False if it exited early and another attempt may succeed."""
        with (self._base / "dovecot.out").open("ab") as out:
            self._master = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=tied_to_this_process(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(self.ports)
        while pending:
            if self._master.poll() is not None:
                self._master = None
                if last or "Address already in use" not in self.log_text():
                    raise DovecotError(f"dovecot exited at start:\n{self.log_text()}")
                return False
            if time.monotonic() > deadline:
                raise DovecotError(
                    f"dovecot did not listen on {pending} in {START_TIMEOUT}s:\n{self.log_text()}"
                )
            try:
                socket.create_connection((self.host, pending[0]), timeout=1).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Kill every process of the instance, stop the token server and drop the files.

        No graceful shutdown: the mail is thrown away, and Dovecot's own SIGTERM shutdown can
        hang for seconds, leaving processes behind, while clients are still connected.
        """
        master, self._master = self._master, None
        if master is not None:
            master.kill()
            master.wait()
            self._kill_instance()
        if self._introspection is not None:
            self._introspection.shutdown()
            self._introspection.server_close()
            self._introspection = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def _kill_instance(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while processes := instance_processes(self._base):
            if time.monotonic() > deadline:
                raise DovecotError(f"Dovecot processes {processes} survived SIGKILL")
            for pid in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    # -- files -------------------------------------------------------------------------------

    @property
    def _base(self) -> Path:
        if self._root is None:
            raise DovecotError("Dovecot is not running; use it inside its `with` block")
        return self._root

    def _write_tls(self, directory: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert(LOOPBACK, "localhost")
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        cert.private_key_pem.write_to_path(str(directory / "server.key"))
        with (directory / "server.pem").open("wb") as pem:
            for blob in cert.cert_chain_pems:
                pem.write(blob.bytes())
        (directory / "ca.pem").chmod(0o644)

    def _give_to_internal(self, path: Path) -> None:
        """Dovecot's auth process (the internal user) reads the passwd-file."""
        if self._who.as_root:
            internal = pwd.getpwnam(self._who.internal_user)
            os.chown(path, internal.pw_uid, internal.pw_gid)

    # -- properties --------------------------------------------------------------------------

    @property
    def ports(self) -> Ports:
        if self._ports is None:
            raise DovecotError("Dovecot is not running; use it inside its `with` block")
        return self._ports

    def port(self, tls: TlsMode) -> int:
        """The listener for a client's `tls` setting (consultant.config.TLS_MODES)."""
        match tls:
            case "none":
                return self.ports.plain
            case "starttls":
                return self.ports.starttls
            case "implicit":
                return self.ports.imaps
        raise ValueError(f"tls must be none, starttls or implicit, not {tls!r}")

    @property
    def ca_path(self) -> Path:
        """PEM of the CA that signed the server certificate (for 127.0.0.1 and localhost)."""
        return self._base / "tls" / "ca.pem"

    @property
    def config_path(self) -> Path:
        return self._base / CONFIG_NAME

    @property
    def root(self) -> Path:
        """The instance's directory: config, passwd-file, homes, log."""
        return self._base

    def log_text(self) -> str:
        """Dovecot's log and anything the master printed, for failure messages."""
        parts = []
        for name in ("dovecot.out", "dovecot.log"):
            path = self._base / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this server's CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    # -- users and tokens --------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """A mail user with a Maildir home; Dovecot rereads the passwd-file on its next login."""
        if not USER_NAME.fullmatch(name):
            raise ValueError(f"user name {name!r}: use lower-case letters, digits, . _ -")
        if name in self._users:
            raise DovecotError(f"user {name!r} exists already; pick another name")
        home = self._base / "home" / name
        home.mkdir(mode=0o700)
        if self._who.as_root:
            os.chown(home, self._who.mail_uid, self._who.mail_gid)
        secret = base64.b64encode(password.encode()).decode()
        line = f"{name}:{{PLAIN.b64}}{secret}:{self._who.mail_uid}:{self._who.mail_gid}::{home}::\n"
        passwd = self._base / "users" / name
        passwd.write_text(line)
        passwd.chmod(0o600)
        self._give_to_internal(passwd)
        self._users[name] = password

    def add_token(self, user: str, token: str) -> None:
        """Make `token` a valid XOAUTH2/OAUTHBEARER bearer token for `user`."""
        if self._introspection is None:
            raise DovecotError("Dovecot is not running; use it inside its `with` block")
        self._introspection.tokens[token] = user

    def password(self, user: str) -> str:
        try:
            return self._users[user]
        except KeyError:
            raise DovecotError(f"no user {user!r}; add_user() it first") from None

    # -- clients -----------------------------------------------------------------------------

    def connect(self, tls: TlsMode = "none", context: ssl.SSLContext | None = None) -> IMAPClient:
        """A connected, not logged-in client; `context` defaults to one trusting `ca_path`."""
        context = context or self.ssl_context()
        client = IMAPClient(
            self.host, self.port(tls), ssl=tls == "implicit", ssl_context=context, timeout=30
        )
        if tls == "starttls":
            try:
                client.starttls(context)
            except BaseException:
                with contextlib.suppress(OSError):  # a failed handshake may have closed it
                    client.shutdown()
                raise
        return client

    def imap_client(
        self, user: str, password: str | None = None, tls: TlsMode = "none"
    ) -> IMAPClient:
        """A logged-in client; the password defaults to the one given to `add_user`."""
        client = self.connect(tls)
        try:
            client.login(user, self.password(user) if password is None else password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def create_folder(self, user: str, folder: str) -> None:
        with self.imap_client(user) as client:
            client.create_folder(folder)

    def folder_uids(self, user: str, folder: str = "INBOX") -> list[int]:
        with self.imap_client(user) as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def append(
        self, user: str, folder: str, messages: Iterable[bytes], batch: int = 100
    ) -> AppendResult:
        """APPEND every message byte for byte: `batch` messages per MULTIAPPEND command.

        A batch the server refuses is retried one APPEND per message, so the messages it refuses
        (tagged NO/BAD) are reported with its reason instead of raising, and the caller knows
        exactly which messages the folder holds.
        """
        if not 1 <= batch <= MAX_BATCH:
            # The per-message retry pipelines a whole batch; more answers than socket buffers
            # hold would deadlock it.
            raise ValueError(f"batch must be 1 to {MAX_BATCH}, not {batch}")
        result = AppendResult()
        with _RawImap(self.host, self.ports.plain) as raw:
            raw.login(user, self.password(user))
            chunk: list[tuple[int, bytes]] = []
            size = 0
            for index, message in enumerate(messages):
                chunk.append((index, message))
                size += len(message)
                if len(chunk) >= batch or size >= BATCH_BYTES:
                    raw.append_batch(folder, chunk, result)
                    chunk, size = [], 0
            if chunk:
                raw.append_batch(folder, chunk, result)
        return result

    def mbsync_config(self, user: str, password: str, maildir: Path) -> str:
        """isync configuration pulling `user`'s INBOX over plain IMAP into `maildir`.

        Write it to a file and run `mbsync -c FILE -a`; `maildir` gets cur/new/tmp.
        """
        return f"""IMAPAccount test
Host {self.host}
Port {self.ports.plain}
User {_mbsync_quote(user)}
Pass {_mbsync_quote(password)}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Inbox {_mbsync_quote(str(maildir))}

Channel inbox
Far :remote:INBOX
Near :local:INBOX
Sync Pull
Create Near
Expunge None
SyncState *
"""


def _mbsync_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quote(text: str) -> bytes:
    encoded = imap_utf7.encode(text)
    return b'"' + encoded.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class _RawImap:
    """Just enough IMAP to pipeline APPENDs with non-synchronising literals (LITERAL+).

    imapclient sends one message per round trip and rewrites line endings to CRLF; this sends
    the bytes as given, so the server alone decides what it accepts.
    """

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_connection((host, port), timeout=60)
        self._file = self._sock.makefile("rb")
        self._tag = 0
        greeting = self._file.readline()
        if not greeting.startswith(b"* OK"):
            raise DovecotError(f"unexpected IMAP greeting {greeting!r}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
        self._sock.close()

    def _next_tag(self) -> bytes:
        self._tag += 1
        return b"A%d" % self._tag

    def _read_tagged(self, tags: set[bytes]) -> dict[bytes, bytes]:
        answers: dict[bytes, bytes] = {}
        while len(answers) < len(tags):
            line = self._file.readline()
            if not line:
                raise DovecotError("the IMAP server closed the connection during APPEND")
            tag, _, rest = line.partition(b" ")
            if tag in tags:
                answers[tag] = rest.rstrip(b"\r\n")
        return answers

    def login(self, user: str, password: str) -> None:
        tag = self._next_tag()
        sasl = base64.b64encode(f"\0{user}\0{password}".encode())
        self._sock.sendall(tag + b" AUTHENTICATE PLAIN " + sasl + b"\r\n")
        answer = self._read_tagged({tag})[tag]
        if not answer.startswith(b"OK"):
            raise DovecotError(f"login as {user} failed: {answer.decode(errors='replace')}")

    def append_batch(
        self, folder: str, chunk: list[tuple[int, bytes]], result: AppendResult
    ) -> None:
        """One MULTIAPPEND (atomic: all or none); if refused, one APPEND per message."""
        mailbox = _quote(folder)
        tag = self._next_tag()
        out = bytearray(tag + b" APPEND " + mailbox)
        for _, message in chunk:
            out += b" {%d+}\r\n" % len(message)
            out += message
        out += b"\r\n"
        self._sock.sendall(out)
        answer = self._read_tagged({tag})[tag]
        if b"[TRYCREATE]" in answer:
            raise DovecotError(f"folder {folder!r} does not exist; create_folder() it first")
        if answer.startswith(b"OK"):
            uids = _uid_set(answer, len(chunk))
            result.uids.update((index, uid) for (index, _), uid in zip(chunk, uids, strict=True))
        elif len(chunk) == 1:
            result.refused[chunk[0][0]] = answer.decode("utf-8", "replace")
        else:
            self._append_each(mailbox, chunk, result)

    def _append_each(
        self, mailbox: bytes, chunk: list[tuple[int, bytes]], result: AppendResult
    ) -> None:
        tags: dict[bytes, int] = {}
        out = bytearray()
        for index, message in chunk:
            tag = self._next_tag()
            tags[tag] = index
            out += b"%s APPEND %s {%d+}\r\n" % (tag, mailbox, len(message))
            out += message
            out += b"\r\n"
        self._sock.sendall(out)
        for tag, answer in self._read_tagged(set(tags)).items():
            if answer.startswith(b"OK"):
                (result.uids[tags[tag]],) = _uid_set(answer, 1)
            else:
                result.refused[tags[tag]] = answer.decode("utf-8", "replace")


def _uid_set(answer: bytes, count: int) -> list[int]:
    """The `count` UIDs of an APPENDUID response code (RFC 4315), in message order."""
    found = APPENDUID.search(answer)
    uids: list[int] = []
    for part in found.group(1).split(b",") if found else []:
        first, _, last = part.partition(b":")
        uids.extend(range(int(first), int(last or first) + 1))
    if len(uids) != count:
        raise DovecotError(f"APPEND gave no UID for each of {count} messages: {answer!r}")
    return uids


__all__ = ["AppendResult", "Dovecot", "DovecotError", "Ports", "TlsMode"]
