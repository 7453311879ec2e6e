"""The credentials' repositories: tokens, users and dashboard sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from farm_adapters.sql import tables as t
from farm_adapters.sql.rows import AGENT_ID, insert_ignoring_duplicates
from farm_domain.access import Role
from farm_domain.credentials import Session, Token, User
from farm_domain.errors import AlreadyExists

_TOKEN_COLUMNS = (
    t.tokens.c.name,
    t.tokens.c.role,
    t.tokens.c.created,
    t.tokens.c.expires,
    t.tokens.c.revoked,
    t.tokens.c.agent_id,
)

# Asked on every request with a token (by digest) and every transactional heartbeat of an agent
# without one (of the agent): built once, since building a statement and its cache key cost
# more than running it on SQLite.
_TOKEN_BY_DIGEST = select(*_TOKEN_COLUMNS, t.tokens.c.digest).where(
    t.tokens.c.digest == bindparam("digest")
)
_TOKENS_OF_AGENT = (
    select(*_TOKEN_COLUMNS).where(t.tokens.c.agent_id == AGENT_ID).order_by(t.tokens.c.name)
)


def _token(m: RowMapping) -> Token:
    return Token(
        name=m["name"],
        role=Role(m["role"]),
        created=m["created"],
        expires=m["expires"],
        revoked=m["revoked"],
        agent_id=m["agent_id"],
    )


def _user(m: RowMapping) -> User:
    return User(name=m["name"], role=Role(m["role"]), created=m["created"])


def _session(m: RowMapping) -> Session:
    return Session(
        user=m["user_name"], csrf_token=m["csrf_token"], created=m["created"], expires=m["expires"]
    )


class SqlTokenRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, token: Token, digest: str) -> None:
        added = self._c.execute(
            insert_ignoring_duplicates(self._c, t.tokens)
            .values(
                name=token.name,
                digest=digest,
                role=token.role.value,
                agent_id=token.agent_id,
                created=token.created,
                expires=token.expires,
                revoked=token.revoked,
            )
            .returning(t.tokens.c.name)
        ).first()
        if added is None:  # perhaps added by a concurrent request
            raise AlreadyExists(f"a token named {token.name} exists")

    def get(self, name: str) -> Token | None:
        row = self._c.execute(select(*_TOKEN_COLUMNS).where(t.tokens.c.name == name)).first()
        return None if row is None else _token(row._mapping)

    def by_digest(self, digest: str) -> tuple[Token, str] | None:
        row = self._c.execute(_TOKEN_BY_DIGEST, {"digest": digest}).first()
        return None if row is None else (_token(row._mapping), row.digest)

    def query(self) -> list[Token]:
        rows = self._c.execute(select(*_TOKEN_COLUMNS).order_by(t.tokens.c.name))
        return [_token(r) for r in rows.mappings()]

    def of_agent(self, agent_id: uuid.UUID) -> list[Token]:
        rows = self._c.execute(_TOKENS_OF_AGENT, {"agent_id": agent_id})
        return [_token(r) for r in rows.mappings()]

    def revoke(self, name: str, when: datetime) -> None:
        self._c.execute(update(t.tokens).where(t.tokens.c.name == name).values(revoked=when))

    def delete(self, name: str) -> None:
        self._c.execute(delete(t.tokens).where(t.tokens.c.name == name))


class SqlUserRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, user: User, password_hash: str) -> None:
        added = self._c.execute(
            insert_ignoring_duplicates(self._c, t.users)
            .values(
                name=user.name,
                role=user.role.value,
                password_hash=password_hash,
                created=user.created,
            )
            .returning(t.users.c.name)
        ).first()
        if added is None:  # perhaps added by a concurrent request
            raise AlreadyExists(f"a user named {user.name} exists")

    def get(self, name: str) -> User | None:
        row = self._c.execute(select(t.users).where(t.users.c.name == name)).first()
        return None if row is None else _user(row._mapping)

    def with_password(self, name: str) -> tuple[User, str] | None:
        row = self._c.execute(select(t.users).where(t.users.c.name == name)).first()
        return None if row is None else (_user(row._mapping), row.password_hash)

    def query(self) -> list[User]:
        rows = self._c.execute(select(t.users).order_by(t.users.c.name))
        return [_user(r) for r in rows.mappings()]

    def set_password(self, name: str, password_hash: str) -> None:
        self._c.execute(
            update(t.users).where(t.users.c.name == name).values(password_hash=password_hash)
        )

    def delete(self, name: str) -> None:
        self._c.execute(delete(t.users).where(t.users.c.name == name))


class SqlSessionRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, session: Session, digest: str) -> None:
        self._c.execute(
            insert(t.sessions).values(
                digest=digest,
                user_name=session.user,
                csrf_token=session.csrf_token,
                created=session.created,
                expires=session.expires,
            )
        )

    def by_digest(self, digest: str) -> tuple[Session, str] | None:
        row = self._c.execute(select(t.sessions).where(t.sessions.c.digest == digest)).first()
        return None if row is None else (_session(row._mapping), row.digest)

    def delete(self, digest: str) -> None:
        self._c.execute(delete(t.sessions).where(t.sessions.c.digest == digest))

    def delete_of_user(self, user: str) -> None:
        self._c.execute(delete(t.sessions).where(t.sessions.c.user_name == user))

    def delete_expired(self, now: datetime) -> None:
        self._c.execute(delete(t.sessions).where(t.sessions.c.expires <= now))
