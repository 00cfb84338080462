"""Where sent mail goes: an SMTP server, or a local Maildir outbox.

Every transport calls `handing_over` right before the step after which the recipient
may have the message (SMTP's DATA, the Maildir write); errors are sorted into three
kinds the delivery step treats differently: try again later, give up, or in doubt.
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from consultant.config import Config, SmtpConfig
from consultant.mail.credentials import SecretCommandError, command_output, tls_context


class TransientDeliveryError(Exception):
    """The server could not take the message now (4xx, no connection): retry later."""


class PermanentDeliveryError(Exception):
    """The server refused the message for good (5xx), or our settings cannot work."""


class DeliveryInDoubt(Exception):
    """The connection broke after the message was handed over: it may have arrived."""


class Transport(Protocol):
    name: str

    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        handing_over: Callable[[], None],
    ) -> str:
        """Deliver RAW; returns the server's answer (for the record)."""
        ...


def _refusal(code: int, text: bytes | str, what: str) -> Exception:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    detail = f"{what}: {code} {' '.join(text.split())}"[:500]
    if 400 <= code < 500:
        return TransientDeliveryError(detail)
    return PermanentDeliveryError(detail)


class SmtpTransport:
    name = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        assert config.host is not None
        self.config = config
        self.host = config.host

    def _context(self) -> ssl.SSLContext:
        return tls_context(self.config.ca_file, self.config.verify_tls)

    def _password(self) -> str:
        if self.config.password_command is None:
            return self.config.password or ""
        try:
            return command_output(self.config.password_command, "smtp.password_command")
        except SecretCommandError as exc:
            raise TransientDeliveryError(str(exc)) from None

    def _untrusted(self, exc: ssl.SSLCertVerificationError) -> PermanentDeliveryError:
        return PermanentDeliveryError(
            f"SMTP server {self.host}: its certificate is not trusted ({exc.verify_message}); "
            "set smtp.ca_file to the CA that signed it"
        )

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        try:
            if config.tls == "implicit":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, config.port, timeout=config.timeout, context=self._context()
                )
            else:
                client = smtplib.SMTP(self.host, config.port, timeout=config.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise self._untrusted(exc) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientDeliveryError(
                f"cannot connect to SMTP server {self.host}:{config.port}: {exc}"
            ) from None
        try:
            self._greet(client)
        except BaseException:
            client.close()
            raise
        return client

    def _greet(self, client: smtplib.SMTP) -> None:
        """EHLO, STARTTLS when configured (never silently skipped) and AUTH."""
        config = self.config
        where = f"SMTP server {self.host}:{config.port}"
        try:
            client.ehlo()
            if config.tls == "starttls":
                if not client.has_extn("starttls"):
                    raise PermanentDeliveryError(
                        f'{where} does not offer STARTTLS; set smtp.tls to "implicit" or '
                        '"none" to match the server'
                    )
                client.starttls(context=self._context())
                client.ehlo()
            if config.username:
                client.login(config.username, self._password())
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise _refusal(exc.smtp_code, exc.smtp_error, f"{where} login") from None
            raise PermanentDeliveryError(
                f"{where} refused the login for {config.username!r} ({exc.smtp_code}); "
                "check smtp.username and the password"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise self._untrusted(exc) from None
        except smtplib.SMTPNotSupportedError:
            raise PermanentDeliveryError(
                f"{where} does not offer AUTH (on this connection); remove smtp.username, or "
                "use the port and smtp.tls the server takes logins on"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise _refusal(exc.smtp_code, exc.smtp_error, where) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientDeliveryError(f"{where}: {exc}") from None

    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        handing_over: Callable[[], None],
    ) -> str:
        client = self._connect()
        try:
            try:
                code, text = client.mail(sender)
                if code != 250:
                    raise _refusal(code, text, "MAIL FROM")
                refused: list[str] = []
                errors: list[Exception] = []
                for recipient in recipients:
                    code, text = client.rcpt(recipient)
                    if code not in (250, 251):
                        refused.append(recipient)
                        errors.append(_refusal(code, text, f"RCPT TO {recipient}"))
                if len(refused) == len(recipients):
                    # A transient refusal of anyone makes the whole try transient.
                    transient = [e for e in errors if isinstance(e, TransientDeliveryError)]
                    raise (transient or errors)[0]
            except (OSError, smtplib.SMTPServerDisconnected) as exc:
                raise TransientDeliveryError(f"SMTP server {self.host}: {exc}") from None
            handing_over()
            try:
                code, text = client.data(raw)
            except smtplib.SMTPDataError as exc:  # refused before the message was sent
                raise _refusal(exc.smtp_code, exc.smtp_error, "DATA") from None
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryInDoubt(
                    f"the connection to {self.host} broke after the message was sent ({exc}); "
                    "the server may have accepted it"
                ) from None
            if code != 250:  # an explicit refusal of the message: it was not taken
                raise _refusal(code, text, "DATA")
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
        answer = f"{code} {' '.join(text.decode('utf-8', 'replace').split())}"
        if refused:
            answer += "; refused: " + "; ".join(str(e) for e in errors)
        return answer[:1000]


class MaildirTransport:
    """The embedded default's outbox: each message a file in a Maildir's `new/`."""

    name = "maildir"

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        handing_over: Callable[[], None],
    ) -> str:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            raise PermanentDeliveryError(
                f"cannot open the outbox {self.path} ({exc}); set delivery.outbox to a "
                "writable folder"
            ) from None
        handing_over()
        try:
            key = box.add(raw)
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write to the outbox {self.path}: {exc}") from None
        return f"stored in {self.path / 'new' / key}"


def make_transport(config: Config) -> Transport:
    """SMTP when [smtp] names a host, else the Maildir outbox."""
    if config.smtp.host:
        return SmtpTransport(config.smtp)
    return MaildirTransport(config.delivery.outbox)
