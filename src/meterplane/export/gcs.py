"""Google Cloud Storage sink: one object upload per key (``storage.objects.create``).

It never lists, reads or gets metadata of the bucket: ``Bucket``/``Blob`` objects are built
locally and each write is a single multipart upload. Overwriting a key (a marker, an
Omnistrate-layout hour) also needs ``storage.objects.delete`` on GCS. Vendor errors leave this
module as ExportFailure, with the codes the S3 sink uses.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from meterplane.export.sinks import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, ExportFailure

# Writes are idempotent (a deterministic key and the same bytes), so every 408/429/5xx and
# connection error is retried, with exponential backoff and jitter, for at most this long.
RETRY_DEADLINE_SECONDS = 60.0
# Where a service account's token may be fetched without the endpoint override allowed.
GOOGLE_TOKEN_URIS = (
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
)
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


def parse_service_account(info: dict[str, Any]) -> service_account.Credentials:
    try:
        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)  # type: ignore[no-untyped-call,no-any-return]
    except (ValueError, KeyError) as exc:
        raise ExportFailure("credentials_unreadable", f"service account key: {exc}") from exc


def _code_for_status(status: int) -> str:
    if status in (401, 403):
        return "access_denied"
    if status == 404:
        return "no_such_bucket"
    if status == 408:
        return "timeout"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    return "rejected"


def _transport(exc: BaseException) -> str:
    if isinstance(exc, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "unreachable"
    return "transport_error"


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    """google-cloud-storage's exceptions, after its retries, as ExportFailure."""
    try:
        yield
    except api_exceptions.RetryError as exc:
        # The retry deadline passed; what failed last decides the code.
        cause = exc.cause
        if isinstance(cause, api_exceptions.GoogleAPICallError):
            code = _code_for_status(int(cause.code or 0))
        elif isinstance(cause, auth_exceptions.TransportError) and cause.args:
            inner = cause.args[0]
            code = _transport(inner) if isinstance(inner, BaseException) else "transport_error"
        elif cause is not None:
            code = _transport(cause)
        else:
            code = "timeout"
        raise ExportFailure(code, f"{action}: retries exhausted: {cause or exc}") from exc
    except api_exceptions.GoogleAPICallError as exc:
        code = _code_for_status(int(exc.code or 0))
        raise ExportFailure(code, f"{action}: {exc.code}: {exc.message}") from exc
    except auth_exceptions.RefreshError as exc:
        raise ExportFailure("access_denied", f"{action}: token refresh: {exc}") from exc
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ExportFailure("no_credentials", f"{action}: {exc}") from exc
    except auth_exceptions.TransportError as exc:
        inner = exc.args[0] if exc.args else exc
        code = _transport(inner) if isinstance(inner, BaseException) else "transport_error"
        raise ExportFailure(code, f"{action}: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        raise ExportFailure(_transport(exc), f"{action}: {exc}") from exc


class GCSSink:
    def __init__(
        self,
        *,
        bucket: str,
        service_account_info: dict[str, Any] | None = None,
        api_endpoint: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.api_endpoint = api_endpoint
        self._info = service_account_info
        self._client: storage.Client | None = None

    @property
    def client(self) -> storage.Client:
        """A client with the service account's key, or anonymous (emulators only)."""
        if self._client is not None:
            return self._client
        credentials: Credentials
        if self._info is not None:
            credentials = parse_service_account(self._info)
            project = str(self._info.get("project_id") or "<none>")
        elif self.api_endpoint is not None:
            credentials, project = AnonymousCredentials(), "<none>"  # type: ignore[no-untyped-call]
        else:
            raise ExportFailure("no_credentials", "a gcs target needs a service account key")
        options = {"api_endpoint": self.api_endpoint} if self.api_endpoint else None
        # The project is only a label here: nothing project-scoped (listing buckets) is called,
        # and giving it keeps the client from probing the environment for a default one.
        self._client = storage.Client(
            project=project, credentials=credentials, client_options=options
        )
        return self._client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        action = f"storage.objects.create gs://{self.bucket}/{key}"
        with _mapped(action):
            blob = self.client.bucket(self.bucket).blob(key)
            retry: Retry = DEFAULT_RETRY.with_delay(initial=0.5, multiplier=2.0, maximum=8.0)
            blob.upload_from_string(
                body,
                content_type=content_type,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                retry=retry.with_timeout(RETRY_DEADLINE_SECONDS),
            )
