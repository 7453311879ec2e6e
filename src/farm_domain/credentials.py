"""Credentials: bearer tokens, people with passwords, and their dashboard sessions."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import attrs

from farm_domain.access import Role

AGENT_TOKEN_PREFIX = "agent:"


@attrs.frozen
class Token:
    """A bearer credential. Its secret is never stored: the repository keeps its digest."""

    name: str
    role: Role
    created: datetime
    expires: datetime | None = None
    revoked: datetime | None = None
    agent_id: uuid.UUID | None = None
    """The agent an agent's own credential (named ``agent:<id>``) acts as."""

    def usable(self, now: datetime) -> bool:
        return self.revoked is None and (self.expires is None or now < self.expires)


@attrs.frozen
class User:
    """A person who logs in to the dashboard. Their password's hash stays in the repository."""

    name: str
    role: Role
    created: datetime


@attrs.frozen
class Session:
    """A dashboard login. Its secret (the cookie's value) is stored as a digest only."""

    user: str
    csrf_token: str = attrs.field(repr=False)
    """Sent back with every form post: a cross-site page cannot read it."""
    created: datetime
    expires: datetime


def digest(secret: str) -> str:
    """How secrets are stored and looked up: SHA-256, hex. A token or session secret carries
    256 random bits, so a fast hash is enough (unlike passwords)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def agent_token_name(agent_id: uuid.UUID) -> str:
    return f"{AGENT_TOKEN_PREFIX}{agent_id}"
