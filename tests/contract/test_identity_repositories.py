"""The credentials' repositories behave alike on the fakes, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from farm_adapters.passwords import Argon2PasswordHasher, SystemSecrets
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.access import Role
from farm_domain.credentials import Session, Token, User
from farm_domain.ports import UnitOfWorkFactory
from tests.support.databases import empty_tables
from tests.support.fakes.unit_of_work import FakeUnitOfWorkFactory

T0 = datetime(2026, 3, 1, 10, 30, 15, 250000, tzinfo=UTC)


@pytest.fixture(params=["fake", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def uow(request: pytest.FixtureRequest) -> Iterator[UnitOfWorkFactory]:
    if request.param == "fake":
        yield FakeUnitOfWorkFactory()
        return
    if request.param == "sqlite":
        engine = create_database_engine(request.getfixturevalue("sqlite_url"))
    else:
        engine = create_database_engine(request.getfixturevalue("postgres_database_url"))
        empty_tables(engine)
    yield SqlUnitOfWorkFactory(engine)
    engine.dispose()


def test_tokens_read_back_by_name_and_by_digest(uow: UnitOfWorkFactory) -> None:
    agent_id = uuid.uuid4()
    viewer = Token("viewer", Role.VIEWER, T0, expires=T0 + timedelta(days=3))
    agent = Token(f"agent:{agent_id}", Role.AGENT, T0, agent_id=agent_id)
    join = Token("join", Role.AGENT_JOIN, T0)
    with uow() as u:
        u.tokens.add(viewer, "d" * 64)
        u.tokens.add(agent, "a" * 64)
        u.tokens.add(join, "j" * 64)
        u.commit()
    with uow(read_only=True) as u:
        assert u.tokens.get("viewer") == viewer
        assert u.tokens.get("nope") is None
        assert u.tokens.by_digest("a" * 64) == (agent, "a" * 64)
        assert u.tokens.by_digest("b" * 64) is None
        assert u.tokens.query() == [agent, join, viewer]
        assert u.tokens.of_agent(agent_id) == [agent]
        assert u.tokens.of_agent(uuid.uuid4()) == []


def test_tokens_are_revoked_and_deleted(uow: UnitOfWorkFactory) -> None:
    with uow() as u:
        u.tokens.add(Token("a", Role.ADMIN, T0), "1" * 64)
        u.tokens.add(Token("b", Role.VIEWER, T0), "2" * 64)
        u.commit()
    with uow() as u:
        u.tokens.revoke("a", T0 + timedelta(hours=1))
        u.tokens.delete("b")
        u.tokens.delete("nope")
        u.commit()
    with uow(read_only=True) as u:
        assert u.tokens.query() == [Token("a", Role.ADMIN, T0, revoked=T0 + timedelta(hours=1))]
        assert u.tokens.by_digest("2" * 64) is None


def test_users_keep_their_password_hash_apart(uow: UnitOfWorkFactory) -> None:
    alice = User("alice", Role.ARTIST, T0)
    bob = User("bob", Role.ADMIN, T0)
    with uow() as u:
        u.users.add(bob, "hash-b")
        u.users.add(alice, "hash-a")
        u.commit()
    with uow() as u:
        assert u.users.get("alice") == alice
        assert u.users.get("carol") is None
        assert u.users.with_password("alice") == (alice, "hash-a")
        assert u.users.with_password("carol") is None
        assert u.users.query() == [alice, bob]
        u.users.set_password("alice", "hash-a2")
        u.commit()
    with uow() as u:
        assert u.users.with_password("alice") == (alice, "hash-a2")
        u.users.delete("bob")
        u.commit()
    with uow(read_only=True) as u:
        assert u.users.query() == [alice]


def test_sessions_by_digest_and_their_endings(uow: UnitOfWorkFactory) -> None:
    def session(user: str, hours: int) -> Session:
        return Session(user, f"csrf-{user}-{hours}", T0, T0 + timedelta(hours=hours))

    with uow() as u:
        u.users.add(User("alice", Role.ARTIST, T0), "h")
        u.users.add(User("bob", Role.VIEWER, T0), "h")
        u.sessions.add(session("alice", 1), "a1")
        u.sessions.add(session("alice", 12), "a12")
        u.sessions.add(session("bob", 12), "b12")
        u.sessions.add(session("bob", 13), "b13")
        u.commit()
    with uow() as u:
        assert u.sessions.by_digest("a1") == (session("alice", 1), "a1")
        assert u.sessions.by_digest("zz") is None
        u.sessions.delete_expired(T0 + timedelta(hours=1))
        u.sessions.delete("b13")
        u.commit()
    with uow() as u:
        assert u.sessions.by_digest("a1") is None
        assert u.sessions.by_digest("b13") is None
        assert u.sessions.by_digest("a12") is not None
        u.sessions.delete_of_user("alice")
        u.commit()
    with uow() as u:
        assert u.sessions.by_digest("a12") is None
        assert u.sessions.by_digest("b12") is not None
        u.users.delete("bob")  # a user's sessions go with them
        u.commit()
    with uow(read_only=True) as u:
        assert u.sessions.by_digest("b12") is None


def test_argon2_hashes_are_argon2id_and_verify_only_their_password() -> None:
    hasher = Argon2PasswordHasher()
    hashed = hasher.hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert hasher.hash_password("correct horse") != hashed  # salted
    assert hasher.verify_password(hashed, "correct horse")
    assert not hasher.verify_password(hashed, "wrong horse")
    assert not hasher.verify_password("not a hash", "correct horse")


def test_system_secrets_are_long_url_safe_and_new_each_time() -> None:
    secrets = SystemSecrets()
    made = {secrets.random_token() for _ in range(100)}
    assert len(made) == 100
    assert all(len(s) == 43 and s.replace("-", "").replace("_", "").isalnum() for s in made)
