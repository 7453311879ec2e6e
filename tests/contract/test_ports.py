"""The fakes and the SQL adapter implement the same ports.

mypy proves it: each assignment below stops type-checking when an implementation drifts from its
protocol (a method renamed, a parameter added, a return type changed). The test checks at run
time what mypy cannot see: that entering a unit of work provides every repository the port names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, Engine

from farm_adapters.passwords import Argon2PasswordHasher, SystemSecrets
from farm_adapters.sql.agents import SqlAgentRepository
from farm_adapters.sql.blocklist import SqlBlocklistRepository
from farm_adapters.sql.catalogue import SqlJobTypeRepository, SqlSoftwareRepository
from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.events import SqlEventRepository
from farm_adapters.sql.history import SqlHistoryRepository
from farm_adapters.sql.identities import (
    SqlSessionRepository,
    SqlTokenRepository,
    SqlUserRepository,
)
from farm_adapters.sql.jobs import SqlJobRepository, SqlTaskLogRepository, SqlTaskRepository
from farm_adapters.sql.scheduling import SqlSchedulingRepository
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.ports import (
    AgentRepository,
    BlocklistRepository,
    EventRepository,
    HistoryRepository,
    JobRepository,
    JobTypeRepository,
    PasswordHasher,
    SchedulingRepository,
    Secrets,
    SessionRepository,
    SoftwareRepository,
    TaskLogRepository,
    TaskRepository,
    TokenRepository,
    UnitOfWork,
    UnitOfWorkFactory,
    UserRepository,
)
from tests.support.fakes.agents import FakeAgentRepository
from tests.support.fakes.blocklist import FakeBlocklistRepository
from tests.support.fakes.catalogue import FakeJobTypeRepository, FakeSoftwareRepository
from tests.support.fakes.events import FakeEventRepository
from tests.support.fakes.history import FakeHistoryRepository
from tests.support.fakes.identities import (
    CountingSecrets,
    FakeSessionRepository,
    FakeTokenRepository,
    FakeUserRepository,
    PlainPasswordHasher,
)
from tests.support.fakes.jobs import FakeJobRepository, FakeTaskLogRepository, FakeTaskRepository
from tests.support.fakes.scheduling import FakeSchedulingRepository
from tests.support.fakes.store import FakeData, FakeStore
from tests.support.fakes.unit_of_work import FakeUnitOfWorkFactory

SQL_UNITS_OF_WORK: Callable[[Engine], UnitOfWorkFactory] = SqlUnitOfWorkFactory
SQL_AGENTS: Callable[[Connection], AgentRepository] = SqlAgentRepository
SQL_TASKS: Callable[[Connection], TaskRepository] = SqlTaskRepository
SQL_JOBS: Callable[[Connection], JobRepository] = SqlJobRepository
SQL_JOBTYPES: Callable[[Connection], JobTypeRepository] = SqlJobTypeRepository
SQL_SOFTWARE: Callable[[Connection], SoftwareRepository] = SqlSoftwareRepository
SQL_LOGS: Callable[[Connection], TaskLogRepository] = SqlTaskLogRepository
SQL_BLOCKS: Callable[[Connection], BlocklistRepository] = SqlBlocklistRepository
SQL_SCHEDULING: Callable[[Connection], SchedulingRepository] = SqlSchedulingRepository
SQL_TOKENS: Callable[[Connection], TokenRepository] = SqlTokenRepository
SQL_USERS: Callable[[Connection], UserRepository] = SqlUserRepository
SQL_SESSIONS: Callable[[Connection], SessionRepository] = SqlSessionRepository
SQL_EVENTS: Callable[[Connection], EventRepository] = SqlEventRepository
SQL_HISTORY: Callable[[Connection], HistoryRepository] = SqlHistoryRepository

FAKE_UNITS_OF_WORK: Callable[[FakeStore], UnitOfWorkFactory] = FakeUnitOfWorkFactory
FAKE_AGENTS: Callable[[FakeData, FakeStore], AgentRepository] = FakeAgentRepository
FAKE_TASKS: Callable[[FakeData, FakeStore], TaskRepository] = FakeTaskRepository
FAKE_JOBS: Callable[[FakeData, FakeStore], JobRepository] = FakeJobRepository
FAKE_JOBTYPES: Callable[[FakeData, FakeStore], JobTypeRepository] = FakeJobTypeRepository
FAKE_SOFTWARE: Callable[[FakeData, FakeStore], SoftwareRepository] = FakeSoftwareRepository
FAKE_LOGS: Callable[[FakeData, FakeStore], TaskLogRepository] = FakeTaskLogRepository
FAKE_BLOCKS: Callable[[FakeData], BlocklistRepository] = FakeBlocklistRepository
FAKE_SCHEDULING: Callable[[FakeData, FakeStore], SchedulingRepository] = FakeSchedulingRepository
FAKE_TOKENS: Callable[[FakeData], TokenRepository] = FakeTokenRepository
FAKE_USERS: Callable[[FakeData], UserRepository] = FakeUserRepository
FAKE_SESSIONS: Callable[[FakeData], SessionRepository] = FakeSessionRepository

ARGON2: Callable[[], PasswordHasher] = Argon2PasswordHasher
PLAIN_PASSWORDS: Callable[[], PasswordHasher] = PlainPasswordHasher
SYSTEM_SECRETS: Callable[[], Secrets] = SystemSecrets
COUNTING_SECRETS: Callable[[], Secrets] = CountingSecrets
FAKE_EVENTS: Callable[[FakeData, FakeStore], EventRepository] = FakeEventRepository
FAKE_HISTORY: Callable[[FakeData], HistoryRepository] = FakeHistoryRepository

REPOSITORIES = sorted(
    name for name, value in vars(UnitOfWork).items() if isinstance(value, property)
)


@pytest.fixture(params=["fake", "sqlite"])
def units_of_work(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[UnitOfWorkFactory]:
    if request.param == "fake":
        yield FAKE_UNITS_OF_WORK(FakeStore())
        return
    engine = create_database_engine(sqlite_url)
    yield SQL_UNITS_OF_WORK(engine)
    engine.dispose()


def test_a_unit_of_work_offers_every_repository_of_the_port(
    units_of_work: UnitOfWorkFactory,
) -> None:
    assert len(REPOSITORIES) == 13
    with units_of_work(read_only=True) as uow:
        missing = [name for name in REPOSITORIES if not hasattr(uow, name)]
    assert missing == []
