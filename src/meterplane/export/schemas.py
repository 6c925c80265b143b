from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Format = Literal["csv", "jsonl", "parquet"]
Layout = Literal["meterplane", "omnistrate"]


class TargetIn(BaseModel):
    """Where and how a provider's hourly records are written. Secrets are write-only."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["s3", "local", "gcs", "azure"] = "s3"
    bucket: str | None = Field(default=None, min_length=3, max_length=222)  # s3, gcs
    prefix: str = Field(default="", max_length=200)
    region: str = Field(default="us-east-1", max_length=40)
    endpoint_url: str | None = Field(default=None, max_length=300)
    access_key_id: str | None = Field(default=None, max_length=128)
    secret_access_key: str | None = Field(default=None, max_length=256)
    role_arn: str | None = Field(default=None, max_length=300)
    external_id: str | None = Field(default=None, max_length=1224)
    # gcs: a service account key (the JSON file's content); without one, anonymous (emulators).
    service_account_json: str | None = Field(default=None, max_length=20000)
    # azure: the container, and either a connection string or the account name and key.
    container: str | None = Field(default=None, min_length=3, max_length=63)
    account_name: str | None = Field(default=None, min_length=3, max_length=24)
    account_key: str | None = Field(default=None, max_length=200)
    connection_string: str | None = Field(default=None, max_length=4000)
    clear_credentials: bool = False
    format: Format | None = None
    gzip: bool = False
    layout: Layout = "meterplane"
    environment: str = Field(default="PROD", min_length=1, max_length=40)
    start_at: AwareDatetime | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> "TargetIn":
        if self.kind in ("s3", "gcs") and not self.bucket:
            raise ValueError(f"an {self.kind} target needs a bucket")
        if self.kind == "s3" and self.bucket is not None and len(self.bucket) > 63:
            raise ValueError("an s3 bucket name has at most 63 characters")
        if self.kind == "azure" and not self.container:
            raise ValueError("an azure target needs a container")
        if self.account_key is not None and self.connection_string is not None:
            raise ValueError("give account_key or connection_string, not both")
        if self.kind != "s3" and (
            self.access_key_id or self.role_arn is not None or self.external_id is not None
        ):
            raise ValueError("access keys, role_arn and external_id are for s3 targets")
        if self.kind != "gcs" and self.service_account_json is not None:
            raise ValueError("service_account_json is for gcs targets")
        if self.kind != "azure" and (
            self.account_key is not None
            or self.connection_string is not None
            or self.container is not None
            or self.account_name is not None
        ):
            raise ValueError("container, account_name and the account secrets are for azure")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give access_key_id and secret_access_key together")
        if self.role_arn is not None and not self.role_arn.startswith("arn:"):
            raise ValueError("role_arn must be an ARN (arn:aws:iam::<account>:role/<name>)")
        if self.layout == "omnistrate" and (self.format is not None or self.gzip):
            raise ValueError("the omnistrate layout writes plain JSON arrays: omit format and gzip")
        self.prefix = self.prefix.strip("/")
        if any(part in ("", ".", "..") for part in self.prefix.split("/")) and self.prefix:
            raise ValueError("prefix must be key segments separated by single slashes")
        return self


class TargetOut(BaseModel):
    kind: str
    generation: int
    bucket: str | None
    prefix: str
    region: str | None
    endpoint_url: str | None
    role_arn: str | None
    container: str | None = None
    account_name: str | None = None
    credentials: Literal[
        "access_keys",
        "default_chain",
        "none",
        "service_account",
        "anonymous",
        "account_key",
        "connection_string",
    ]
    has_external_id: bool
    format: Format
    gzip: bool
    layout: Layout
    environment: str
    directory: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class ExportErrorOut(BaseModel):
    code: str
    message: str
    hour: datetime | None
    at: datetime | None


class StatusOut(BaseModel):
    configured: bool
    enabled: bool = False
    kind: str | None = None
    generation: int | None = None
    exported_from: datetime | None = None
    exported_through: datetime | None = None
    closed_through: datetime | None = None
    pending_hours: int = 0
    revised_hours: int = 0
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    next_attempt_at: datetime | None = None
    error: ExportErrorOut | None = None


class RunIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: AwareDatetime = Field(alias="from")
    end: AwareDatetime = Field(alias="to")


class RunOut(BaseModel):
    hours_exported: int
    revisions: int
    records: int
    objects: int
    failed_hour: datetime | None
    error: ExportErrorOut | None
    exported_through: datetime | None
