"""The credentials' fake repositories, and fake randomness and password hashing."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

import attrs

from farm_domain.credentials import Session, Token, User
from farm_domain.errors import AlreadyExists
from tests.support.fakes.store import FakeData


class FakeTokenRepository:
    def __init__(self, data: FakeData) -> None:
        self._d = data

    def add(self, token: Token, digest: str) -> None:
        if token.name in self._d.tokens or any(d == digest for _, d in self._d.tokens.values()):
            raise AlreadyExists(f"a token named {token.name} exists")
        self._d.tokens[token.name] = (token, digest)

    def get(self, name: str) -> Token | None:
        found = self._d.tokens.get(name)
        return None if found is None else found[0]

    def by_digest(self, digest: str) -> tuple[Token, str] | None:
        return next((found for found in self._d.tokens.values() if found[1] == digest), None)

    def query(self) -> list[Token]:
        return [token for _, (token, _) in sorted(self._d.tokens.items())]

    def of_agent(self, agent_id: uuid.UUID) -> list[Token]:
        return [token for token in self.query() if token.agent_id == agent_id]

    def revoke(self, name: str, when: datetime) -> None:
        if name in self._d.tokens:
            token, digest = self._d.tokens[name]
            self._d.tokens[name] = (attrs.evolve(token, revoked=when), digest)

    def delete(self, name: str) -> None:
        self._d.tokens.pop(name, None)


class FakeUserRepository:
    def __init__(self, data: FakeData) -> None:
        self._d = data

    def add(self, user: User, password_hash: str) -> None:
        if user.name in self._d.users:
            raise AlreadyExists(f"a user named {user.name} exists")
        self._d.users[user.name] = (user, password_hash)

    def get(self, name: str) -> User | None:
        found = self._d.users.get(name)
        return None if found is None else found[0]

    def with_password(self, name: str) -> tuple[User, str] | None:
        return self._d.users.get(name)

    def query(self) -> list[User]:
        return [user for _, (user, _) in sorted(self._d.users.items())]

    def set_password(self, name: str, password_hash: str) -> None:
        if name in self._d.users:
            self._d.users[name] = (self._d.users[name][0], password_hash)

    def delete(self, name: str) -> None:
        self._d.users.pop(name, None)
        # The sessions' foreign key cascades.
        for digest, session in list(self._d.sessions.items()):
            if session.user == name:
                del self._d.sessions[digest]


class FakeSessionRepository:
    def __init__(self, data: FakeData) -> None:
        self._d = data

    def add(self, session: Session, digest: str) -> None:
        if session.user not in self._d.users or digest in self._d.sessions:
            raise KeyError("no such user, or a session with this digest exists")
        self._d.sessions[digest] = session

    def by_digest(self, digest: str) -> tuple[Session, str] | None:
        session = self._d.sessions.get(digest)
        return None if session is None else (session, digest)

    def delete(self, digest: str) -> None:
        self._d.sessions.pop(digest, None)

    def delete_of_user(self, user: str) -> None:
        for digest, session in list(self._d.sessions.items()):
            if session.user == user:
                del self._d.sessions[digest]

    def delete_expired(self, now: datetime) -> None:
        for digest, session in list(self._d.sessions.items()):
            if session.expires <= now:
                del self._d.sessions[digest]


class CountingSecrets:
    """Predictable secrets: ``secret-1``, ``secret-2`` ..."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def random_token(self) -> str:
        return f"secret-{next(self._n)}"


class PlainPasswordHasher:
    """A fast stand-in for argon2 (tests only): the hash is the password, marked; it counts
    the checks it made, so tests can see an unknown user's login checked a password too."""

    def __init__(self) -> None:
        self.checks = 0

    def hash_password(self, password: str) -> str:
        return f"plain${password}"

    def verify_password(self, password_hash: str, password: str) -> bool:
        self.checks += 1
        return password_hash == f"plain${password}"
