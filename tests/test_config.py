"""Configuration: nothing needed for the embedded default, clear errors for a bad file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consultant.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def test_embedded_default_needs_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONSULTANT_CONFIG", raising=False)
    monkeypatch.setenv("CONSULTANT_HOME", str(tmp_path))
    config = load_config()
    assert config.source is None
    assert config.codes.database == tmp_path / "codes.sqlite"
    assert config.drafting.suggestions == 5


def test_xdg_data_home_is_the_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONSULTANT_CONFIG", raising=False)
    monkeypatch.delenv("CONSULTANT_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert load_config().data_dir == tmp_path / "caseconsultant"


def test_example_config_is_valid_and_relative_to_its_folder() -> None:
    config = load_config(EXAMPLE)
    assert config.codes.database == EXAMPLE.parent / "var" / "codes.sqlite"
    assert config.drafting.templates_dir == EXAMPLE.parent / "templates-local"


def test_environment_variable_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[codes]\ndatabase = "/srv/codes.sqlite"\n')
    monkeypatch.setenv("CONSULTANT_CONFIG", str(path))
    assert load_config().codes.database == Path("/srv/codes.sqlite")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[codes\n", "not valid TOML"),
        ("codes = 3\n", "[codes] must be a table"),
        ("[drafting]\nsuggestions = 500\n", "drafting.suggestions"),
        ('[codes]\ndatabase = ""\n', "codes.database"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("config.example.toml")):
        load_config(tmp_path / "absent.toml")


def test_example_documents_every_ingestion_key() -> None:
    config = load_config(EXAMPLE)
    assert config.database_url == "sqlite:///var/consultant.sqlite"
    assert config.ingest.allow == ("clinic.example", "billing@hospital.example")
    assert config.ingest.not_allowed == "hold"
    assert config.ingest.max_attachment_bytes == 25 * 1024 * 1024
    (mailbox,) = config.mailboxes
    assert (mailbox.name, mailbox.tls, mailbox.port, mailbox.processed_folder) == (
        "consult",
        "implicit",
        993,
        "Processed",
    )
    assert mailbox.password_command == "pass show mail/consult"
    assert config.smtpd.recipients == ("consult@caseconsultant.example",)
    assert config.mailbox("consult") is mailbox
    with pytest.raises(ConfigError, match="configured: consult"):
        config.mailbox("other")


def test_embedded_default_database_is_sqlite_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CONSULTANT_CONFIG", raising=False)
    monkeypatch.setenv("CONSULTANT_HOME", str(tmp_path))
    config = load_config()
    assert config.database_url == f"sqlite:///{tmp_path / 'consultant.sqlite'}"
    assert config.mailboxes == ()
    assert config.ingest.allow == () and config.ingest.rate_limit == 30


MAILBOX = '[[mailboxes]]\nname = "m"\nhost = "h"\nusername = "u"\n'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[ingest]\nnot_allowed = "bounce"\n', 'ingest.not_allowed must be "hold" or "decline"'),
        ("[ingest]\nrate_limit = -1\n", "ingest.rate_limit"),
        ("[ingest]\nallow = [3]\n", "ingest.allow must be a list"),
        ('[[mailboxes]]\nname = "m"\n', "mailboxes[0].host is required"),
        (MAILBOX, "exactly one of password, password_command or oauth2_token_command"),
        (MAILBOX + 'password = "p"\ntls = "ssl"\n', "mailboxes[0].tls must be one of"),
        (MAILBOX + 'password = "p"\n' + MAILBOX + 'password = "p"\n', "must be unique"),
        (MAILBOX + 'password = "p"\npoll_interval = 0\n', "mailboxes[0].poll_interval"),
    ],
)
def test_bad_ingestion_values_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_starttls_defaults_to_port_143(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(MAILBOX + 'password = "p"\ntls = "starttls"\n')
    assert load_config(path).mailboxes[0].port == 143


def test_the_queue_defaults_to_a_file_broker_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CONSULTANT_CONFIG", raising=False)
    monkeypatch.setenv("CONSULTANT_HOME", str(tmp_path))
    queue = load_config().queue
    assert queue.broker_url == f"sqlite:///{tmp_path / 'queue.sqlite'}"
    assert (queue.sweep_seconds, queue.task_time_limit) == (30.0, 300.0)
    example = load_config(EXAMPLE).queue
    assert example.broker_url == "sqlite:///var/queue.sqlite"
    path = tmp_path / "c.toml"
    path.write_text("[queue]\nsweep_seconds = 0\n")
    with pytest.raises(ConfigError, match=re.escape("queue.sweep_seconds")):
        load_config(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[smtp]\nhost = "h"\ntls = "ssl"\n', "smtp.tls must be one of"),
        ('[smtp]\nhost = "h"\npassword = "p"\n', "smtp.username is required"),
        (
            '[smtp]\nhost = "h"\nusername = "u"\npassword = "p"\npassword_command = "c"\n',
            "at most one",
        ),
        ('[delivery]\nfrom_address = "Dana <d@x.example>"\n', "delivery.from_address must be"),
        ('[delivery]\nfrom_address = "d@x.example\\r\\nBcc: y@z"\n', "delivery.from_address"),
        ('[delivery]\nsent_mailbox = "nope"\n', "names no [[mailboxes]] entry"),
        ("[delivery]\nmax_attempts = 0\n", "delivery.max_attempts"),
    ],
)
def test_bad_delivery_values_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_delivery_defaults_to_the_outbox_from_our_first_address(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CONSULTANT_CONFIG", raising=False)
    monkeypatch.setenv("CONSULTANT_HOME", str(tmp_path))
    embedded = load_config()
    assert embedded.smtp.host is None and embedded.delivery.outbox == tmp_path / "outbox"
    assert embedded.delivery.from_address == "consult@localhost"
    assert embedded.ingest.our_addresses == ("consult@localhost",)  # ours, so never a question
    path = tmp_path / "c.toml"
    path.write_text('[ingest]\nour_addresses = ["Help@Acme.example"]\n[smtp]\nhost = "relay"\n')
    config = load_config(path)
    assert config.delivery.from_address == "help@acme.example"
    assert (config.smtp.port, config.smtp.tls) == (587, "starttls")
    example = load_config(EXAMPLE)
    assert example.delivery.sent_mailbox == "consult" and example.smtp.username is not None


def test_web_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[web]\nsecret_key = "short"\n')
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_config(path)
    path.write_text('[web]\npublic_url = "review.example"\n')
    with pytest.raises(ConfigError, match=re.escape("web.public_url must start with https://")):
        load_config(path)
    example = load_config(EXAMPLE).web
    assert (example.port, example.secure_cookies, example.session_hours) == (8000, True, 12.0)
    path.write_text("")
    assert not load_config(path).web.secure_cookies


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # A typo must not quietly drop a table: replies would go to the outbox instead.
        (
            '[smtp]\nhostname = "relay.example"\n',
            "unknown key smtp.hostname: did you mean smtp.host?",
        ),
        ("[ingest]\nmax_mesage_bytes = 1000\n", "did you mean ingest.max_message_bytes?"),
        (MAILBOX + 'password = "p"\nfoldr = "INBOX"\n', "did you mean mailboxes[0].folder?"),
        ('[smtpp]\nhost = "relay"\n', "unknown table [smtpp]: did you mean [smtp]?"),
        ("[web]\nzzz = 1\n", "unknown key web.zzz: valid keys: web.host, web.port"),
        ('[database]\nurl = "notaurl"\n', "database.url must be an SQLAlchemy URL like"),
        ('[database]\nurl = "mysql://db/x"\n', "database.url must be an SQLAlchemy URL like"),
        ("[drafting]\nsuggestions = true\n", "drafting.suggestions must be a whole number"),
        ("[drafting]\nservice_name = 42\n", "drafting.service_name must be a string in quotes"),
        ('[drafting]\nservice_name = "A\\nB"\n', "drafting.service_name must be one line"),
        ("[smtp]\nport = 587\n", "smtp.host is required in [smtp]"),
        ('[queue]\nbroker_url = "amqp://x"\n', "queue.broker_url must be redis://"),
        ('[queue]\nbroker_url = "sqla+sqlite:///q.sqlite"\n', "use sqlite:///PATH"),
        ('[web]\ntrusted_proxies = ["10.0.0.0/33"]\n', "is not an IP address or network"),
        ("[delivery]\nacknowledge = 1\n", "delivery.acknowledge must be true or false"),
        ('[delivery]\nfrom_address = "bob@clinic..test"\n', "delivery.from_address must be"),
    ],
)
def test_every_config_mistake_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_config(path)
    assert "\n" not in str(raised.value)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes('[drafting]\nservice_name = "Clínica"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(f"config file {path} is not UTF-8 text")):
        load_config(path)


def test_a_folder_given_as_the_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path)


def test_the_example_documents_every_key_the_service_reads() -> None:
    """config.example.toml names every key of every table, so nothing a user can set is
    undocumented (and nothing it documents is refused)."""
    import tomllib
    from dataclasses import fields

    from consultant import config as module

    text = EXAMPLE.read_text()
    example = tomllib.loads(text)
    tables = {
        "ingest": module.IngestConfig,
        "smtpd": module.SmtpdConfig,
        "queue": module.QueueConfig,
        "smtp": module.SmtpConfig,
        "delivery": module.DeliveryConfig,
        "web": module.WebConfig,
        "drafting": module.DraftingConfig,
    }
    for table, cls in tables.items():
        assert table in example
        for key in (f.name for f in fields(cls)):
            assert re.search(rf"^#? ?{key} =", text, re.M), f"[{table}] {key} is undocumented"
    for key in (f.name for f in fields(module.MailboxConfig)):
        assert re.search(rf"^#? ?{key} =", text, re.M), f"[[mailboxes]] {key} is undocumented"
