"""Pure identity rules: password policy, email normalisation, refresh-token digests."""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128


class Gender(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    OTHER = "OTHER"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why ``password`` is unacceptable, or None. NIST SP 800-63B: length over composition rules,
    and nothing trivially guessable from the account itself."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters"
    if len(set(password)) < 4:
        return "Password is too repetitive"
    lowered = password.lower()
    local = email.split("@", 1)[0].lower()
    if (local and len(local) >= 4 and local in lowered) or (name and name.lower() == lowered):
        return "Password must not contain your email or name"
    return None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def digest_refresh_token(token: str) -> str:
    """Refresh tokens are stored only as SHA-256 digests: a database leak yields no usable token
    (they are 256-bit random, so a fast hash is enough; no password hashing needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
