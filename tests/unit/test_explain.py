"""Explanations: each reason code on the fakes, and agreement with the scheduler on random farms."""

from __future__ import annotations

import copy
import uuid
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farm_domain.access import Identity, Role
from farm_domain.agents import Agent
from farm_domain.dispatch import Dispatcher
from farm_domain.enums import AgentState, UseAddress, WorkState
from farm_domain.errors import Forbidden, NotFound
from farm_domain.explain import LISTED, JobExplanation
from farm_domain.scheduling import Reason
from farm_domain.work import Job, SoftwareRequirement, TagRequirement, Task
from tests.support.builders import World, dispatch_policy
from tests.support.fakes.collaborators import RecordingQueue, ScriptedAgentClient
from tests.support.fakes.store import FakeStore
from tests.support.fakes.unit_of_work import FakeUnitOfWorkFactory
from tests.support.identities import ADMIN

VIEWER = Identity("vera", Role.VIEWER)
ARTIST = Identity("ann", Role.ARTIST)
MAX_FAILURES = dispatch_policy().max_failures


def add_agent(world: World, hostname: str = "node", **fields: Any) -> Agent:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "hostname": hostname,
        "remote_ip": "127.0.0.1",
        "ram": 8192,
        "free_ram": 4096,
        "cpus": 8,
        "port": 50000,
    }
    tags = fields.pop("tags", frozenset())
    software = fields.pop("software", ())
    values.update(fields)
    agent = Agent(**values)
    with world.uow() as uow:
        uow.agents.add(agent)
        uow.agents.replace_tags(agent.id, frozenset(tags))
        uow.agents.attach_software(agent.id, software)
        uow.commit()
    return agent


def add_job(world: World, frames: int = 2, **fields: Any) -> Job:
    """A job with ``frames`` queued tasks (``tasks``: more tasks' fields)."""
    extra = fields.pop("tasks", ())
    with world.uow() as uow:
        version = uow.jobtypes.add(f"type-{uuid.uuid4().hex[:8]}")
        job = uow.jobs.add(
            Job(
                id=0,
                title=fields.pop("title", "job"),
                jobtype_version_id=version.id,
                time_submitted=world.clock.now(),
                **fields,
            )
        )
        for frame in range(frames):
            uow.tasks.add(Task(id=0, job_id=job.id, frame=float(frame)))
        for number, task in enumerate(extra):
            uow.tasks.add(Task(id=0, job_id=job.id, **{"frame": 100.0 + number, **task}))
        uow.commit()
    return job


def codes(explanation: JobExplanation) -> dict[str, list[str]]:
    """Each group's reason: the hostnames in it; ``eligible``: the eligible agents'."""
    found: dict[str, list[str]] = {}
    for group in explanation.agents:
        found.setdefault(group.reason.value, []).extend(a.hostname for a in group.agents)
    found["eligible"] = [a.hostname for a in explanation.eligible]
    return {reason: sorted(hostnames) for reason, hostnames in found.items()}


@pytest.fixture
def world() -> World:
    return World()


def test_a_job_an_idle_agent_fits_can_run_now_and_the_agent_would_get_it(world) -> None:
    agent = add_agent(world, "a")
    job = add_job(world, title="shot")
    explained = world.explain.job(VIEWER, job.id)
    assert explained.can_run_now
    assert explained.reasons == ()
    assert codes(explained) == {"eligible": ["a"]}
    assert explained.eligible_count == 1
    mine = world.explain.agent(ARTIST, agent.id)
    assert mine.reasons == ()
    assert mine.would_get is not None and (mine.would_get.id, mine.would_get.title) == (
        job.id,
        "shot",
    )
    assert [j.id for j in mine.eligible] == [job.id]


def test_job_level_reasons_keep_it_from_every_agent(world) -> None:
    add_agent(world, "a")
    paused = add_job(world, state=WorkState.PAUSED)
    parent = add_job(world)
    child = add_job(world, parents=(parent.id,))
    empty = add_job(world, frames=0, tasks=[{"state": WorkState.DONE}])
    done = add_job(world, frames=0, tasks=[{"state": WorkState.DONE}], state=WorkState.DONE)
    for job, reasons in (
        (paused, [Reason.PAUSED]),
        (child, [Reason.PARENTS_NOT_DONE]),
        (empty, [Reason.NO_QUEUED_TASKS]),
        (done, [Reason.FINISHED, Reason.NO_QUEUED_TASKS]),
    ):
        explained = world.explain.job(VIEWER, job.id)
        assert not explained.can_run_now
        assert [f.reason for f in explained.reasons] == reasons
        # The agent that would take it otherwise is shown under the job's first reason.
        assert codes(explained) == {reasons[0].value: ["a"], "eligible": []}
    (finding,) = world.explain.job(VIEWER, child.id).reasons
    assert finding.detail == f"waiting for parent job(s) {parent.id}"


def test_queued_tasks_all_in_their_retry_back_off_are_a_retry_delay(world) -> None:
    add_agent(world, "a")
    later = world.clock.now() + timedelta(seconds=60)
    job = add_job(world, frames=0, tasks=[{"not_before": later}] * 2)
    explained = world.explain.job(VIEWER, job.id)
    assert [f.reason for f in explained.reasons] == [Reason.RETRY_DELAY]
    assert later.isoformat(timespec="seconds") in explained.reasons[0].detail
    assert not explained.can_run_now
    world.clock.advance(60)
    assert world.explain.job(VIEWER, job.id).can_run_now


def test_the_agent_that_failed_the_next_frame_waits_a_second_back_off(world) -> None:
    failing = add_agent(world, "failing")
    add_agent(world, "other")
    # Failed once on "failing", offered again 5 s ago: to the others at once, to the agent that
    # failed it after a second back-off (15 s after a first failure).
    retried = {"failures": 1, "failed_on": failing.id}
    retried["not_before"] = world.clock.now() - timedelta(seconds=5)
    job = add_job(world, frames=0, tasks=[retried])
    explained = world.explain.job(VIEWER, job.id)
    assert explained.can_run_now and explained.reasons == ()
    assert codes(explained) == {"retry_delay": ["failing"], "eligible": ["other"]}
    mine = world.explain.agent(VIEWER, failing.id)
    assert mine.would_get is None
    assert [(g.reason, [j.id for j in g.jobs]) for g in mine.jobs] == [
        (Reason.RETRY_DELAY, [job.id])
    ]
    assert world.dispatcher.assign_tasks_to_agent(failing.id) == []
    world.clock.advance(10)
    assert codes(world.explain.job(VIEWER, job.id)) == {"eligible": ["failing", "other"]}
    assert world.explain.agent(VIEWER, failing.id).would_get is not None
    assert world.dispatcher.assign_tasks_to_agent(failing.id) != []


def test_a_block_for_failures_lifts_after_the_block_expiry(world) -> None:
    failing = add_agent(world, "failing")
    job = add_job(world)
    with world.uow() as uow:
        for _ in range(MAX_FAILURES):
            uow.blocks.record_failure(job.id, failing.id, world.clock.now())
        uow.commit()
    (group,) = world.explain.job(VIEWER, job.id).agents
    assert group.reason is Reason.BLOCKLISTED
    expiry = dispatch_policy().block_expiry
    assert group.detail.endswith(f"the block lifts {expiry:g} s after its last failure")
    world.clock.advance(expiry)
    assert codes(world.explain.job(VIEWER, job.id)) == {"eligible": ["failing"]}


def test_a_job_at_its_maximum_agents_is_capped_for_every_other_agent(world) -> None:
    working = add_agent(world, "a")
    add_agent(world, "b")
    add_agent(world, "c", free_ram=1)
    job = add_job(world, maximum_agents=1, tasks=[{"agent_id": working.id}])
    explained = world.explain.job(VIEWER, job.id)
    assert [f.reason for f in explained.reasons] == [Reason.MAXIMUM_AGENTS]
    # The busy one is busy, the small one lacks RAM whatever the cap, the other waits for it.
    assert codes(explained) == {
        "maximum_agents": ["b"],
        "agent_busy": ["a"],
        "ram": ["c"],
        "eligible": [],
    }


def test_agents_own_reasons(world) -> None:
    add_agent(world, "off", state=AgentState.OFFLINE)
    add_agent(world, "disabled", disabled=True)
    busy = add_agent(world, "busy")
    add_agent(world, "passive", use_address=UseAddress.PASSIVE)
    add_agent(world, "outside", remote_ip="192.0.2.7")
    add_agent(world, "ok")
    add_job(world, frames=0, tasks=[{"agent_id": busy.id, "state": WorkState.RUNNING}])
    job = add_job(world)
    explained = world.explain.job(VIEWER, job.id)
    assert codes(explained) == {
        "agent_offline": ["off"],
        "agent_disabled": ["disabled"],
        "agent_busy": ["busy"],
        "agent_uncallable": ["outside", "passive"],
        "eligible": ["ok"],
    }
    details = {g.detail for g in explained.agents if g.reason is Reason.AGENT_UNCALLABLE}
    assert details == {
        "the master does not call the agent: passive agents are never called",
        "the master does not call the agent: 192.0.2.7 is outside FARM_AGENT_NETWORKS",
    }
    off = world.explain.agent(VIEWER, explained.agents[0].agents[0].id)
    assert [f.reason for f in off.reasons] == [Reason.AGENT_OFFLINE]
    assert off.would_get is None
    # The job it would take were it online is shown under its own reason.
    assert [(g.reason, [j.id for j in g.jobs]) for g in off.jobs] == [
        (Reason.AGENT_OFFLINE, [job.id])
    ]


def test_what_an_agent_lacks(world) -> None:
    with world.uow() as uow:
        maya = uow.software.add("maya", [("2017", 100), ("2018", 200)])
        uow.commit()
    old, new = (v.id for v in maya.versions)
    add_agent(world, "small", free_ram=100)
    add_agent(world, "few", cpus=1)
    add_agent(world, "untagged", software=[new])
    add_agent(world, "old", tags={"gpu"}, software=[old])
    add_agent(world, "right", tags={"gpu"}, software=[new])
    job = add_job(
        world,
        ram=1024,
        cpus=2,
        tag_requirements=(TagRequirement("gpu"),),
        software_requirements=(SoftwareRequirement(maya.id, "maya", new, "2018"),),
    )
    explained = world.explain.job(VIEWER, job.id)
    # Grouped by each agent's first reason (RAM, CPUs, tags, software).
    assert codes(explained) == {
        "ram": ["small"],
        "cpus": ["few"],
        "tags": ["untagged"],
        "software": ["old"],
        "eligible": ["right"],
    }
    details = {g.reason: g.detail for g in explained.agents}
    assert details[Reason.RAM] == "the job needs 1024 MB of RAM free"
    assert details[Reason.TAGS] == "the job needs tags: gpu"


def test_blocklisted_and_refused_agents(world) -> None:
    failing = add_agent(world, "failing")
    refusing = add_agent(world, "refusing")
    upgraded = add_agent(world, "upgraded")
    job = add_job(world)
    now = world.clock.now()
    with world.uow() as uow:
        for _ in range(MAX_FAILURES):
            uow.blocks.record_failure(job.id, failing.id, now)
        current = uow.scheduling.agent_profile(refusing.id)
        uow.blocks.record_rejection(
            job.id, refusing.id, current.fingerprint, now, "user: None is not of type 'string'"
        )
        # Refused with other resources: offered again now.
        uow.blocks.record_rejection(job.id, upgraded.id, "1:1:[]", now, "too small")
        uow.commit()
    explained = world.explain.job(VIEWER, job.id)
    assert codes(explained) == {
        "blocklisted": ["failing"],
        "refused": ["refusing"],
        "eligible": ["upgraded"],
    }
    refused = next(g for g in explained.agents if g.reason is Reason.REFUSED)
    assert refused.detail.endswith("user: None is not of type 'string'")
    mine = world.explain.agent(VIEWER, failing.id)
    assert mine.would_get is None
    assert [(g.reason, [j.id for j in g.jobs]) for g in mine.jobs] == [
        (Reason.BLOCKLISTED, [job.id])
    ]


def test_a_job_every_agent_failed_lists_each_of_them_as_blocklisted(world) -> None:
    agents = [add_agent(world, "a"), add_agent(world, "b")]
    reason = f"every eligible agent failed it {MAX_FAILURES} times"
    job = add_job(
        world, frames=0, tasks=[{"state": WorkState.FAILED}], state=WorkState.FAILED, reason=reason
    )
    with world.uow() as uow:
        for agent in agents:
            for _ in range(MAX_FAILURES):
                uow.blocks.record_failure(job.id, agent.id, world.clock.now())
        uow.commit()
    explained = world.explain.job(VIEWER, job.id)
    assert explained.note == reason
    assert [(f.reason, f.detail) for f in explained.reasons] == [
        (Reason.FINISHED, f"the job is failed: {reason}"),
        (Reason.NO_QUEUED_TASKS, "no task of the job is queued"),
    ]
    assert codes(explained) == {"blocklisted": ["a", "b"], "eligible": []}


def test_an_agent_would_get_the_first_job_in_the_schedulers_order(world) -> None:
    agent = add_agent(world, "a", free_ram=2000)
    low = add_job(world, title="low", priority=1)
    high = add_job(world, title="high", priority=5)
    huge = add_job(world, title="huge", priority=9, ram=9000)
    mine = world.explain.agent(VIEWER, agent.id)
    assert mine.would_get is not None and mine.would_get.id == high.id
    assert [j.id for j in mine.eligible] == [high.id, low.id]
    ((reason, jobs),) = [(g.reason, g.jobs) for g in mine.jobs]
    assert (reason, [j.title for j in jobs]) == (Reason.RAM, ["huge"])
    assert mine.jobs[0].detail == "the job needs more RAM than the agent's 2000 MB free"
    assert huge.id not in [j.id for j in mine.eligible]


def test_many_agents_sharing_a_reason_are_one_group_listing_a_few(world) -> None:
    for number in range(LISTED + 5):
        add_agent(world, f"n{number:02}", state=AgentState.OFFLINE)
    job = add_job(world)
    (group,) = world.explain.job(VIEWER, job.id).agents
    assert (group.reason, group.count, len(group.agents)) == (
        Reason.AGENT_OFFLINE,
        LISTED + 5,
        LISTED,
    )
    assert [a.hostname for a in group.agents] == [f"n{n:02}" for n in range(LISTED)]


def test_unknown_jobs_and_agents_are_not_found_and_readers_only_may_ask(world) -> None:
    agent = add_agent(world)
    job = add_job(world)
    with pytest.raises(NotFound):
        world.explain.job(VIEWER, job.id + 1000)
    with pytest.raises(NotFound):
        world.explain.agent(VIEWER, uuid.uuid4())
    joiner = Identity("join", Role.AGENT_JOIN)
    with pytest.raises(Forbidden):
        world.explain.job(joiner, job.id)
    with pytest.raises(Forbidden):
        world.explain.agent(joiner, agent.id)
    assert world.explain.job(ADMIN, job.id).can_run_now


# -- agreement with the scheduler on random farms ---------------------------------------------

TAGS = ["gpu", "linux"]
BACK_OFFS = [-100, -20, -5, 30]
"""When failed tasks may be offered again, in seconds from now (the default back-off is 15 s
after a first failure, 30 s after a second; the agent that failed a task waits twice that)."""
EXPIRED = dispatch_policy().block_expiry + 1


def one_in(n: int) -> st.SearchStrategy[bool]:
    return st.integers(1, n).map(lambda drawn: drawn == 1)


@st.composite
def farms(draw: st.DrawFn) -> World:
    """A random farm on fakes: agents of every state, size, tag and software, busy or not;
    jobs with requirements, priorities, caps, parents and states; failures and refusals."""
    world = World()
    with world.uow() as uow:
        maya = uow.software.add("maya", [("1", 100), ("2", 200), ("3", 300)])
        uow.commit()
    versions = [v.id for v in maya.versions]
    now = world.clock.now()
    agents = []
    for number in range(draw(st.integers(1, 5))):
        agents.append(
            add_agent(
                world,
                f"a{number}",
                ram=draw(st.sampled_from([1024, 4096])),
                free_ram=draw(st.sampled_from([256, 2048, 2048])),
                cpus=draw(st.sampled_from([1, 4])),
                state=draw(st.sampled_from([AgentState.ONLINE] * 6 + list(AgentState))),
                disabled=draw(one_in(8)),
                use_address=draw(st.sampled_from([UseAddress.REMOTE] * 9 + [UseAddress.PASSIVE])),
                remote_ip=draw(st.sampled_from(["127.0.0.1"] * 9 + ["192.0.2.1"])),
                tags=draw(st.frozensets(st.sampled_from(TAGS))),
                software=draw(st.lists(st.sampled_from(versions), max_size=1)),
            )
        )
    jobs: list[Job] = []
    for number in range(draw(st.integers(1, 4))):
        busy_on = [draw(st.sampled_from(agents))] if draw(one_in(4)) else []
        wanted = draw(st.sampled_from([None, None, None, *versions]))
        with_parent = draw(one_in(4)) if jobs else False
        jobs.append(
            add_job(
                world,
                frames=draw(st.sampled_from([0, 1, 1, 2, 2])),
                title=f"j{number}",
                priority=draw(st.integers(0, 2)),
                ram=draw(st.sampled_from([128, 128, 1024, 3000])),
                cpus=draw(st.sampled_from([1, 1, 2])),
                maximum_agents=draw(st.none() | st.integers(1, 2)),
                state=draw(st.sampled_from([None] * 4 + [WorkState.RUNNING, WorkState.PAUSED])),
                parents=(draw(st.sampled_from(jobs)).id,) if with_parent else (),
                tag_requirements=tuple(
                    TagRequirement(tag, draw(st.booleans()))
                    for tag in draw(st.sampled_from([[], [], *([t] for t in TAGS)]))
                ),
                software_requirements=()
                if wanted is None
                else (SoftwareRequirement(maya.id, "maya", wanted, "v"),),
                tasks=[
                    {"agent_id": a.id, "state": draw(st.sampled_from([None, WorkState.RUNNING]))}
                    for a in busy_on
                ]
                + [{"state": WorkState.DONE}] * draw(st.integers(0, 1))
                + [
                    # Queued after failing: in their back-off, or past it (and past the second
                    # one of the agent that failed them last, or not).
                    {
                        "frame": draw(st.sampled_from([-2.0, -1.0, -1.0, 50.0])),
                        "failures": draw(st.integers(1, 2)),
                        "failed_on": draw(st.sampled_from(agents)).id,
                        "not_before": now + timedelta(seconds=draw(st.sampled_from(BACK_OFFS))),
                    }
                    for _ in range(draw(st.sampled_from([0, 1, 1, 2])))
                ],
            )
        )
    with world.uow() as uow:
        for job in jobs:
            for agent in agents:
                # Failures lately, or long enough ago that the block has lifted.
                failed_at = now - timedelta(seconds=draw(st.sampled_from([0, 0, EXPIRED])))
                for _ in range(draw(st.sampled_from([0] * 6 + [1, MAX_FAILURES]))):
                    uow.blocks.record_failure(job.id, agent.id, failed_at)
                refusal = draw(st.sampled_from([None] * 6 + ["current", "stale"]))
                if refusal is not None:
                    profile = uow.scheduling.agent_profile(agent.id)
                    assert profile is not None
                    fingerprint = profile.fingerprint if refusal == "current" else "0:0:[]"
                    uow.blocks.record_rejection(job.id, agent.id, fingerprint, now, "no")
        uow.commit()
    return world


def scheduler_gives(world: World, agent_id: uuid.UUID, only: int | None = None) -> int | None:
    """The job of the batch the dispatcher gives the agent on a copy of the farm (with
    ``only``: every other unfinished job paused first), or None."""
    store = FakeStore()
    store.data = copy.deepcopy(world.uow.store.data)
    if only is not None:
        for job in list(store.data.jobs.values()):
            if job.id != only and job.state in (None, WorkState.RUNNING):
                store.data.jobs[job.id] = attrs.evolve(job, state=WorkState.PAUSED)
    dispatcher = Dispatcher(
        FakeUnitOfWorkFactory(store),
        RecordingQueue(),
        world.clock,
        ScriptedAgentClient(),
        world.networks,
        world.reconciler,
        dispatch_policy(),
    )
    claimed = dispatcher.assign_tasks_to_agent(agent_id)
    return store.data.tasks[claimed[0]].job_id if claimed else None


FARM_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FARM_SETTINGS
@given(farms())
def test_an_agent_is_eligible_for_a_job_exactly_when_the_scheduler_could_give_it(world) -> None:
    with world.uow() as uow:
        agents = [a.id for a in uow.scheduling.contacts()]
    job_ids = sorted(world.uow.store.data.jobs)
    for job_id in job_ids:
        explained = world.explain.job(VIEWER, job_id)
        eligible = {a.id for a in explained.eligible}
        assert explained.eligible_count == len(eligible)  # small farms: all listed
        given_to = {a for a in agents if scheduler_gives(world, a, only=job_id) == job_id}
        assert eligible == given_to
        assert explained.can_run_now is bool(given_to)
        listed = [a.id for g in explained.agents for a in g.agents] + list(eligible)
        assert sorted(listed) == sorted(agents)  # every agent accounted for, once


@FARM_SETTINGS
@given(farms())
def test_the_job_an_agent_would_get_is_the_one_the_scheduler_gives_it(world) -> None:
    with world.uow() as uow:
        agents = [a.id for a in uow.scheduling.contacts()]
    for agent_id in agents:
        explained = world.explain.agent(VIEWER, agent_id)
        would_get = None if explained.would_get is None else explained.would_get.id
        assert would_get == scheduler_gives(world, agent_id)
        if explained.reasons:
            assert would_get is None
        elif would_get is not None:
            assert explained.eligible[0].id == would_get
        else:
            assert explained.eligible == ()
