"""Password hashing with argon2id (argon2-cffi), and the randomness credentials are made of."""

from __future__ import annotations

import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2PasswordHasher:
    """argon2-cffi's RFC 9106 low-memory profile (argon2id, 64 MiB, 3 passes)."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()

    def hash_password(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_password(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


class SystemSecrets:
    def random_token(self) -> str:
        return secrets.token_urlsafe(32)
