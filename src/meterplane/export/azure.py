"""Azure Blob Storage sink: one Put Blob (or Put Block + Put Block List) per key.

It never lists, reads or gets properties of the container: each write uploads the whole blob
with ``overwrite=True``; a SAS token with create and write permissions on the container is
enough. Vendor errors leave this module as ExportFailure, with the codes the S3 sink uses.
"""

import base64
import binascii
import re
from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.storage.blob import BlobServiceClient, ContentSettings, ExponentialRetry

from meterplane.export.sinks import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, ExportFailure

# 1 call + 4 retries of 408/5xx and connection errors, backoff 1 s + 2^n s with ±1 s jitter.
RETRY_TOTAL = 4
RETRY_INITIAL_BACKOFF = 1
RETRY_INCREMENT_BASE = 2
ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def default_account_url(account_name: str) -> str:
    return f"https://{account_name}.blob.core.windows.net"


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;…`` as a dict (values may hold ``=``), or ValueError."""
    parts: dict[str, str] = {}
    for item in text.strip().strip(";").split(";"):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError("a connection string is Key=Value pairs separated by ';'")
        parts[name.strip()] = value.strip()
    return parts


def connection_string_account(text: str) -> tuple[str, str]:
    """The account name and blob endpoint a connection string writes to (ValueError if unusable).

    The endpoint is the default one (``https://<account>.blob.core.windows.net``) unless the
    string sets ``BlobEndpoint``, another ``EndpointSuffix`` or the http protocol.
    """
    parts = parse_connection_string(text)
    if parts.get("UseDevelopmentStorage", "").lower() == "true":
        raise ValueError("UseDevelopmentStorage is not supported: give the endpoint explicitly")
    if "AccountKey" not in parts and "SharedAccessSignature" not in parts:
        raise ValueError("the connection string needs AccountKey or SharedAccessSignature")
    if "AccountKey" in parts:
        check_account_key(parts["AccountKey"])
    name = parts.get("AccountName", "")
    endpoint = parts.get("BlobEndpoint", "").rstrip("/")
    if not endpoint:
        if not ACCOUNT_NAME.match(name):
            raise ValueError("the connection string needs AccountName (or BlobEndpoint)")
        protocol = parts.get("DefaultEndpointsProtocol", "https")
        suffix = parts.get("EndpointSuffix", "core.windows.net")
        endpoint = f"{protocol}://{name}.blob.{suffix}"
    if not endpoint.startswith(("https://", "http://")):
        raise ValueError("the connection string's blob endpoint must be an http(s) URL")
    return name, endpoint


def check_account_key(key: str) -> None:
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the account key is not base64") from None


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    """azure-core's exceptions, after its retries, as ExportFailure."""
    try:
        yield
    except ClientAuthenticationError as exc:
        raise ExportFailure("access_denied", f"{action}: {_describe(exc)}") from exc
    except ResourceNotFoundError as exc:
        raise ExportFailure("no_such_bucket", f"{action}: {_describe(exc)}") from exc
    except HttpResponseError as exc:
        status = int(exc.status_code or 0)
        if status == 403:
            code = "access_denied"
        elif status == 408:
            code = "timeout"
        elif status == 429:
            code = "throttled"
        elif status >= 500:
            code = "server_error"
        else:
            code = "rejected"
        raise ExportFailure(code, f"{action}: {_describe(exc)}") from exc
    except (ServiceRequestTimeoutError, ServiceResponseTimeoutError) as exc:
        raise ExportFailure("timeout", f"{action}: {exc.message}") from exc
    except ServiceRequestError as exc:
        raise ExportFailure("unreachable", f"{action}: {exc.message}") from exc
    except ServiceResponseError as exc:
        raise ExportFailure("transport_error", f"{action}: {exc.message}") from exc
    except AzureError as exc:
        raise ExportFailure("transport_error", f"{action}: {exc.message}") from exc
    except ValueError as exc:  # e.g. a malformed connection string or key
        raise ExportFailure("credentials_unreadable", f"{action}: {exc}") from exc


def _describe(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None) or exc.status_code
    code = getattr(code, "value", code)  # azure's StorageErrorCode enum
    first = (exc.reason or str(exc.message or "")).splitlines()
    return f"{code}: {first[0] if first else ''}".rstrip(": ")


class AzureBlobSink:
    def __init__(
        self,
        *,
        container: str,
        account_name: str | None = None,
        account_url: str | None = None,
        account_key: str | None = None,
        connection_string: str | None = None,
    ) -> None:
        if connection_string is None and (account_key is None or not account_name):
            raise ExportFailure(
                "no_credentials", "an azure target needs a connection string or an account key"
            )
        self.container = container
        self.account_name = account_name
        self.account_url = account_url or (
            default_account_url(account_name) if account_name else None
        )
        self._key = account_key
        self._connection_string = connection_string
        self._client: BlobServiceClient | None = None

    @property
    def client(self) -> BlobServiceClient:
        if self._client is not None:
            return self._client
        retry = ExponentialRetry(
            initial_backoff=RETRY_INITIAL_BACKOFF,
            increment_base=RETRY_INCREMENT_BASE,
            retry_total=RETRY_TOTAL,
            random_jitter_range=1,
        )
        with _mapped("azure client"):
            if self._connection_string is not None:
                self._client = BlobServiceClient.from_connection_string(
                    self._connection_string,
                    retry_policy=retry,
                    connection_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                )
            else:
                assert self.account_url is not None and self.account_name is not None
                credential = {"account_name": self.account_name, "account_key": self._key or ""}
                self._client = BlobServiceClient(
                    self.account_url,
                    credential=credential,
                    retry_policy=retry,
                    connection_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                )
        return self._client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        action = f"Put Blob {self.container}/{key}"
        with _mapped(action):
            blob = self.client.get_blob_client(self.container, key)
            blob.upload_blob(
                body,
                overwrite=True,
                content_settings=ContentSettings(content_type=content_type),
            )
