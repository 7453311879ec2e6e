"""Heartbeats' soft state: what may be written late (``soft_report``), and how the registry
hands it to the SoftState port instead of writing it in a transaction of its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from farm_domain.agent_reports import SOFT_FIELDS, soft_report
from farm_domain.agents import Agent, AgentChanges, SoftReport
from farm_domain.enums import AgentState, WorkState
from farm_domain.errors import NotFound
from tests.support.builders import World
from tests.support.identities import ADMIN, ANONYMOUS_AGENT


@pytest.fixture
def world() -> World:
    return World(soft_state=True)


def heartbeat(world: World, agent: Agent, **fields: object) -> Agent:
    return world.registry.update(ANONYMOUS_AGENT, agent.id, AgentChanges(**fields))  # type: ignore[arg-type]  # any AgentChanges fields


def stored(world: World, agent_id: uuid.UUID) -> Agent:
    return world.registry.get(ADMIN, agent_id)


def pending(world: World) -> dict[uuid.UUID, SoftReport]:
    assert world.soft_state is not None
    return world.soft_state.pending


def flush(world: World) -> None:
    assert world.soft_state is not None
    world.soft_state.flush()


AGENT = Agent(
    id=uuid.UUID(int=1), hostname="node1", remote_ip="10.0.0.7", ram=4096, free_ram=100, cpus=8,
    port=50000,
)  # fmt: skip
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_liveness_and_resources_are_the_soft_state() -> None:
    assert frozenset({"free_ram", "time_offset", "last_heard_from"}) == SOFT_FIELDS


def test_a_change_of_soft_state_alone_is_a_soft_report() -> None:
    after = attrs.evolve(AGENT, free_ram=5, time_offset=3, last_heard_from=NOW)
    assert soft_report(AGENT, after) == SoftReport(AGENT.id, NOW, 5, 3)


@pytest.mark.parametrize(
    "change",
    [
        {"state": AgentState.RUNNING},
        {"state": AgentState.OFFLINE},
        {"disabled": True},
        {"hostname": "node2"},
        {"remote_ip": "10.0.0.8"},
        {"upgrade_to": "1.2"},
        {"restart_requested": True},
        {"mac_addresses": frozenset({"aa:bb:cc:dd:ee:ff"})},
        {"gpus": frozenset({"GPU"})},
    ],
)
def test_any_other_change_is_never_deferred(change: dict[str, Any]) -> None:
    after = attrs.evolve(AGENT, free_ram=5, last_heard_from=NOW, **change)
    assert soft_report(AGENT, after) is None


def test_an_idle_agents_heartbeat_waits_in_the_soft_state_without_a_transaction(
    world: World,
) -> None:
    agent, _ = world.announce(free_ram=100)
    world.clock.advance(5)
    commits = world.uow.store.commits
    world.queue.calls.clear()

    answered = heartbeat(world, agent, state="online", free_ram=200, remote_ip="127.0.0.1")

    assert world.uow.store.commits == commits
    assert (answered.free_ram, answered.last_heard_from) == (200, world.clock.now())
    assert stored(world, agent.id).free_ram == 100
    assert world.queue.calls == [("assign_tasks_to_agent", (agent.id,))]
    flush(world)
    seen = stored(world, agent.id)
    assert (seen.free_ram, seen.last_heard_from) == (200, world.clock.now())


def test_a_change_of_state_is_written_at_once(world: World) -> None:
    agent, _ = world.announce(free_ram=100)
    world.clock.advance(5)
    heartbeat(world, agent, state="running", free_ram=300)
    seen = stored(world, agent.id)
    assert (seen.state, seen.free_ram, seen.last_heard_from) == (
        AgentState.RUNNING,
        300,
        world.clock.now(),
    )
    assert pending(world) == {}


def test_going_offline_is_written_at_once_and_releases_tasks(world: World) -> None:
    agent, _ = world.announce()
    task = world.task(world.job(), agent_id=agent.id, state=WorkState.RUNNING, sent_to_agent=True)
    heartbeat(world, agent, state="offline", free_ram=1)
    assert stored(world, agent.id).state is AgentState.OFFLINE
    assert world.get_task(task.id).agent_id is None


def test_a_report_matching_the_tasks_held_is_soft_and_asks_for_no_work(world: World) -> None:
    agent, _ = world.announce(state="running")
    task = world.task(
        world.job(), agent_id=agent.id, state=WorkState.RUNNING, sent_to_agent=True, attempts=1
    )
    world.queue.calls.clear()
    commits = world.uow.store.commits
    heartbeat(
        world,
        agent,
        state="running",
        free_ram=7,
        reported_task_ids=frozenset({task.id}),
        reported_attempts={task.id: 1},
    )
    assert world.uow.store.commits == commits
    assert list(pending(world)) == [agent.id]
    assert world.queue.calls == []


def test_a_report_missing_a_task_is_reconciled_at_once(world: World) -> None:
    agent, _ = world.announce(state="running")
    job = world.job()
    lost = world.task(
        job, agent_id=agent.id, state=WorkState.RUNNING, sent_to_agent=True, attempts=1
    )
    world.clock.advance(60)  # past the reconcile grace
    heartbeat(world, agent, state="running", free_ram=7, reported_task_ids=frozenset())
    requeued = world.get_task(lost.id)
    assert (requeued.agent_id, requeued.failures) == (None, 1)
    assert stored(world, agent.id).free_ram == 7
    assert pending(world) == {}


def test_a_heartbeat_waiting_when_its_agent_is_deleted_does_not_bring_it_back(
    world: World,
) -> None:
    agent, _ = world.announce()
    heartbeat(world, agent, state="online", free_ram=5)
    world.registry.delete(ADMIN, agent.id)
    flush(world)
    with pytest.raises(NotFound):
        stored(world, agent.id)


def test_a_heartbeat_after_deletion_is_not_found_and_reports_nothing(world: World) -> None:
    agent, _ = world.announce()
    world.registry.delete(ADMIN, agent.id)
    with pytest.raises(NotFound):
        heartbeat(world, agent, state="online", free_ram=5)
    assert pending(world) == {}


def test_a_waiting_report_never_overwrites_a_later_transaction(world: World) -> None:
    agent, _ = world.announce(free_ram=100)
    world.clock.advance(1)
    heartbeat(world, agent, state="online", free_ram=200)
    world.clock.advance(1)
    heartbeat(world, agent, state="running", free_ram=300)  # a change of state: written now
    flush(world)
    seen = stored(world, agent.id)
    assert (seen.state, seen.free_ram, seen.last_heard_from) == (
        AgentState.RUNNING,
        300,
        world.clock.now(),
    )


def test_the_latest_of_many_heartbeats_is_what_is_written(world: World) -> None:
    agent, _ = world.announce()
    for free in (10, 20, 30):
        world.clock.advance(1)
        heartbeat(world, agent, state="online", free_ram=free)
    assert len(pending(world)) == 1
    flush(world)
    assert stored(world, agent.id).free_ram == 30


def test_a_task_the_agent_runs_but_no_longer_holds_is_stopped_again(world: World) -> None:
    """A stop that never reached the agent (stopped, retried, canceled, another agent's): its
    next heartbeat still lists the task, and the master asks it again to stop it."""
    agent, _ = world.announce(state="running")
    job = world.job()
    mine = world.task(
        job, agent_id=agent.id, state=WorkState.RUNNING, sent_to_agent=True, attempts=1
    )
    retried = world.task(job, attempts=1)  # requeued by a wrangler: nobody's
    other, _ = world.announce(id=uuid.uuid4(), hostname="node2", state="running")
    theirs = world.task(
        job, agent_id=other.id, state=WorkState.RUNNING, sent_to_agent=True, attempts=1
    )
    finished = world.task(job, agent_id=agent.id, state=WorkState.DONE, attempts=1)
    world.queue.calls.clear()
    heartbeat(
        world,
        agent,
        state="running",
        reported_task_ids=frozenset({mine.id, retried.id, theirs.id, finished.id}),
    )
    stops = [args for name, args in world.queue.calls if name == "stop_tasks"]
    assert stops == [(agent.id, agent.remote_ip, agent.port, (retried.id, theirs.id))]
    # Its own tasks are untouched: the running one is still held, the finished one stays done.
    assert world.get_task(mine.id).agent_id == agent.id
    assert world.get_task(finished.id).state is WorkState.DONE
    assert world.get_task(theirs.id).agent_id == other.id


def test_a_heartbeat_listing_only_what_the_agent_holds_stops_nothing(world: World) -> None:
    agent, _ = world.announce(state="running")
    task = world.task(
        world.job(), agent_id=agent.id, state=WorkState.RUNNING, sent_to_agent=True, attempts=1
    )
    world.queue.calls.clear()
    heartbeat(world, agent, state="running", reported_task_ids=frozenset({task.id}))
    assert [name for name, _ in world.queue.calls if name == "stop_tasks"] == []
