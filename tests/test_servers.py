"""The real servers the suite starts itself: private Dovecot and fresh PostgreSQL databases."""

from __future__ import annotations

import email
import os
import pwd
import ssl
import subprocess
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.servers.dovecot import Dovecot, DovecotError, TlsMode, instance_processes
from tests.servers.postgres import PostgresServer, postgres_server, shared_server

pytest_plugins = ("tests.servers.fixtures",)

TLS_MODES: tuple[TlsMode, ...] = ("none", "starttls", "implicit")


def message(number: int, body: bytes = b"Hello from a made-up patient.\r\n") -> bytes:
    return (
        b"From: Pat Example <pat@example.com>\r\nTo: coding@example.org\r\n"
        b"Subject: question %d\r\nMessage-ID: <%d@example.com>\r\n\r\n" % (number, number)
    ) + body


def fetch(dovecot: Dovecot, user: str, folder: str, uids: list[int]) -> dict[int, bytes]:
    with dovecot.imap_client(user) as client:
        client.select_folder(folder, readonly=True)
        return {uid: data[b"BODY[]"] for uid, data in client.fetch(uids, ["BODY.PEEK[]"]).items()}


# -- Dovecot: listeners and TLS --------------------------------------------------------------


@pytest.mark.parametrize("tls", TLS_MODES)
def test_login_over_each_listener_verifies_the_test_ca(
    dovecot: Dovecot, mail_user: str, tls: TlsMode
) -> None:
    with dovecot.imap_client(mail_user, dovecot.password(mail_user), tls=tls) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
        assert isinstance(client.socket(), ssl.SSLSocket) is (tls != "none")


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_tls_without_the_test_ca_fails_verification(dovecot: Dovecot, tls: TlsMode) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        dovecot.connect(tls, context=ssl.create_default_context())


def test_capabilities(dovecot: Dovecot, mail_user: str) -> None:
    plain = IMAPClient(dovecot.host, dovecot.ports.starttls, ssl=False)
    try:
        assert b"STARTTLS" in plain.capabilities()
    finally:
        plain.shutdown()
    with dovecot.imap_client(mail_user) as client:
        assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= set(client.capabilities())


def test_wrong_password_is_refused(dovecot: Dovecot, mail_user: str) -> None:
    with pytest.raises(LoginError):
        dovecot.imap_client(mail_user, "not-the-password")


def test_mail_belongs_to_an_unprivileged_user(dovecot: Dovecot, mail_user: str) -> None:
    dovecot.append(mail_user, "INBOX", [message(1)])
    maildir = dovecot.root / "home" / mail_user / "Maildir"
    expected = pwd.getpwnam("dovecot").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert {path.stat().st_uid for path in [maildir, *maildir.rglob("*")]} == {expected}


# -- Dovecot: XOAUTH2 ------------------------------------------------------------------------


def test_xoauth2_accepts_a_registered_token_only(dovecot: Dovecot, mail_user: str) -> None:
    token = f"token-for-{mail_user}"
    dovecot.add_token(mail_user, token)
    with dovecot.connect("implicit") as client:
        client.oauth2_login(mail_user, token)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    with dovecot.connect("implicit") as client:
        client.oauthbearer_login(mail_user, token)
    with dovecot.connect("implicit") as client, pytest.raises(LoginError):
        client.oauth2_login(mail_user, "some-other-token")


def test_xoauth2_token_of_another_user_is_refused(dovecot: Dovecot, mail_user: str) -> None:
    dovecot.add_token("someone-else", "their-token")
    with dovecot.connect() as client, pytest.raises(LoginError):
        client.oauth2_login(mail_user, "their-token")


# -- Dovecot: IDLE and MOVE ------------------------------------------------------------------


def test_idle_sees_a_message_appended_over_another_connection(
    dovecot: Dovecot, mail_user: str
) -> None:
    with dovecot.imap_client(mail_user) as watcher:
        watcher.select_folder("INBOX")
        watcher.idle()
        dovecot.append(mail_user, "INBOX", [message(1)])
        seen: list[tuple[int, bytes]] = []
        for _ in range(10):
            seen += watcher.idle_check(timeout=5)
            if (1, b"EXISTS") in seen:
                break
        watcher.idle_done()
    assert (1, b"EXISTS") in seen


def test_move_between_folders(dovecot: Dovecot, mail_user: str) -> None:
    dovecot.create_folder(mail_user, "Done")
    stored = dovecot.append(mail_user, "INBOX", [message(1), message(2)])
    with dovecot.imap_client(mail_user) as client:
        client.select_folder("INBOX")
        client.move([stored.uids[0]], "Done")
    assert dovecot.folder_uids(mail_user, "INBOX") == [stored.uids[1]]
    (moved,) = dovecot.folder_uids(mail_user, "Done")
    assert fetch(dovecot, mail_user, "Done", [moved]) == {moved: message(1)}


# -- Dovecot: appending odd messages ---------------------------------------------------------


def test_append_reports_refused_messages_and_stores_the_rest(
    dovecot: Dovecot, mail_user: str
) -> None:
    huge_body = b"A" * 76 + b"\r\n"
    messages = {
        "empty": b"",
        "nul": b"Subject: nul\r\n\r\nbefore\x00after\r\n",
        "cr-only": b"Subject: cr only\r\rfirst line\rsecond line\r",
        "lf-only": b"Subject: lf only\n\nfirst line\n",
        "8-bit header": "Subject: Grüße von Jörg\r\n\r\nText\r\n".encode("latin-1"),
        "long line": b"Subject: long\r\n\r\n" + b"x" * 5000 + b"\r\n",
        "3 MB": message(1, huge_body * 40_000),
        "no header separator": b"just text, no headers at all",
    }
    names = list(messages)
    result = dovecot.append(mail_user, "INBOX", messages.values(), batch=3)

    assert set(result.refused) == {names.index("empty")}
    assert "Can't save a zero byte message" in result.refused[names.index("empty")]
    assert sorted(result.uids) == list(range(1, len(names)))
    assert dovecot.folder_uids(mail_user, "INBOX") == sorted(result.uids.values())

    served = fetch(dovecot, mail_user, "INBOX", list(result.uids.values()))
    by_name = {names[index]: served[uid] for index, uid in result.uids.items()}
    for same in ("8-bit header", "long line", "3 MB", "no header separator"):
        assert by_name[same] == messages[same], same
    assert by_name["nul"] == b"Subject: nul\r\n\r\nbefore\x80after\r\n"
    assert by_name["cr-only"] == b"Subject: cr only\r\rfirst line\rsecond line"
    assert by_name["lf-only"] == b"Subject: lf only\r\n\r\nfirst line\r\n"


def test_append_keeps_order_when_a_batch_holds_refused_messages(
    dovecot: Dovecot, mail_user: str
) -> None:
    empty = {3, 10, 24}
    messages = [b"" if index in empty else message(index) for index in range(25)]
    result = dovecot.append(mail_user, "INBOX", messages, batch=10)
    assert set(result.refused) == empty
    stored = sorted(result.uids)
    assert stored == [index for index in range(25) if index not in empty]
    assert [result.uids[index] for index in stored] == sorted(result.uids.values())
    served = fetch(dovecot, mail_user, "INBOX", list(result.uids.values()))
    assert all(served[result.uids[index]] == messages[index] for index in stored)


def test_append_to_a_missing_folder_says_to_create_it(dovecot: Dovecot, mail_user: str) -> None:
    with pytest.raises(DovecotError, match="create_folder"):
        dovecot.append(mail_user, "Nowhere", [message(1)])
    dovecot.create_folder(mail_user, "Nowhere")
    assert len(dovecot.append(mail_user, "Nowhere", [message(1)]).uids) == 1


def test_append_many_small_messages(dovecot: Dovecot, mail_user: str) -> None:
    result = dovecot.append(mail_user, "INBOX", (message(n) for n in range(2000)))
    assert result.refused == {}
    assert dovecot.folder_uids(mail_user, "INBOX") == list(range(1, 2001))


# -- Dovecot: mbsync -------------------------------------------------------------------------


def test_mbsync_pulls_the_inbox(dovecot: Dovecot, mail_user: str, tmp_path: Path) -> None:
    dovecot.append(mail_user, "INBOX", [message(n) for n in range(30)])
    config = tmp_path / "mbsyncrc"
    password = dovecot.password(mail_user)
    config.write_text(dovecot.mbsync_config(mail_user, password, tmp_path / "mail"))
    done = subprocess.run(
        ["mbsync", "-c", str(config), "-a"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    pulled = [*(tmp_path / "mail" / "new").iterdir(), *(tmp_path / "mail" / "cur").iterdir()]
    # mbsync stores LF line ends and adds an X-TUID header, so compare by Message-ID.
    ids = sorted(email.message_from_bytes(path.read_bytes())["Message-ID"] for path in pulled)
    assert ids == sorted(f"<{n}@example.com>" for n in range(30))


# -- Dovecot: lifecycle ----------------------------------------------------------------------


def test_leaving_the_block_through_an_error_ends_every_process() -> None:
    with pytest.raises(RuntimeError, match="a failing test"), Dovecot({"pat": "pw"}) as server:
        root = server.root
        client = server.imap_client("pat")  # keeps an imap process busy
        client.select_folder("INBOX")
        assert len(instance_processes(root)) >= 5
        raise RuntimeError("a failing test")
    assert instance_processes(root) == []
    assert not root.exists()
    client.shutdown()


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.parametrize("private", [False, True], ids=["shared-if-running", "private"])
def test_postgres_gives_a_fresh_database_and_drops_it(private: bool) -> None:
    with postgres_server(private=private) as server:
        assert server.private is (private or shared_server() is None)
        with server.database() as url:
            name = sa.make_url(url).database
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM pg_tables")).scalar()
                conn.execute(sa.text("CREATE TABLE note (id int PRIMARY KEY, text text)"))
                conn.execute(sa.text("INSERT INTO note VALUES (1, 'made-up patient')"))
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT text FROM note")).scalar() == "made-up patient"
            assert database_exists(server, name)
            # An open session must not keep the database from being dropped.
            held = engine.connect()
        held.invalidate()
        engine.dispose()
        assert not database_exists(server, name)
    if private:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.conninfo()).close()


def test_postgres_url_fixture(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == (
            sa.make_url(postgres_url).database
        )
        assert conn.execute(sa.text("SELECT count(*) FROM pg_stat_user_tables")).scalar() == 0
    engine.dispose()


def database_exists(server: PostgresServer, name: str | None) -> bool:
    with psycopg.connect(server.conninfo()) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None
