"""Providers (tenants) and their API keys."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.kit.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from meterplane.kit.ids import new_id
from meterplane.tenancy.models import ApiKey, ApiKeyScope, Provider

KEY_PREFIX = "mp"


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str


@dataclass(frozen=True)
class Caller:
    """Who is calling: every service call below the API is scoped by ``provider_id``."""

    provider_id: str
    scope: ApiKeyScope
    key_id: str

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"api_key:{self.key_id}"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_provider(session: Session, name: str, *, now: datetime) -> Provider:
    """Create a tenant."""
    name = name.strip()
    if not name:
        raise InvalidInput("provider name must not be empty", code="invalid_name")
    provider = Provider(id=new_id("prov"), name=name, created_at=now)
    session.add(provider)
    session.flush()
    return provider


def get_provider(session: Session, provider_id: str) -> Provider:
    """Load a provider or raise NotFound."""
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id} not found", code="provider_not_found")
    return provider


def create_api_key(
    session: Session, provider_id: str, scope: ApiKeyScope, *, name: str, now: datetime
) -> IssuedKey:
    """Mint a key; its secret is returned once and only its hash is stored."""
    get_provider(session, provider_id)
    secret = f"{KEY_PREFIX}_{scope.value}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        id=new_id("key"),
        provider_id=provider_id,
        name=name,
        scope=scope,
        key_hash=_hash(secret),
        display_prefix=secret[:14],
        created_at=now,
    )
    session.add(api_key)
    session.flush()
    return IssuedKey(api_key=api_key, secret=secret)


def revoke_api_key(session: Session, provider_id: str, key_id: str, *, now: datetime) -> ApiKey:
    """Revoke a key of this provider."""
    api_key = session.scalar(
        select(ApiKey).where(ApiKey.provider_id == provider_id, ApiKey.id == key_id)
    )
    if api_key is None:
        raise NotFound(f"API key {key_id} not found", code="api_key_not_found")
    if api_key.revoked_at is None:
        api_key.revoked_at = now
    return api_key


def authenticate(session: Session, secret: str) -> Caller:
    """Resolve a bearer secret to its caller."""
    api_key = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(secret)))
    if api_key is None or api_key.revoked_at is not None:
        raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
    return Caller(provider_id=api_key.provider_id, scope=api_key.scope, key_id=api_key.id)


def require_scope(caller: Caller, scope: ApiKeyScope) -> None:
    """Admin keys may do everything; other keys only what their scope names."""
    if caller.scope is not ApiKeyScope.admin and caller.scope is not scope:
        raise Forbidden(
            f"this API key has scope '{caller.scope.value}', '{scope.value}' is required",
            code="insufficient_scope",
        )
