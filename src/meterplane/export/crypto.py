"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256), key derived from METERPLANE_SECRET_KEY."""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken

from meterplane.kit.errors import InvalidInput, MeterplaneError


class SecretKeyMissing(MeterplaneError):
    status_code = 503
    code = "secret_key_missing"


def _fernet(secret_key: str | None) -> Fernet:
    if not secret_key:
        raise SecretKeyMissing(
            "METERPLANE_SECRET_KEY is not set: the server cannot store credentials. Set it to "
            "a long random string (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            " and keep it: stored credentials cannot be read without it."
        )
    digest = hashlib.sha256(secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(secret_key: str | None, values: dict[str, str]) -> str:
    return _fernet(secret_key).encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def unseal(secret_key: str | None, token: str) -> dict[str, str]:
    try:
        plain = _fernet(secret_key).decrypt(token.encode())
    except InvalidToken:
        raise InvalidInput(
            "stored credentials cannot be decrypted with the current METERPLANE_SECRET_KEY; "
            "configure the target's credentials again",
            code="credentials_unreadable",
        ) from None
    values: dict[str, str] = json.loads(plain)
    return values
