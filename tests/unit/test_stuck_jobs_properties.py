"""Properties of the stuck-job verdict: a job fails exactly when every online, enabled agent
that could run it is blocked from it, long enough; it is flagged exactly when no agent could
ever fit it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from farm_domain.enums import AgentState, UseAddress
from farm_domain.scheduling import (
    AgentContact,
    AgentProfile,
    JobAgentBlock,
    JobProfile,
    RamCheck,
    could_ever_fit,
)
from farm_domain.stuck_jobs import STUCK_PREFIX, UNFIT_PREFIX, StuckRules, judge, may_revive

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = StuckRules(RamCheck.FREE, max_failures=3, block_expiry=1800, stuck_after=300)


@st.composite
def farms(
    draw: st.DrawFn,
) -> tuple[JobProfile, list[tuple[AgentContact, AgentProfile]], dict[uuid.UUID, JobAgentBlock]]:
    job = JobProfile(
        id=1,
        priority=0,
        weight=1,
        time_submitted=T0,
        ram=draw(st.sampled_from([32, 4096, 64000])),
        cpus=draw(st.integers(1, 8)),
        busy_agents=draw(st.sampled_from([0, 0, 0, 1])),
        tag_requirements=draw(st.sampled_from([(), (("gpu", False),)])),
    )
    agents, blocks = [], {}
    for n in range(draw(st.integers(0, 4))):
        agent_id = uuid.UUID(int=n + 1)
        ram = draw(st.sampled_from([1024, 8192, 128000]))
        profile = AgentProfile(
            agent_id,
            ram,
            draw(st.integers(0, ram)),
            draw(st.integers(1, 8)),
            tags=draw(st.sampled_from([frozenset(), frozenset({"gpu"})])),
        )
        contact = AgentContact(
            agent_id,
            f"node{n}",
            "127.0.0.1",
            50000,
            UseAddress.REMOTE,
            draw(st.sampled_from(list(AgentState))),
            draw(st.booleans()),
            None,
            None,
            False,
        )
        agents.append((contact, profile))
        if draw(st.booleans()):
            blocks[agent_id] = JobAgentBlock(
                1,
                agent_id,
                draw(st.integers(0, 4)),
                profile.fingerprint if draw(st.booleans()) else None,
                updated_on=T0 + timedelta(seconds=draw(st.integers(0, 2000))),
            )
    return job, agents, blocks


NOW = st.integers(0, 4000).map(lambda s: T0 + timedelta(seconds=s))


@given(farms(), NOW)
def test_a_job_fails_exactly_when_every_eligible_agent_is_blocked_long_enough(farm, now) -> None:
    job, agents, blocks = farm
    verdict = judge(job, agents, blocks, now, RULES)
    eligible = [
        (c, p)
        for c, p in agents
        if c.state in (AgentState.ONLINE, AgentState.RUNNING)
        and not c.disabled
        and not could_ever_fit(p, job)
    ]
    blocked = [
        blocks[p.id]
        for _, p in eligible
        if p.id in blocks
        and blocks[p.id].blocks(p.fingerprint, RULES.max_failures, now, RULES.block_expiry)
    ]
    fits_somewhere = any(not could_ever_fit(p, job) for _, p in agents)
    expected = (
        fits_somewhere
        and bool(eligible)
        and job.busy_agents == 0
        and len(blocked) == len(eligible)
        and now >= max(b.updated_on for b in blocked) + timedelta(seconds=RULES.stuck_after)
    )
    assert verdict.fail is expected
    if verdict.fail:
        assert verdict.reason is not None and verdict.reason.startswith(STUCK_PREFIX)
    # Flagged (a reason while it stays queued) exactly when no agent could ever fit it.
    flagged = not verdict.fail and verdict.reason is not None
    assert flagged is (not fits_somewhere)
    if flagged:
        assert verdict.reason is not None and verdict.reason.startswith(UNFIT_PREFIX)


@given(farms(), NOW)
def test_a_failed_stuck_job_comes_back_only_for_an_eligible_agent_without_a_block(
    farm, now
) -> None:
    job, agents, blocks = farm
    back = may_revive(job, agents, blocks, RamCheck.FREE)
    free = [
        c
        for c, p in agents
        if c.state in (AgentState.ONLINE, AgentState.RUNNING)
        and not c.disabled
        and not could_ever_fit(p, job)
        and c.id not in blocks
    ]
    assert back is bool(free)
    if back:  # that agent would not let the job be judged stuck again at once
        assert not judge(job, agents, blocks, now, RULES).fail
