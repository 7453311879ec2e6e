"""Properties of the scheduler's choice of work."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm_domain.scheduling import (
    AgentProfile,
    JobAgentBlock,
    JobProfile,
    Misfit,
    RamCheck,
    RankRange,
    Reason,
    RetryBackoff,
    agent_fits,
    batch_of,
    choose_job,
    could_ever_fit,
    misfits,
    offerable,
    order_jobs,
    why_not,
)
from farm_domain.work import Task

T0 = datetime(2026, 1, 1, tzinfo=UTC)

REQUIREMENT = st.builds(
    RankRange, st.integers(1, 3), st.none() | st.integers(0, 300), st.none() | st.integers(0, 300)
)
JOB = st.builds(
    JobProfile,
    id=st.integers(1, 10**6),
    priority=st.integers(-3, 3),
    weight=st.integers(0, 100),
    time_submitted=st.integers(0, 1000).map(lambda s: T0 + timedelta(seconds=s)),
    ram=st.integers(16, 8192),
    cpus=st.integers(1, 16),
    minimum_agents=st.none() | st.integers(0, 5),
    maximum_agents=st.none() | st.integers(1, 5),
    busy_agents=st.integers(0, 6),
    requirements=st.lists(REQUIREMENT, max_size=2).map(tuple),
    tag_requirements=st.lists(
        st.tuples(st.sampled_from(["gpu", "linux", "big"]), st.booleans()),
        max_size=2,
        unique_by=lambda r: r[0],
    ).map(tuple),
)
AGENT = st.builds(
    AgentProfile,
    id=st.just(uuid.UUID(int=1)),
    ram=st.integers(16, 16384),
    free_ram=st.integers(0, 16384),
    cpus=st.integers(1, 16),
    ram_allocation=st.sampled_from([0.5, 0.8, 1.0]),
    cpu_allocation=st.sampled_from([0.5, 1.0, 2.0]),
    software=st.frozensets(st.tuples(st.integers(1, 3), st.integers(0, 300)), max_size=4),
    tags=st.frozensets(st.sampled_from(["gpu", "linux", "big"])),
)
JOBS = st.lists(JOB, max_size=8, unique_by=lambda j: j.id)


@given(AGENT, JOBS, st.frozensets(st.integers(1, 10**6)), st.sampled_from(list(RamCheck)))
def test_the_chosen_job_fits_the_agent_and_respects_limits(agent, jobs, blocked, check) -> None:
    chosen = choose_job(agent, jobs, blocked, check)
    if chosen is None:
        for job in jobs:
            assert (
                job.id in blocked
                or not agent_fits(agent, job, check)
                or (job.maximum_agents is not None and job.busy_agents >= job.maximum_agents)
            )
        return
    assert chosen.id not in blocked
    assert chosen.maximum_agents is None or chosen.busy_agents < chosen.maximum_agents
    ram = agent.free_ram if check is RamCheck.FREE else agent.ram * agent.ram_allocation
    assert chosen.ram <= ram and chosen.cpus <= agent.cpus * agent.cpu_allocation
    for tag, negate in chosen.tag_requirements:
        assert (tag in agent.tags) is not negate
    for requirement in chosen.requirements:
        assert any(
            s == requirement.software_id
            and (requirement.low is None or r >= requirement.low)
            and (requirement.high is None or r <= requirement.high)
            for s, r in agent.software
        )


@given(AGENT, JOBS)
def test_no_eligible_job_comes_before_the_chosen_one_in_the_order(agent, jobs) -> None:
    chosen = choose_job(agent, jobs)
    for job in order_jobs(jobs):
        if job == chosen:
            break
        assert not agent_fits(agent, job) or (
            job.maximum_agents is not None and job.busy_agents >= job.maximum_agents
        )


@given(JOBS)
def test_starving_jobs_then_priority_lead_the_order(jobs) -> None:
    ordered = order_jobs(jobs)
    starving = [j.minimum_agents is not None and j.busy_agents < j.minimum_agents for j in ordered]
    assert starving == sorted(starving, reverse=True)
    for group in (True, False):
        priorities = [j.priority for j, s in zip(ordered, starving, strict=True) if s is group]
        assert priorities == sorted(priorities, reverse=True)


@settings(deadline=None, max_examples=25)
@given(st.permutations([60, 30, 10]))
def test_weights_converge_to_their_shares_over_100_agents(weights) -> None:
    jobs = [
        JobProfile(id=i + 1, priority=0, weight=w, time_submitted=T0) for i, w in enumerate(weights)
    ]
    agent = AgentProfile(id=uuid.UUID(int=1), ram=4096, free_ram=4096, cpus=4)
    for _ in range(100):
        chosen = choose_job(agent, jobs)
        assert chosen is not None
        jobs = [
            attrs.evolve(j, busy_agents=j.busy_agents + 1) if j.id == chosen.id else j for j in jobs
        ]
    for job in jobs:
        assert abs(job.busy_agents - job.weight) <= 1


@given(
    st.lists(st.integers(0, 30), unique=True, max_size=15),
    st.integers(1, 6),
    st.booleans(),
    st.none() | st.integers(1, 4),
)
def test_batches_follow_batch_size_and_contiguity(frames, batch, contiguous, max_batch) -> None:
    job = JobProfile(
        id=1,
        priority=0,
        weight=1,
        time_submitted=T0,
        batch=batch,
        max_batch=max_batch,
        batch_contiguous=contiguous,
        frame_by=1.0,
    )
    queued = [Task(id=100 + f, job_id=1, frame=float(f)) for f in frames]
    chosen = batch_of(job, queued)
    if not frames:
        assert chosen == []
        return
    assert 1 <= len(chosen) <= job.batch_size
    assert chosen[0].frame == min(frames)
    assert [t.frame for t in chosen] == sorted(t.frame for t in chosen)
    if contiguous:
        assert all(b.frame - a.frame == 1.0 for a, b in itertools.pairwise(chosen))
    else:
        assert [t.frame for t in chosen] == sorted(float(f) for f in frames)[: job.batch_size]


@given(
    AGENT,
    JOB,
    st.sampled_from(list(RamCheck)),
    st.none() | st.sampled_from([Reason.BLOCKLISTED, Reason.REFUSED]),
)
def test_why_not_names_each_thing_that_keeps_the_agent_from_the_job(
    agent, job, check, block
) -> None:
    reasons = why_not(agent, job, check, block)
    ram = agent.free_ram if check is RamCheck.FREE else agent.ram * agent.ram_allocation
    assert (Reason.RAM in reasons) is (job.ram > ram)
    assert (Reason.CPUS in reasons) is (job.cpus > agent.cpus * agent.cpu_allocation)
    assert (Reason.TAGS in reasons) is any(
        (tag in agent.tags) is negate for tag, negate in job.tag_requirements
    )
    assert (Reason.SOFTWARE in reasons) is not all(
        r.met_by(agent.software) for r in job.requirements
    )
    assert (Reason.MAXIMUM_AGENTS in reasons) is (
        job.maximum_agents is not None and job.busy_agents >= job.maximum_agents
    )
    assert (block is not None) is (bool(reasons) and reasons[0] is block)
    assert agent_fits(agent, job, check) is not bool(misfits(agent, job, check))
    # choose_job takes the job alone exactly when nothing keeps the agent from it.
    blocked = frozenset({job.id}) if block is not None else frozenset()
    assert (choose_job(agent, [job], blocked, check) == job) is not reasons


BACKOFF = st.builds(
    RetryBackoff,
    st.sampled_from([0.0, 0.5, 1.0, 15.0]) | st.integers(1, 1000).map(float),
    st.integers(1, 10**6).map(float),
).filter(lambda b: b.cap >= b.base)


@given(BACKOFF, st.integers(0, 10**6))
def test_the_retry_back_off_doubles_per_failure_up_to_its_cap(backoff, failures) -> None:
    delay = backoff.delay(failures).total_seconds()
    if backoff.base == 0 or failures == 0:
        assert delay == 0
        return
    assert 0 < delay <= backoff.cap + 1e-6
    assert delay == pytest.approx(min(backoff.base * 2.0 ** min(failures - 1, 62), backoff.cap))
    assert backoff.delay(failures + 1).total_seconds() >= delay  # never shorter


AGENT_A, AGENT_B = uuid.UUID(int=1), uuid.UUID(int=2)
QUEUED = st.lists(
    st.builds(
        Task,
        id=st.integers(1, 10**6),
        job_id=st.just(1),
        frame=st.integers(0, 50).map(float),
        failures=st.integers(0, 5),
        not_before=st.none() | st.integers(-100, 100).map(lambda s: T0 + timedelta(seconds=s)),
        failed_on=st.sampled_from([None, AGENT_A, AGENT_B]),
    ),
    max_size=12,
    unique_by=lambda t: t.id,
)


@given(QUEUED, BACKOFF, st.integers(-100, 300).map(lambda s: T0 + timedelta(seconds=s)))
def test_a_task_is_offered_after_its_back_off_and_last_to_the_agent_that_failed_it(
    queued, backoff, now
) -> None:
    offered = offerable(queued, AGENT_A, now, backoff)
    assert all(task in queued for task in offered)
    ready = [t for t in queued if t.not_before is None or t.not_before <= now]
    # Nothing is offered before its back-off ends.
    assert all(task in ready for task in offered)
    elsewhere = [t for t in ready if t.failed_on != AGENT_A]
    if elsewhere:
        # Tasks another agent failed (or none did) first: all of them, and only them.
        assert offered == elsewhere
        return
    # Only tasks this agent failed are left: each once a second back-off has passed.
    for task in ready:
        assert task.failed_on == AGENT_A
        waited = task.not_before is None or now >= task.not_before + backoff.delay(task.failures)
        assert (task in offered) is waited


@given(QUEUED, BACKOFF, st.integers(-100, 300).map(lambda s: T0 + timedelta(seconds=s)))
def test_a_ready_task_is_always_offered_to_some_agent(queued, backoff, now) -> None:
    """No task is kept from everyone: when its back-off ended, any agent but the one that
    failed it gets it."""
    for task in queued:
        if task.not_before is None or task.not_before <= now:
            others = {AGENT_A, AGENT_B} - {task.failed_on}
            assert any(task in offerable([task], agent, now, backoff) for agent in others)


@given(
    st.integers(0, 6),
    st.integers(1, 5),
    st.none() | st.integers(0, 5000).map(lambda s: T0 + timedelta(seconds=s)),
    st.integers(0, 8000).map(lambda s: T0 + timedelta(seconds=s)),
    st.sampled_from([0.0, 60.0, 1800.0]),
    st.booleans(),
)
def test_a_block_for_failures_lifts_after_its_expiry_a_refusal_does_not(
    failures, max_failures, updated_on, now, expiry, refused
) -> None:
    block = JobAgentBlock(
        1, AGENT_A, failures, "4096:8:[]" if refused else None, updated_on=updated_on
    )
    blocks = block.blocks("4096:8:[]", max_failures, now, expiry)
    if refused:
        assert blocks
        return
    lifted = expiry > 0 and updated_on is not None and now >= updated_on + timedelta(seconds=expiry)
    assert blocks is (failures >= max_failures and not lifted)
    # Without a time, the rule is the old one: blocks never lift by themselves.
    assert block.blocks("4096:8:[]", max_failures) is (failures >= max_failures)


@given(AGENT, JOB, st.sampled_from(list(RamCheck)))
def test_misfits_name_exactly_what_agent_fits_checks(agent, job, check) -> None:
    lacking = misfits(agent, job, check)
    assert agent_fits(agent, job, check) is (not lacking)
    ram = agent.free_ram if check is RamCheck.FREE else agent.ram * agent.ram_allocation
    assert (Misfit.RAM in lacking) is (job.ram > ram)
    assert (Misfit.CPUS in lacking) is (job.cpus > agent.cpus * agent.cpu_allocation)
    if agent.free_ram <= agent.ram and agent_fits(agent, job, check):
        assert could_ever_fit(agent, job, check) == []  # fits now, so it could
