"""Where objects go: the provider's S3 bucket or a local directory, behind one small protocol.

The S3 sink calls ``s3:PutObject`` only (and ``sts:AssumeRole`` when a role is configured):
it never lists, reads or heads the bucket. Vendor errors leave this module as ExportFailure.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

# botocore retries throttling, 5xx and connection errors with exponential backoff and jitter;
# in this dict ``max_attempts`` counts retries: 1 call + 4 retries.
RETRIES = {"max_attempts": 4, "mode": "standard"}
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30


class ExportFailure(Exception):
    """A write that did not happen; ``code`` is one of the documented export error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ObjectSink(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None: ...


class LocalSink:
    """A directory on the server: same keys as files, each written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, body: bytes, content_type: str) -> None:
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ExportFailure("invalid_key", f"refusing to write key {key!r}")
        path = self.root.joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(handle, "wb") as stream:
                stream.write(body)
            os.replace(temporary, path)
        except OSError as exc:
            raise ExportFailure("io_error", f"{path}: {exc.strerror or exc}") from exc


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    """botocore's exceptions, after its own retries, as ExportFailure."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        vendor = str(error.get("Code") or status)
        text = str(error.get("Message") or vendor)
        if vendor in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            code = "access_denied"
        elif vendor == "NoSuchBucket":
            code = "no_such_bucket"
        elif status >= 500:
            code = "server_error"
        else:
            code = "rejected"
        raise ExportFailure(code, f"{action}: {vendor}: {text}") from exc
    except (ConnectTimeoutError, ReadTimeoutError) as exc:
        raise ExportFailure("timeout", f"{action}: {exc}") from exc
    except EndpointConnectionError as exc:
        raise ExportFailure("unreachable", f"{action}: {exc}") from exc
    except NoCredentialsError as exc:
        raise ExportFailure("no_credentials", f"{action}: {exc}") from exc
    except BotoCoreError as exc:
        raise ExportFailure("transport_error", f"{action}: {exc}") from exc


class S3Sink:
    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        role_arn: str | None = None,
        external_id: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url
        self._keys = (access_key_id, secret_access_key)
        self._role = (role_arn, external_id)
        self._client: Any = None

    def _config(self) -> Config:
        return Config(
            region_name=self.region,
            retries=RETRIES,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )

    @property
    def client(self) -> Any:
        """The S3 client, assuming the provider's role first when one is configured."""
        if self._client is not None:
            return self._client
        access_key, secret = self._keys
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret, region_name=self.region
        )
        role_arn, external_id = self._role
        if role_arn:
            sts = session.client("sts", endpoint_url=self.endpoint_url, config=self._config())
            request: dict[str, Any] = {
                "RoleArn": role_arn,
                "RoleSessionName": "meterplane-export",
                "DurationSeconds": 900,
            }
            if external_id:
                request["ExternalId"] = external_id
            with _mapped("sts:AssumeRole"):
                credentials = sts.assume_role(**request)["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=self.region,
            )
        self._client = session.client("s3", endpoint_url=self.endpoint_url, config=self._config())
        return self._client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        client = self.client
        with _mapped(f"s3:PutObject {key}"):
            client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
