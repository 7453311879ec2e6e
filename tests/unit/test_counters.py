"""What the services count for ``/metrics`` (``Counters``), on fakes: each event once, by the
process it happens in."""

from __future__ import annotations

import ipaddress

import pytest

from farm_domain.access import AccessPolicy, Identity, Role
from farm_domain.agents import AgentChanges
from farm_domain.answers import Accepted, AssignAnswer, Busy, Conflict, Refused, Unreachable
from farm_domain.enums import WorkState
from farm_domain.errors import Conflict as ConflictError
from farm_domain.errors import Forbidden, Unauthenticated
from farm_domain.job_requests import JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from farm_domain.monitoring import Monitoring
from farm_domain.ports import Exposition
from tests.support.builders import World
from tests.support.identities import ADMIN


@pytest.fixture
def world() -> World:
    world = World()
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render", max_batch=2))
    return world


def submit(world: World, **fields: object) -> int:
    spec: dict[str, object] = {
        "title": "shot",
        "jobtype": "render",
        "start": 1,
        "end": 4,
        "batch": 2,
    }
    spec.update(fields)
    return world.jobs.submit(ADMIN, JobSpec(**spec)).job.id  # type: ignore[arg-type]  # fields of any type, from the test


@pytest.mark.parametrize(
    ("answer", "outcome", "requeues"),
    [
        (Accepted(), "accepted", {}),
        (Refused("Not enough ram"), "refused", {"refused": 2}),
        (Conflict(frozenset({1}), "tasks already assigned"), "conflict", {"refused": 2}),
        (Busy("shutting down"), "busy", {"declined": 2}),
        (Unreachable("ConnectError"), "unreachable", {"agent_offline": 2}),
    ],
    ids=["accepted", "refused", "conflict", "busy", "unreachable"],
)
def test_each_answer_to_a_batch_is_counted_with_what_it_requeued(
    world: World, answer: AssignAnswer, outcome: str, requeues: dict[str, int]
) -> None:
    submit(world)
    agent, _ = world.announce()
    world.client.answer("assign", answer)
    assert len(world.dispatcher.assign_tasks_to_agent(agent.id)) == 2
    world.dispatcher.send_tasks_to_agent(agent.id)
    counted = world.counters.counts
    assert counted["assigned", ""] == 2
    assert {label for kind, label in counted if kind == "dispatched"} == {outcome}
    assert counted["dispatched", outcome] == 1
    assert {label: n for (kind, label), n in counted.items() if kind == "requeued"} == requeues


def test_failures_retries_give_backs_and_stale_reports(world: World) -> None:
    job_id = submit(world, requeue=1)
    agent, _ = world.announce()
    other, _ = world.announce(hostname="other")
    first, second = world.dispatcher.assign_tasks_to_agent(agent.id)
    world.jobs.report(ADMIN, job_id, first, TaskReport(state="failed", reason="ram"))
    world.jobs.report(ADMIN, job_id, second, TaskReport(state="queued", give_back=True))
    job = world.job()
    held = world.task(job, agent_id=agent.id, sent_to_agent=True, attempts=2)
    with pytest.raises(ConflictError):  # another agent's task
        world.jobs.report(ADMIN, job.id, held.id, TaskReport(state="done"), reporter=other.id)
    with pytest.raises(ConflictError):  # its agent runs its second attempt now
        world.jobs.report(ADMIN, job.id, held.id, TaskReport(state="done"), attempt=1)
    world.jobs.report(ADMIN, job.id, held.id, TaskReport(state="done"), attempt=2)
    assert dict(world.counters.counts) == {
        ("assigned", ""): 2,
        ("failed", "ram"): 1,
        ("requeued", "retry"): 1,
        ("requeued", "given_back"): 1,
        ("stale_report", ""): 2,
    }


def test_a_task_lost_by_its_agent_and_an_agent_going_offline(world: World) -> None:
    agent, _ = world.announce()
    job = world.job(requeue=3)
    lost = world.task(job, agent_id=agent.id, sent_to_agent=True, sent_at=world.clock.now())
    kept = world.task(job, frame=2.0, agent_id=agent.id, sent_to_agent=True, attempts=1)
    world.clock.advance(31)
    world.registry.update(
        ADMIN, agent.id, AgentChanges(state="running", reported_task_ids=frozenset({kept.id}))
    )
    assert world.get_task(lost.id).agent_id is None
    world.registry.update(
        ADMIN, agent.id, AgentChanges(state="offline", reported_task_ids=frozenset({kept.id}))
    )
    assert dict(world.counters.counts) == {
        ("failed", "lost"): 1,
        ("requeued", "lost"): 1,
        ("requeued", "agent_offline"): 1,
    }


def test_one_attempt_reported_by_two_agents_is_a_double_assignment(world: World) -> None:
    holder, _ = world.announce(hostname="holder")
    other, _ = world.announce(hostname="other")
    job = world.job()
    task = world.task(
        job, agent_id=holder.id, sent_to_agent=True, attempts=2, state=WorkState.RUNNING
    )
    earlier = AgentChanges(
        state="running", reported_task_ids=frozenset({task.id}), reported_attempts={task.id: 1}
    )
    world.registry.update(ADMIN, other.id, earlier)  # an attempt taken from it: only a stray
    assert world.counters.counts["double_assignment", ""] == 0
    same = AgentChanges(
        state="running", reported_task_ids=frozenset({task.id}), reported_attempts={task.id: 2}
    )
    world.registry.update(ADMIN, other.id, same)
    assert world.counters.counts["double_assignment", ""] == 1


class Source:
    def __init__(self) -> None:
        self.read = 0

    def exposition(self, accept: str | None) -> Exposition:
        self.read += 1
        return Exposition(b"farm_up 1\n", "text/plain")

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        pass


class Ready:
    def problems(self) -> list[str]:
        return []


def test_metrics_are_read_from_the_metrics_networks_or_with_a_credential_that_reads() -> None:
    source = Source()
    monitoring = Monitoring(source, Ready(), [ipaddress.ip_network("10.1.0.0/16")], AccessPolicy())
    assert monitoring.metrics(None, "10.1.2.3").body == b"farm_up 1\n"
    assert monitoring.metrics(None, "::ffff:10.1.2.3").body == b"farm_up 1\n"
    with pytest.raises(Unauthenticated):
        monitoring.metrics(None, "10.2.0.1")
    with pytest.raises(Unauthenticated):
        monitoring.metrics(None, None)
    viewer = Identity("vic", Role.VIEWER)
    assert monitoring.metrics(viewer, "192.0.2.1").body == b"farm_up 1\n"
    with pytest.raises(Forbidden):
        monitoring.metrics(Identity("joiner", Role.AGENT_JOIN), "192.0.2.1")
    assert source.read == 3
