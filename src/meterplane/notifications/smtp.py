"""The mail edge: a small Protocol, and its SMTP implementation over smtplib.

smtplib's exceptions are mapped at this boundary to two of our own: a transient failure
(connection refused, 4xx) is retried with backoff; a permanent one (5xx for the recipient
or the message) marks the address as failing and stops retrying.
"""

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Literal, Protocol

from meterplane.settings import Settings


class MailError(Exception):
    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class TransientMailError(MailError):
    """Try again later: the server is down, busy, or answered 4xx."""


class PermanentMailError(MailError):
    """Never retry as is: the server refused the recipient or the message with 5xx."""


class MailTransport(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand one message to the mail server; return only once it has accepted it."""
        ...


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


@contextmanager
def map_smtp_errors() -> Iterator[None]:
    try:
        yield
    except smtplib.SMTPRecipientsRefused as exc:
        # One recipient per message: the whole refusal is about that address.
        code, reason = next(iter(exc.recipients.values()))
        error = f"recipient refused: {code} {_text(reason)}"
        raise (PermanentMailError if code >= 500 else TransientMailError)(error, code=code) from exc
    except smtplib.SMTPResponseException as exc:
        # SMTPSenderRefused, SMTPDataError, SMTPAuthenticationError, ...
        error = f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
        permanent = exc.smtp_code >= 500 and not isinstance(
            exc, smtplib.SMTPAuthenticationError | smtplib.SMTPSenderRefused
        )
        raise (PermanentMailError if permanent else TransientMailError)(
            error, code=exc.smtp_code
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientMailError(f"{type(exc).__name__}: {exc}") from exc


class SMTPTransport:
    """One connection per message: simple, and a broken connection never spans two messages."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Literal["none", "starttls", "tls"] = "starttls",
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.timeout = user, password, timeout

    def send(self, message: EmailMessage) -> None:
        with map_smtp_errors():
            if self.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.user:
                    client.login(self.user, self.password or "")
                client.send_message(message)


def transport_from_settings(settings: Settings) -> MailTransport | None:
    """The configured SMTP transport, or None when no host is set (mail stays pending)."""
    if not settings.smtp_host:
        return None
    return SMTPTransport(
        settings.smtp_host,
        settings.smtp_port,
        security=settings.smtp_security,
        user=settings.smtp_user,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        timeout=settings.smtp_timeout_seconds,
    )
