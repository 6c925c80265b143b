"""Public identifiers: a type prefix and random base32 text, readable in logs and URLs."""

import base64
import secrets


def new_id(prefix: str) -> str:
    token = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    return f"{prefix}_{token}"
