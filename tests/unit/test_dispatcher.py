"""The Dispatcher on fakes: choosing, claiming, sending, and watching agents."""

from __future__ import annotations

import uuid

import pytest

from farm_domain.agents import Agent, AgentChanges
from farm_domain.answers import Busy, Conflict, Refused, Running, Unreachable
from farm_domain.catalogue import VersionSpec
from farm_domain.enums import AgentState, WorkState
from farm_domain.job_requests import JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec, RequirementSpec
from farm_domain.work import Task
from tests.support.builders import World, dispatch_policy
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
        "end": 6,
        "batch": 3,
    }
    spec.update(fields)
    return world.jobs.submit(ADMIN, JobSpec(**spec)).job.id  # type: ignore[arg-type]  # fields of any type, from the test


def tasks_of(world: World, job_id: int) -> list[Task]:
    return world.jobs.tasks(ADMIN, job_id)


def test_an_idle_agent_gets_one_batch_capped_by_max_batch(world: World) -> None:
    job_id = submit(world)
    agent, _ = world.announce()
    world.queue.calls.clear()
    claimed = world.dispatcher.assign_tasks_to_agent(agent.id)
    tasks = tasks_of(world, job_id)
    assert claimed == [tasks[0].id, tasks[1].id]
    assert [(t.agent_id, t.attempts, t.sent_to_agent) for t in tasks[:2]] == [
        (agent.id, 1, False)
    ] * 2
    assert all(t.agent_id is None for t in tasks[2:])
    assert world.jobs.get(ADMIN, job_id).job.state is WorkState.RUNNING
    assert world.queue.calls == [("send_tasks_to_agent", (agent.id,))]
    assert world.dispatcher.assign_tasks_to_agent(agent.id) == []  # busy now


@pytest.mark.parametrize(
    "change",
    [
        {"state": "offline"},
        {"state": "disabled"},
        {"remote_ip": "192.168.1.5"},
        {"use_address": "passive"},
        {"free_ram": 10},
    ],
)
def test_agents_that_cannot_take_work_get_none(world: World, change: dict[str, str]) -> None:
    submit(world, ram=512)
    agent, _ = world.announce(None, "127.0.0.1", **change)
    if change.get("state") == "disabled":
        world.registry.update(ADMIN, agent.id, AgentChanges(state="disabled"))
    assert world.dispatcher.assign_tasks_to_agent(agent.id) == []


def test_software_requirements_are_matched_by_rank(world: World) -> None:
    catalogue = world.software
    catalogue.create(ADMIN, "maya", [VersionSpec("2017"), VersionSpec("2018"), VersionSpec("2019")])
    submit(world, software_requirements=(RequirementSpec("maya", "2018", "2018"),))
    old, _ = world.announce(hostname="old")
    right, _ = world.announce(hostname="right")
    catalogue.install(ADMIN, old.id, "maya", "2017")
    catalogue.install(ADMIN, right.id, "maya", "2018")
    assert world.dispatcher.assign_tasks_to_agent(old.id) == []
    assert world.dispatcher.assign_tasks_to_agent(right.id) != []


def test_higher_priority_first_and_maximum_agents_respected(world: World) -> None:
    low = submit(world, title="low", priority=0)
    high = submit(world, title="high", priority=10, maximum_agents=1)
    first, _ = world.announce(hostname="a")
    second, _ = world.announce(hostname="b")
    world.dispatcher.assign_tasks_to_agent(first.id)
    world.dispatcher.assign_tasks_to_agent(second.id)
    owners = {t.agent_id for t in tasks_of(world, high) if t.agent_id}
    assert owners == {first.id}
    assert {t.agent_id for t in tasks_of(world, low) if t.agent_id} == {second.id}


def test_children_wait_for_their_parents(world: World) -> None:
    parent = submit(world, title="parent", end=1)
    child = submit(world, title="child", parents=(parent,), priority=100)
    agent, _ = world.announce()
    world.dispatcher.assign_tasks_to_agent(agent.id)
    (parent_task,) = tasks_of(world, parent)
    assert parent_task.agent_id == agent.id
    world.jobs.report(ADMIN, parent, parent_task.id, TaskReport(state="done"))
    world.dispatcher.assign_tasks_to_agent(agent.id)
    assert tasks_of(world, child)[0].agent_id == agent.id


def test_an_agent_that_failed_a_job_too_often_is_not_offered_it(world: World) -> None:
    job_id = submit(world, requeue=-1, end=1)
    agent, _ = world.announce()
    for _ in range(3):
        assert world.dispatcher.assign_tasks_to_agent(agent.id)
        (task,) = tasks_of(world, job_id)
        world.jobs.report(ADMIN, job_id, task.id, TaskReport(state="failed"))
    assert world.dispatcher.assign_tasks_to_agent(agent.id) == []
    with world.uow() as uow:
        (block,) = uow.blocks.of_job(job_id)
    assert (block.agent_id, block.failures) == (agent.id, 3)
    other, _ = world.announce(hostname="other")
    assert world.dispatcher.assign_tasks_to_agent(other.id)


def test_send_hands_the_agent_the_job_and_its_batch_and_marks_the_batch_sent(
    world: World,
) -> None:
    job_id = submit(world, data={"command": ["echo", "{frame}"]}, environ={"A": "1"})
    agent, _ = world.announce(remote_ip="10.0.0.7", port=50123)
    world.dispatcher.assign_tasks_to_agent(agent.id)
    world.clock.advance(5)
    world.dispatcher.send_tasks_to_agent(agent.id)
    ((url, job, batch),) = world.client.assignments
    assert url == "http://10.0.0.7:50123/api/v1"
    assert job.id == job_id and job.data == {"command": ["echo", "{frame}"]}
    assert job.environ == {"A": "1"}
    assert (job.jobtype, job.jobtype_version) == ("render", 1)
    assert [(t.frame, t.attempts) for t in batch] == [(1.0, 1), (2.0, 1)]
    sent = [t for t in tasks_of(world, job_id) if t.agent_id]
    assert all(t.sent_to_agent and t.sent_at == world.clock.now() for t in sent)
    world.dispatcher.send_tasks_to_agent(agent.id)
    assert len(world.client.of("assign")) == 1  # nothing left unsent


def test_send_skips_a_job_hidden_between_reading_the_tasks_and_the_job(world: World) -> None:
    job_id = submit(world)
    agent, _ = world.announce(remote_ip="10.0.0.7", port=50123)
    world.dispatcher.assign_tasks_to_agent(agent.id)
    # As PostgreSQL reads it: each statement sees the latest commit, so the job's deletion may
    # hide it after its tasks were read as the agent's (the fake hides it without them).
    world.uow.store.data.deleting_jobs.add(job_id)
    world.dispatcher.send_tasks_to_agent(agent.id)
    assert world.client.assignments == []


@pytest.mark.parametrize(
    "answer", [Refused("Not enough ram"), Conflict(frozenset({1}), "tasks already assigned")]
)
def test_a_refused_batch_is_released_and_the_job_not_offered_again(
    world: World, answer: Refused | Conflict
) -> None:
    job_id = submit(world)
    agent, _ = world.announce()
    world.client.answer("assign", answer)
    world.dispatcher.assign_tasks_to_agent(agent.id)
    world.queue.calls.clear()
    world.dispatcher.send_tasks_to_agent(agent.id)
    assert all(t.agent_id is None for t in tasks_of(world, job_id))
    assert ("assign_tasks", ()) in world.queue.calls
    assert world.registry.get(ADMIN, agent.id).state is AgentState.ONLINE
    assert world.dispatcher.assign_tasks_to_agent(agent.id) == []
    # Once its resources change, the job is offered again.
    world.announce(agent.id, ram=8192)
    assert world.dispatcher.assign_tasks_to_agent(agent.id) != []


def test_a_busy_agent_goes_offline_and_the_attempt_is_undone(world: World) -> None:
    job_id = submit(world)
    agent, _ = world.announce()
    world.client.answer("assign", Busy("shutting down"))
    world.dispatcher.assign_tasks_to_agent(agent.id)
    world.dispatcher.send_tasks_to_agent(agent.id)
    assert world.registry.get(ADMIN, agent.id).state is AgentState.OFFLINE
    assert [(t.agent_id, t.attempts) for t in tasks_of(world, job_id)][:2] == [(None, 0)] * 2


def test_an_unreachable_agent_goes_offline_and_its_tasks_are_released(world: World) -> None:
    job_id = submit(world)
    agent, _ = world.announce()
    world.client.answer("assign", Unreachable("ConnectError"))
    world.dispatcher.assign_tasks_to_agent(agent.id)
    world.dispatcher.send_tasks_to_agent(agent.id)
    assert world.registry.get(ADMIN, agent.id).state is AgentState.OFFLINE
    assert all(t.agent_id is None and t.failures == 0 for t in tasks_of(world, job_id))


def test_a_passive_agent_keeps_what_was_assigned_to_it_by_hand(world: World) -> None:
    """It is never called, and its tasks are neither sent nor released: it reports on them."""
    job_id = submit(world)
    agent, _ = world.announce(use_address="passive")
    first = tasks_of(world, job_id)[0]
    world.registry.assign_task(ADMIN, agent.id, first.id)
    world.dispatcher.send_tasks_to_agent(agent.id)
    assert world.client.calls == []
    (kept,) = [t for t in tasks_of(world, job_id) if t.agent_id]
    assert (kept.id, kept.agent_id, kept.sent_to_agent) == (first.id, agent.id, False)
    world.jobs.report(ADMIN, job_id, first.id, TaskReport(state="running"))
    assert tasks_of(world, job_id)[0].state is WorkState.RUNNING


def test_stop_and_update_calls(world: World) -> None:
    agent, _ = world.announce(remote_ip="10.0.0.8", port=50001)
    world.registry.update(ADMIN, agent.id, AgentChanges(upgrade_to="0.9.0"))
    world.dispatcher.update_agent(agent.id)
    assert world.client.of("update") == [("http://10.0.0.8:50001/api/v1", "0.9.0")]
    assert world.client.callees == [("update", agent.id)]
    gone = uuid.uuid4()  # an agent whose row is gone: the call is signed for its id
    world.dispatcher.stop_tasks(gone, "10.0.0.8", 50001, [5, 6])
    assert world.client.of("stop_task") == [
        ("http://10.0.0.8:50001/api/v1", 5),
        ("http://10.0.0.8:50001/api/v1", 6),
    ]
    assert world.client.callees[1:] == [("stop_task", gone), ("stop_task", gone)]
    world.dispatcher.stop_tasks(gone, "8.8.8.8", 50001, [7])
    assert len(world.client.of("stop_task")) == 2


def test_silent_agents_expire_and_their_tasks_are_requeued_without_failure() -> None:
    world = World(policy=dispatch_policy(heartbeat_timeout=60))
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
    job_id = submit(world)
    agent, _ = world.announce()
    fresh, _ = world.announce(hostname="fresh")
    world.dispatcher.assign_tasks_to_agent(agent.id)
    world.clock.advance(61)
    world.announce(fresh.id)
    assert world.dispatcher.expire_silent_agents() == [agent.id]
    assert world.registry.get(ADMIN, agent.id).state is AgentState.OFFLINE
    assert world.registry.get(ADMIN, fresh.id).state is AgentState.ONLINE
    assert all(t.agent_id is None and t.failures == 0 for t in tasks_of(world, job_id))


def test_polling_busy_idle_and_offline_agents() -> None:
    world = World(
        policy=dispatch_policy(
            poll_busy_after=600, poll_idle_after=3600, poll_offline_after=7200, agent_silence=10**6
        )
    )
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render", max_batch=1))
    job_id = submit(world, requeue=3)
    gone, _ = world.announce(hostname="gone", port=50003, state="offline")
    world.clock.advance(7200)  # offline agents are polled two hours after their last word
    busy, _ = world.announce(hostname="busy", port=50001)
    idle, _ = world.announce(hostname="idle", port=50002)
    world.dispatcher.assign_tasks_to_agent(busy.id)
    world.dispatcher.send_tasks_to_agent(busy.id)
    world.clock.advance(601)
    world.client.answer("tasks", Running(frozenset()))
    world.queue.calls.clear()
    world.dispatcher.poll_agents()
    polled = {url for url, _ in world.client.of("tasks")}
    assert polled == {"http://127.0.0.1:50001/api/v1", "http://127.0.0.1:50003/api/v1"}
    # The busy agent lacks its sent task: a failure, requeued; the gone agent is back.
    (first, *_) = tasks_of(world, job_id)
    assert (first.agent_id, first.failures) == (None, 1)
    assert world.registry.get(ADMIN, gone.id).state is AgentState.ONLINE
    assert world.registry.get(ADMIN, busy.id).last_polled == world.clock.now()
    world.client.answer("tasks", Unreachable("timeout"))
    world.clock.advance(3600)
    world.dispatcher.poll_agents()
    assert world.registry.get(ADMIN, idle.id).state is AgentState.OFFLINE


def busy_and_idle(world: World) -> tuple[int, Agent, Agent]:
    """A job, an agent that was sent a batch of it and an idle one, both just heard from."""
    job_id = submit(world)
    busy, _ = world.announce(hostname="busy", port=50001)
    idle, _ = world.announce(hostname="idle", port=50002)
    world.dispatcher.assign_tasks_to_agent(busy.id)
    world.dispatcher.send_tasks_to_agent(busy.id)
    world.client.calls.clear()
    return job_id, busy, idle


def polled_urls(world: World) -> set[str]:
    return {url for url, _ in world.client.of("tasks")}


def test_agents_not_silent_for_the_silence_limit_are_not_polled(world: World) -> None:
    busy_and_idle(world)
    world.clock.advance(89)
    assert world.dispatcher.poll_agents() == 0
    assert world.client.of("tasks") == []


def test_silent_agents_that_answer_the_poll_stay_online(world: World) -> None:
    job_id, busy, idle = busy_and_idle(world)
    held = frozenset(t.id for t in tasks_of(world, job_id) if t.agent_id == busy.id)
    world.clock.advance(91)  # far short of the 600 s busy and 3600 s idle polls
    world.client.answer("tasks", Running(held))
    world.dispatcher.watch_agents()
    assert polled_urls(world) == {"http://127.0.0.1:50001/api/v1", "http://127.0.0.1:50002/api/v1"}
    for agent in (busy, idle):
        current = world.registry.get(ADMIN, agent.id)
        assert current.state is not AgentState.OFFLINE
        assert current.last_polled == world.clock.now()  # the answer counts as contact
    assert {t.agent_id for t in tasks_of(world, job_id) if t.id in held} == {busy.id}
    world.client.calls.clear()
    world.clock.advance(60)
    assert world.dispatcher.poll_agents() == 0  # silent again only from the poll


def test_silent_agents_that_fail_the_poll_go_offline_and_their_tasks_are_requeued(
    world: World,
) -> None:
    job_id, busy, idle = busy_and_idle(world)
    world.clock.advance(91)
    world.client.answer("tasks", Unreachable("connection refused"))
    world.dispatcher.watch_agents()
    assert polled_urls(world) == {"http://127.0.0.1:50001/api/v1", "http://127.0.0.1:50002/api/v1"}
    for agent in (busy, idle):
        assert world.registry.get(ADMIN, agent.id).state is AgentState.OFFLINE
    tasks = tasks_of(world, job_id)
    assert all(t.agent_id is None and t.failures == 0 for t in tasks)
    assert world.jobs.get(ADMIN, job_id).job.state is None  # queued


def test_a_disabled_busy_agent_is_polled_at_the_silence_limit_too(world: World) -> None:
    job_id, busy, _ = busy_and_idle(world)
    world.registry.update(ADMIN, busy.id, AgentChanges(state="disabled"))
    assert world.registry.get(ADMIN, busy.id).disabled
    world.client.answer("tasks", Unreachable("connection refused"))
    world.clock.advance(91)
    world.dispatcher.poll_agents()
    assert world.registry.get(ADMIN, busy.id).state is AgentState.OFFLINE
    assert all(t.agent_id is None and t.failures == 0 for t in tasks_of(world, job_id))


def test_the_assignment_sweep_gives_work_to_every_idle_agent(world: World) -> None:
    job_id = submit(world, end=10, batch=1)
    agents = [world.announce(hostname=f"n{i}")[0] for i in range(4)]
    assert world.dispatcher.assign_tasks() == 4
    owners = [t.agent_id for t in tasks_of(world, job_id) if t.agent_id]
    assert sorted(map(str, owners)) == sorted(str(a.id) for a in agents)
    assert len(set(owners)) == 4


def test_a_polled_agent_running_tasks_it_no_longer_holds_is_asked_to_stop_them(
    world: World,
) -> None:
    job_id, busy, _ = busy_and_idle(world)
    held = [t for t in tasks_of(world, job_id) if t.agent_id == busy.id]
    nobodys = [t for t in tasks_of(world, job_id) if t.agent_id is None]
    world.clock.advance(91)
    world.client.answer("tasks", Running(frozenset({held[0].id, nobodys[0].id})))
    world.dispatcher.poll_agent(busy.id)
    stops = [args for args in world.client.of("stop_task") if args[0].endswith(":50001/api/v1")]
    assert [task_id for _, task_id in stops] == [nobodys[0].id]
    assert world.get_task(held[0].id).agent_id == busy.id
