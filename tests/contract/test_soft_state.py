"""The soft-state port (BatchedSoftState over each unit of work) and the repository's batched
write behind it, alike on the fakes, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from farm_adapters.batching import BatchedSoftState
from farm_domain.agents import SoftReport
from farm_domain.ports import UnitOfWorkFactory
from tests.contract.test_repositories import (  # noqa: F401  # the fixtures
    T0,
    database_url_pg,
    make_agent,
    uow,
)
from tests.support.fakes.unit_of_work import FakeUnitOfWork, FakeUnitOfWorkFactory


def add_agents(uow_factory: UnitOfWorkFactory, count: int) -> list[uuid.UUID]:
    agents = [
        make_agent(hostname=f"node{n}", last_heard_from=T0, free_ram=100) for n in range(count)
    ]
    with uow_factory() as u:
        for agent in agents:
            u.agents.add(agent)
        u.commit()
    return [agent.id for agent in agents]


def read(uow_factory: UnitOfWorkFactory, agent_id: uuid.UUID) -> tuple[object, ...] | None:
    with uow_factory(read_only=True) as u:
        agent = u.agents.get(agent_id)
    if agent is None:
        return None
    return agent.free_ram, agent.time_offset, agent.last_heard_from


def test_reports_wait_for_the_flush_then_are_written_in_one_batch(
    uow: UnitOfWorkFactory,  # noqa: F811  # the fixture
) -> None:
    ids = add_agents(uow, 3)
    soft = BatchedSoftState(uow)
    for n, agent_id in enumerate(ids):
        soft.report(SoftReport(agent_id, T0 + timedelta(seconds=n + 1), 1000 + n, n))

    assert read(uow, ids[0]) == (100, 0, T0)
    assert soft.flush() == 3
    for n, agent_id in enumerate(ids):
        assert read(uow, agent_id) == (1000 + n, n, T0 + timedelta(seconds=n + 1))
    assert soft.flush() == 0


def test_the_latest_report_of_an_agent_wins_whatever_the_order_they_arrive_in(
    uow: UnitOfWorkFactory,  # noqa: F811
) -> None:
    (agent_id,) = add_agents(uow, 1)
    soft = BatchedSoftState(uow)
    soft.report(SoftReport(agent_id, T0 + timedelta(seconds=5), 555, 5))
    soft.report(SoftReport(agent_id, T0 + timedelta(seconds=2), 222, 2))
    soft.flush()
    assert read(uow, agent_id) == (555, 5, T0 + timedelta(seconds=5))


def test_a_batch_never_overwrites_a_contact_written_after_its_report(
    uow: UnitOfWorkFactory,  # noqa: F811
) -> None:
    (agent_id,) = add_agents(uow, 1)
    soft = BatchedSoftState(uow)
    soft.report(SoftReport(agent_id, T0 + timedelta(seconds=1), 111, 1))
    later = T0 + timedelta(seconds=2)
    with uow() as u:  # a heartbeat's own transaction, committed before the flush
        agent = u.agents.get(agent_id, for_update=True)
        assert agent is not None
        u.agents.record_heard([SoftReport(agent_id, later, 222, 2)])
        u.commit()
    soft.flush()
    assert read(uow, agent_id) == (222, 2, later)


def test_a_report_of_a_deleted_agent_does_not_bring_it_back(
    uow: UnitOfWorkFactory,  # noqa: F811
) -> None:
    gone, kept = add_agents(uow, 2)
    soft = BatchedSoftState(uow)
    soft.report(SoftReport(gone, T0 + timedelta(seconds=1), 111, 1))
    soft.report(SoftReport(kept, T0 + timedelta(seconds=1), 333, 1))
    with uow() as u:
        u.agents.delete(gone)
        u.commit()
    soft.flush()
    assert read(uow, gone) is None
    assert read(uow, kept) == (333, 1, T0 + timedelta(seconds=1))


def test_record_heard_counts_the_agents_it_changed(uow: UnitOfWorkFactory) -> None:  # noqa: F811
    old, fresh = add_agents(uow, 2)
    with uow() as u:
        written = u.agents.record_heard(
            [
                SoftReport(old, T0 - timedelta(seconds=1), 1, 0),  # older than stored
                SoftReport(fresh, T0 + timedelta(seconds=1), 2, 0),
                SoftReport(uuid.uuid4(), T0, 3, 0),  # no such agent
            ]
        )
        u.commit()
    assert written == 1
    assert read(uow, old) == (100, 0, T0)


def test_write_through_writes_each_report_at_once(uow: UnitOfWorkFactory) -> None:  # noqa: F811
    (agent_id,) = add_agents(uow, 1)
    soft = BatchedSoftState(uow, write_through=True)
    soft.report(SoftReport(agent_id, T0 + timedelta(seconds=1), 777, 3))
    assert read(uow, agent_id) == (777, 3, T0 + timedelta(seconds=1))
    assert soft.pending == 0


class _Unavailable(Exception):
    pass


class _RefusingOnce(FakeUnitOfWorkFactory):
    """The database refuses the first commit."""

    refused = False

    def __call__(self, *, read_only: bool = False) -> FakeUnitOfWork:
        unit = super().__call__(read_only=read_only)
        if not self.refused and not read_only:
            self.refused = True
            unit.commit = self._refuse  # type: ignore[method-assign]  # this one unit only
        return unit

    @staticmethod
    def _refuse() -> None:
        raise _Unavailable


def test_a_batch_that_cannot_be_written_is_kept_for_the_next_flush() -> None:
    factory = _RefusingOnce()
    first, second = add_agents(FakeUnitOfWorkFactory(factory.store), 2)
    soft = BatchedSoftState(factory)
    soft.report(SoftReport(first, T0 + timedelta(seconds=1), 111, 1))
    soft.report(SoftReport(second, T0 + timedelta(seconds=1), 222, 1))
    with pytest.raises(_Unavailable):
        soft.flush()
    soft.report(SoftReport(second, T0 + timedelta(seconds=2), 333, 2))  # newer: replaces it
    assert soft.flush() == 2
    assert read(factory, first) == (111, 1, T0 + timedelta(seconds=1))
    assert read(factory, second) == (333, 2, T0 + timedelta(seconds=2))
