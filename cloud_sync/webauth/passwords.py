"""Password hashing for web accounts (LAN dashboard, central console): scrypt, memory-hard and salted.

Hashes are ``scrypt$n$r$p$salt$hash`` (``n=2**14, r=8, p=1``, 16-byte salt), so the parameters
can be raised later without breaking old hashes. ``DUMMY_HASH`` has the same parameters: an
unknown user name is checked against it, so that it costs as long as a wrong password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["DUMMY_HASH", "MIN_PASSWORD", "check_password", "hash_password", "verify_password"]

MIN_PASSWORD = 8
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 2**20, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=128 * 2**20,
            dklen=len(expected),
        )
    except ValueError:
        return False  # a malformed stored hash never matches
    return hmac.compare_digest(got, expected)


# A hash to check unknown user names against, so that a wrong name costs as long as a wrong password.
DUMMY_HASH = hash_password(secrets.token_urlsafe(12))


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
