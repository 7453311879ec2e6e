"""Failure reasons and policies in the domain: the rules (property tests), and JobService
keeping one record per failed attempt in the report's own transaction."""

from __future__ import annotations

import re
import string

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm_domain.enums import WorkState
from farm_domain.errors import Conflict, ValidationError
from farm_domain.failures import (
    MAX_FAILURE_MESSAGE,
    MAX_POLICY_SECONDS,
    effective_limit,
    failure_message,
    valid_reason,
)
from farm_domain.job_requests import JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from tests.support.builders import World
from tests.support.identities import ADMIN


@given(st.text(max_size=40) | st.integers() | st.none())
def test_a_reason_is_a_short_lowercase_code(value: object) -> None:
    expected = isinstance(value, str) and re.fullmatch(r"[a-z_]{1,32}", value) is not None
    assert valid_reason(value) is expected


@given(st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=32))
def test_every_short_code_is_a_reason(value: str) -> None:
    assert valid_reason(value)


@given(st.text(max_size=3 * MAX_FAILURE_MESSAGE))
def test_a_failure_message_keeps_the_end_within_bounds(text: str) -> None:
    kept = failure_message(text)
    assert kept is not None and len(kept) == min(len(text), MAX_FAILURE_MESSAGE)
    assert "\x00" not in kept and text.replace("\x00", "\ufffd").endswith(kept)


@given(st.none() | st.integers(1, MAX_POLICY_SECONDS), st.integers(0, MAX_POLICY_SECONDS))
def test_a_jobs_own_limit_wins_and_zero_is_none(own: int | None, default: int) -> None:
    limit = effective_limit(own, default)
    assert limit == (own if own is not None else (default or None))


def world_with_task(requeue: int = -1):
    world = World()
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
    job = world.jobs.submit(
        ADMIN, JobSpec(title="shot", jobtype="render", start=1, end=1, requeue=requeue)
    ).job
    (task,) = world.jobs.tasks(ADMIN, job.id)
    return world, job, task


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["timeout", "ram", None, "stalled", "done"]), max_size=6))
def test_each_failed_attempt_is_recorded_once(outcomes: list[str | None]) -> None:
    world, job, task = world_with_task()
    agents = [world.announce(hostname=f"render{n}")[0] for n in range(2)]
    expected = []
    for attempt, outcome in enumerate(outcomes, start=1):
        agent = agents[attempt % 2]
        world.registry.assign_task(ADMIN, agent.id, task.id)
        if outcome == "done":
            world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done"))
            break
        world.clock.advance(1)
        report = TaskReport(state="failed", last_error=f"attempt {attempt}", reason=outcome)
        after = world.jobs.report(ADMIN, job.id, task.id, report, agent.id, attempt)
        expected.append((attempt, agent.id, outcome or "exit", f"attempt {attempt}"))
        assert (after.reason, after.failures) == (outcome or "exit", len(expected))
        with world.uow() as uow:
            stored = uow.tasks.get(task.id)
        assert stored is not None and stored.failed_on == agent.id
    failures = world.jobs.failures(ADMIN, job.id, task.id)
    assert [(f.attempt, f.agent_id, f.reason, f.message) for f in failures] == expected
    assert [f.at for f in failures] == sorted(f.at for f in failures)


def test_a_refused_report_records_no_failure() -> None:
    world, job, task = world_with_task(requeue=0)
    agent, _ = world.announce()
    other, _ = world.announce(hostname="other")
    world.registry.assign_task(ADMIN, agent.id, task.id)
    failed = TaskReport(state="failed", last_error="boom", reason="timeout")
    with pytest.raises(Conflict):
        world.jobs.report(ADMIN, job.id, task.id, failed, other.id)
    with pytest.raises(Conflict):
        world.jobs.report(ADMIN, job.id, task.id, failed, agent.id, attempt=7)
    with pytest.raises(ValidationError, match="`reason` must be a short code"):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="failed", reason="Time Out"))
    assert world.jobs.failures(ADMIN, job.id, task.id) == []
    final = world.jobs.report(ADMIN, job.id, task.id, failed, agent.id)
    assert (final.state, final.reason) == (WorkState.FAILED, "timeout")
    # a late second report on a finished task changes nothing, records nothing
    world.jobs.report(ADMIN, job.id, task.id, failed, agent.id)
    assert len(world.jobs.failures(ADMIN, job.id, task.id)) == 1


def test_a_task_lost_by_its_agent_is_recorded_as_lost() -> None:
    world, job, task = world_with_task()
    agent, _ = world.announce()
    world.registry.assign_task(ADMIN, agent.id, task.id)
    with world.uow() as uow:
        stored = uow.tasks.get(task.id)
        assert stored is not None
        sent = attrs.evolve(stored, sent_to_agent=True, sent_at=world.clock.now())
        uow.tasks.save(sent, stored, reason="test", at=world.clock.now())
        uow.commit()
    world.clock.advance(3600)
    with world.uow() as uow:
        known = uow.agents.get(agent.id)
        assert known is not None
        outcome = world.reconciler.reconcile(uow, known, frozenset())
        uow.commit()
    assert outcome.requeued == (task.id,)
    (failure,) = world.jobs.failures(ADMIN, job.id, task.id)
    assert (failure.attempt, failure.agent_id, failure.reason) == (1, agent.id, "lost")
    after = world.jobs.task(ADMIN, job.id, task.id)
    assert (after.reason, after.failed_on, after.failures, after.agent_id) == (
        "lost",
        agent.id,
        1,
        None,
    )
