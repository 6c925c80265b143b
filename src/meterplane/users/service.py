"""Provider users: create, sign in (argon2id), change role, remove."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.audit import service as audit
from meterplane.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from meterplane.kit.ids import new_id
from meterplane.tenancy.service import get_provider
from meterplane.users.models import ProviderUser, Role

MIN_PASSWORD_LENGTH = 10
MAX_FAILED_LOGINS = 10
LOCKOUT = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verified when the address is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("meterplane-dummy-password")

# What each role may do; the console checks these, never role names.
PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.viewer: frozenset({"read"}),
    Role.billing: frozenset({"read", "invoices", "pricing", "settings"}),
    Role.owner: frozenset({"read", "invoices", "pricing", "settings", "users", "api_keys"}),
}


def can(role: Role, permission: str) -> bool:
    return permission in PERMISSIONS[role]


def require(user: ProviderUser, permission: str) -> None:
    """Raise Forbidden unless the user's role grants ``permission``."""
    if not can(user.role, permission):
        raise Forbidden(
            f"your role ({user.role.value}) does not allow this", code="insufficient_role"
        )


def actor(user: ProviderUser) -> str:
    """How the audit log names a console user."""
    return f"user:{user.email}"


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise InvalidInput(f"invalid email address: {error}", code="invalid_email") from None


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
            code="weak_password",
        )


def create_user(
    session: Session,
    provider_id: str,
    *,
    email: str,
    password: str,
    role: Role,
    actor: str,
    now: datetime,
) -> ProviderUser:
    """Add a console login to a provider; the password is stored as an argon2id hash."""
    get_provider(session, provider_id)
    address = normalize_email(email)
    check_password(password)
    if session.scalar(select(ProviderUser.id).where(ProviderUser.email == address)) is not None:
        raise Conflict(f"a user with email {address} already exists", code="user_exists")
    user = ProviderUser(
        id=new_id("usr"),
        provider_id=provider_id,
        email=address,
        password_hash=_hasher.hash(password),
        role=role,
        created_at=now,
        failed_logins=0,
        session_epoch=0,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="user.created",
        object_type="provider_user",
        object_id=user.id,
        before=None,
        after={"email": address, "role": role.value},
        now=now,
    )
    return user


def authenticate(
    session: Session, email: str, password: str, *, now: datetime
) -> ProviderUser | None:
    """The user with this email and password, or None; repeated failures lock the address."""
    address = email.strip().lower()
    user = session.scalar(
        select(ProviderUser).where(ProviderUser.email == address, ProviderUser.removed_at.is_(None))
    )
    if user is None:
        _verify(_DUMMY_HASH, password)
        return None
    if user.locked_until is not None and user.locked_until > now:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def get_user(session: Session, provider_id: str, user_id: str) -> ProviderUser:
    """A current user of this provider, or NotFound."""
    user = session.scalar(
        select(ProviderUser).where(
            ProviderUser.provider_id == provider_id,
            ProviderUser.id == user_id,
            ProviderUser.removed_at.is_(None),
        )
    )
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    return user


def find_session_user(session: Session, user_id: str, epoch: int) -> ProviderUser | None:
    """The user a console session names, if it still exists and the session is current."""
    user = session.get(ProviderUser, user_id)
    if user is None or user.removed_at is not None or user.session_epoch != epoch:
        return None
    return user


def list_users(session: Session, provider_id: str) -> Sequence[ProviderUser]:
    """The provider's current users, by email."""
    return session.scalars(
        select(ProviderUser)
        .where(ProviderUser.provider_id == provider_id, ProviderUser.removed_at.is_(None))
        .order_by(ProviderUser.email)
    ).all()


def _owners(session: Session, provider_id: str) -> int:
    return sum(1 for user in list_users(session, provider_id) if user.role is Role.owner)


def change_role(
    session: Session, provider_id: str, user_id: str, role: Role, *, actor: str, now: datetime
) -> ProviderUser:
    """Give a user another role; the last owner keeps the owner role."""
    user = get_user(session, provider_id, user_id)
    if user.role is Role.owner and role is not Role.owner and _owners(session, provider_id) <= 1:
        raise Conflict("a provider keeps at least one owner", code="last_owner")
    before = user.role.value
    user.role = role
    user.session_epoch += 1
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="user.role_changed",
        object_type="provider_user",
        object_id=user.id,
        before={"role": before},
        after={"role": role.value},
        now=now,
    )
    return user


def remove_user(
    session: Session, provider_id: str, user_id: str, *, actor: str, now: datetime
) -> ProviderUser:
    """Remove a login (kept for the audit trail, its sessions end); never the last owner."""
    user = get_user(session, provider_id, user_id)
    if user.role is Role.owner and _owners(session, provider_id) <= 1:
        raise Conflict("a provider keeps at least one owner", code="last_owner")
    user.removed_at = now
    user.session_epoch += 1
    # Free the address for a new account.
    user.email = f"{user.email}#removed-{user.id}"[:320]
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="user.removed",
        object_type="provider_user",
        object_id=user.id,
        before={"role": user.role.value},
        after=None,
        now=now,
    )
    return user


def set_password(
    session: Session, provider_id: str, user_id: str, password: str, *, actor: str, now: datetime
) -> ProviderUser:
    """Replace a user's password; their other sessions end."""
    user = get_user(session, provider_id, user_id)
    check_password(password)
    user.password_hash = _hasher.hash(password)
    user.session_epoch += 1
    user.failed_logins = 0
    user.locked_until = None
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="user.password_changed",
        object_type="provider_user",
        object_id=user.id,
        before=None,
        after=None,
        now=now,
    )
    return user
