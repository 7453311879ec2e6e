"""Failures that don't stall a job, on fakes: retry back-off, failed frames to other agents
first, blocks that expire or are lifted, refusals recorded, and stuck jobs failed or flagged."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from farm_domain.answers import Refused
from farm_domain.enums import WorkState
from farm_domain.events import Event
from farm_domain.job_requests import JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from farm_domain.scheduling import RetryBackoff
from farm_domain.work import Task
from tests.support.builders import World, dispatch_policy
from tests.support.identities import ADMIN

BACKOFF = RetryBackoff(15, 600)


@pytest.fixture
def world() -> World:
    world = World(
        backoff=BACKOFF,
        block_expiry=1800,
        policy=dispatch_policy(retry=BACKOFF, block_expiry=1800, stuck_job=300),
    )
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
    return world


def submit(world: World, **fields: object) -> int:
    spec: dict[str, object] = {"title": "shot", "jobtype": "render", "start": 1, "end": 1}
    spec.update(fields)
    return world.jobs.submit(ADMIN, JobSpec(**spec)).job.id  # type: ignore[arg-type]  # fields of any type, from the test


def tasks_of(world: World, job_id: int) -> list[Task]:
    return world.jobs.tasks(ADMIN, job_id)


def fail(world: World, job_id: int, agent_id: uuid.UUID) -> Task:
    """Give the agent a task of the job and have it fail; returns the task as it is then."""
    claimed = world.dispatcher.assign_tasks_to_agent(agent_id)
    assert claimed, "the agent was offered nothing"
    return world.jobs.report(ADMIN, job_id, claimed[0], TaskReport(state="failed"))


def test_a_failed_task_backs_off_doubling_and_an_assign_pass_is_scheduled(world: World) -> None:
    job_id = submit(world, requeue=-1)
    agent, _ = world.announce()
    now = world.clock.now()
    world.queue.calls.clear()
    task = fail(world, job_id, agent.id)
    assert (task.not_before, task.failed_on, task.failures) == (
        now + timedelta(seconds=15),
        agent.id,
        1,
    )
    # When the back-off ends for others, and when it ends for the agent that failed it.
    later = [args for name, args in world.queue.calls if name == "assign_tasks_later"]
    assert later == [(15.0,), (30.0,)]
    assert world.dispatcher.assign_tasks_to_agent(agent.id) == []
    world.clock.advance(29)
    assert world.dispatcher.assign_tasks_to_agent(agent.id) == []  # its own, second back-off
    world.clock.advance(1)
    task = fail(world, job_id, agent.id)
    assert task.not_before == world.clock.now() + timedelta(seconds=30)


def test_a_failed_task_goes_to_another_agent_once_its_back_off_ends(world: World) -> None:
    job_id = submit(world, requeue=-1)
    first, _ = world.announce(hostname="a")
    other, _ = world.announce(hostname="b")
    fail(world, job_id, first.id)
    assert world.dispatcher.assign_tasks_to_agent(other.id) == []  # backing off
    world.clock.advance(15)
    assert world.dispatcher.assign_tasks_to_agent(first.id) == []
    assert world.dispatcher.assign_tasks_to_agent(other.id) == [tasks_of(world, job_id)[0].id]


def test_the_sweep_gives_the_failed_frame_to_the_other_agent_and_fresh_ones_to_the_first(
    world: World,
) -> None:
    job_id = submit(world, requeue=-1, end=3)
    first, _ = world.announce(hostname="a")
    other, _ = world.announce(hostname="b")
    world.dispatcher.assign_tasks()
    frames = {t.agent_id: t for t in tasks_of(world, job_id) if t.agent_id}
    bad = frames[first.id]
    world.jobs.report(ADMIN, job_id, bad.id, TaskReport(state="failed"))
    world.jobs.report(ADMIN, job_id, frames[other.id].id, TaskReport(state="done"))
    world.clock.advance(15)
    world.dispatcher.assign_tasks()  # "a" first by hostname: it gets the fresh frame
    held = {t.id: t.agent_id for t in tasks_of(world, job_id) if t.agent_id and not t.state}
    assert held[bad.id] == other.id
    assert set(held.values()) == {first.id, other.id}


def test_the_sweep_skips_a_job_whose_only_queued_tasks_are_backing_off(world: World) -> None:
    job_id = submit(world, requeue=-1)
    agent, _ = world.announce()
    fail(world, job_id, agent.id)
    with world.uow() as uow:
        assert uow.scheduling.candidate_jobs(world.clock.now()) == []
        assert [p.id for p in uow.scheduling.candidate_jobs()] == [job_id]
    assert world.dispatcher.assign_tasks() == 0


def test_a_block_lifts_after_the_expiry_and_a_pass_is_scheduled_then(world: World) -> None:
    job_id = submit(world, requeue=-1)
    agent, _ = world.announce()
    for _ in range(3):
        fail(world, job_id, agent.id)
        world.clock.advance(600)
    assert ("assign_tasks_later", (1800.0,)) in world.queue.calls
    (view,) = world.jobs.blocklist(ADMIN, job_id)
    assert view.blocked and view.block.failures == 3
    assert world.dispatcher.assign_tasks_to_agent(agent.id) == []
    world.clock.advance(1199)  # 600 s passed since the last failure already
    assert world.jobs.blocklist(ADMIN, job_id)[0].blocked
    world.clock.advance(1)
    (view,) = world.jobs.blocklist(ADMIN, job_id)
    assert not view.blocked
    assert world.dispatcher.assign_tasks_to_agent(agent.id) != []


def test_requeue_lifts_every_block_and_clears_the_back_off(world: World) -> None:
    job_id = submit(world, requeue=0)
    agent, _ = world.announce()
    task = fail(world, job_id, agent.id)
    assert task.state is WorkState.FAILED
    with world.uow() as uow:
        uow.blocks.record_failure(job_id, agent.id, world.clock.now())
        uow.blocks.record_failure(job_id, agent.id, world.clock.now())
        uow.commit()
    assert world.jobs.blocklist(ADMIN, job_id)[0].blocked
    assert world.jobs.requeue_failed(ADMIN, job_id) == [task.id]
    assert world.jobs.blocklist(ADMIN, job_id) == []
    assert tasks_of(world, job_id)[0].not_before is None
    assert world.dispatcher.assign_tasks_to_agent(agent.id) == [task.id]
    (event,) = actions(world, "job.requeue")
    assert event.after == {"tasks": [task.id], "unblocked_agents": 1}


def test_unblock_one_agent_or_all(world: World) -> None:
    job_id = submit(world)
    agents = [world.announce(hostname=name)[0] for name in ("a", "b")]
    with world.uow() as uow:
        for agent in agents:
            for _ in range(3):
                uow.blocks.record_failure(job_id, agent.id, world.clock.now())
        uow.commit()
    assert world.jobs.unblock(ADMIN, job_id, agents[0].id) == 1
    assert [v.block.agent_id for v in world.jobs.blocklist(ADMIN, job_id)] == [agents[1].id]
    assert world.jobs.unblock(ADMIN, job_id, None) == 1
    assert world.jobs.blocklist(ADMIN, job_id) == []
    assert len(actions(world, "blocklist.clear")) == 2


def test_an_agents_refusal_is_recorded_with_its_answer(world: World) -> None:
    job_id = submit(world)
    agent, _ = world.announce()
    world.client.answer("assign", Refused("{'user': ['Not a valid string.']}"))
    world.dispatcher.assign_tasks_to_agent(agent.id)
    world.dispatcher.send_tasks_to_agent(agent.id)
    (view,) = world.jobs.blocklist(ADMIN, job_id)
    assert view.refused and view.blocked
    assert view.block.refusal == "{'user': ['Not a valid string.']}"


def actions(world: World, action: str) -> list[Event]:
    return [event for event in world.recorded() if event.action == action]


def block_everyone(world: World, job_id: int, *agents: uuid.UUID) -> None:
    with world.uow() as uow:
        for agent_id in agents:
            for _ in range(3):
                uow.blocks.record_failure(job_id, agent_id, world.clock.now())
        uow.commit()


def test_a_job_every_eligible_agent_is_blocked_from_fails_after_the_stuck_time(
    world: World,
) -> None:
    job_id = submit(world, end=5)
    first, _ = world.announce(hostname="a")
    other, _ = world.announce(hostname="b")
    world.announce(hostname="small", ram=16, free_ram=16)  # could never run it: not counted
    block_everyone(world, job_id, first.id)
    world.clock.advance(200)
    block_everyone(world, job_id, other.id)
    world.clock.advance(299)
    world.dispatcher.watch_agents()
    assert world.get_job(job_id).state is None  # 299 s since the last block
    world.clock.advance(1)
    world.dispatcher.watch_agents()
    job = world.get_job(job_id)
    assert (job.state, job.reason) == (WorkState.FAILED, "every eligible agent failed it 3 times")
    assert {(t.state, t.reason) for t in tasks_of(world, job_id)} == {(WorkState.FAILED, "stuck")}
    (event,) = actions(world, "job.stuck")
    assert event.after is not None and event.after["reason"] == job.reason
    # Requeue brings it back, blocks lifted and reason cleared.
    assert len(world.jobs.requeue_failed(ADMIN, job_id)) == 5
    job = world.get_job(job_id)
    assert (job.state, job.reason) == (None, None)
    assert world.dispatcher.assign_tasks_to_agent(first.id) != []


def test_a_job_is_not_stuck_while_an_eligible_agent_may_take_it_or_one_holds_its_tasks(
    world: World,
) -> None:
    job_id = submit(world, end=2, batch=1)
    first, _ = world.announce(hostname="a")
    other, _ = world.announce(hostname="b")
    assert world.dispatcher.assign_tasks_to_agent(other.id)  # holds a task
    block_everyone(world, job_id, first.id, other.id)
    world.clock.advance(1000)
    world.dispatcher.watch_agents()
    assert world.get_job(job_id).state is WorkState.RUNNING


@pytest.mark.parametrize("how", ["unblock", "new agent"])
def test_a_stuck_job_comes_back_when_an_agent_is_unblocked_or_a_new_one_appears(
    world: World, how: str
) -> None:
    job_id = submit(world, end=2)
    agent, _ = world.announce(hostname="a")
    block_everyone(world, job_id, agent.id)
    world.clock.advance(300)
    world.dispatcher.watch_agents()
    assert world.get_job(job_id).state is WorkState.FAILED
    world.dispatcher.watch_agents()
    assert world.get_job(job_id).state is WorkState.FAILED  # an expired block would not do
    if how == "unblock":
        world.jobs.unblock(ADMIN, job_id, agent.id)
    else:
        world.announce(hostname="new")
        world.queue.calls.clear()
        world.dispatcher.watch_agents()
        assert ("assign_tasks", ()) in world.queue.calls
    job = world.get_job(job_id)
    assert (job.state, job.reason) == (None, None)
    assert all(t.state is None for t in tasks_of(world, job_id))
    assert actions(world, "job.revive")


def test_a_job_no_agent_could_ever_fit_is_flagged_until_one_appears(world: World) -> None:
    job_id = submit(world, ram=64000)
    world.announce(hostname="a", ram=4096)
    world.dispatcher.watch_agents()
    job = world.get_job(job_id)
    assert (job.state, job.reason) == (None, "no agent has the RAM (64000 MB) it needs")
    world.announce(hostname="big", ram=128000, free_ram=1000)  # busy now, but it could
    world.dispatcher.watch_agents()
    assert world.get_job(job_id).reason is None
    assert [e.after for e in actions(world, "job.reason")] == [
        {"reason": "no agent has the RAM (64000 MB) it needs"},
        {"reason": None},
    ]


def test_an_empty_farm_flags_its_jobs(world: World) -> None:
    job_id = submit(world)
    world.dispatcher.watch_agents()
    assert world.get_job(job_id).reason == "no agent is registered to run it"


@pytest.mark.parametrize("how", ["agent asks", "sweep"])
def test_an_agent_that_failed_the_first_ready_frame_renders_later_ones_meanwhile(
    world: World, how: str
) -> None:
    """Alone on the farm, the agent that failed frame 1 is not left idle while frames 2-5 are
    ready: it gets them, and frame 1 only after its second back-off."""
    job_id = submit(world, requeue=-1, end=5)
    agent, _ = world.announce()
    failed = fail(world, job_id, agent.id)
    assert failed.frame == 1
    world.clock.advance(15)  # frame 1 is ready for others, not yet for this agent

    def next_frames() -> list[float]:
        if how == "sweep":
            assert world.dispatcher.assign_tasks() == 1
        claimed = [t for t in tasks_of(world, job_id) if t.agent_id == agent.id]
        if how == "agent asks":
            ids = world.dispatcher.assign_tasks_to_agent(agent.id)
            claimed = [t for t in tasks_of(world, job_id) if t.id in ids]
        return [t.frame for t in claimed]

    assert next_frames() == [2.0]
