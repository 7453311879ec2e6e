"""The fake unit of work: a copy of the store's data that commit publishes."""

from __future__ import annotations

import copy
from types import TracebackType
from typing import Self

from tests.support.fakes.agents import FakeAgentRepository
from tests.support.fakes.blocklist import FakeBlocklistRepository
from tests.support.fakes.catalogue import FakeJobTypeRepository, FakeSoftwareRepository
from tests.support.fakes.events import FakeEventRepository
from tests.support.fakes.history import FakeHistoryRepository
from tests.support.fakes.identities import (
    FakeSessionRepository,
    FakeTokenRepository,
    FakeUserRepository,
)
from tests.support.fakes.jobs import FakeJobRepository, FakeTaskLogRepository, FakeTaskRepository
from tests.support.fakes.scheduling import FakeSchedulingRepository
from tests.support.fakes.store import FakeStore


class FakeUnitOfWork:
    """Works on a copy of the store's data; commit publishes it, anything else discards it."""

    def __init__(self, store: FakeStore, read_only: bool = False) -> None:
        self._store = store
        self._read_only = read_only

    def __enter__(self) -> Self:
        self._data = copy.deepcopy(self._store.data)
        self.agents = FakeAgentRepository(self._data, self._store)
        self.tasks = FakeTaskRepository(self._data, self._store)
        self.jobs = FakeJobRepository(self._data, self._store)
        self.jobtypes = FakeJobTypeRepository(self._data, self._store)
        self.software = FakeSoftwareRepository(self._data, self._store)
        self.logs = FakeTaskLogRepository(self._data, self._store)
        self.blocks = FakeBlocklistRepository(self._data)
        self.scheduling = FakeSchedulingRepository(self._data, self._store)
        self.tokens = FakeTokenRepository(self._data)
        self.users = FakeUserRepository(self._data)
        self.sessions = FakeSessionRepository(self._data)
        self.events = FakeEventRepository(self._data, self._store)
        self.history = FakeHistoryRepository(self._data)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self._store.data = self._data
        self._store.commits += 1


class FakeUnitOfWorkFactory:
    def __init__(self, store: FakeStore | None = None) -> None:
        self.store = store or FakeStore()

    def __call__(self, *, read_only: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store, read_only)
