"""Properties of the AssignmentReconciler, on fakes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from farm_domain.enums import AgentState, WorkState
from tests.support.builders import World

TASK = st.fixed_dictionaries(
    {
        "mine": st.booleans(),
        "state": st.sampled_from(
            [None, WorkState.RUNNING, WorkState.DONE, WorkState.FAILED, WorkState.PAUSED]
        ),
        "sent": st.booleans(),
        "sent_ago": st.one_of(st.none(), st.integers(0, 120)),
        "failures": st.integers(0, 4),
        "reported": st.booleans(),
    }
)


def build(world: World, specs: list[dict[str, Any]], requeue: int):
    agent, _ = world.announce(hostname="me")
    other, _ = world.announce(hostname="other")
    job = world.job(requeue=requeue)
    tasks = []
    for spec in specs:
        sent_at = (
            None
            if spec["sent_ago"] is None
            else (world.clock.now() - timedelta(seconds=spec["sent_ago"]))
        )
        tasks.append(
            world.task(
                job,
                agent_id=agent.id if spec["mine"] else other.id,
                state=spec["state"],
                sent_to_agent=spec["sent"],
                sent_at=sent_at,
                failures=spec["failures"],
            )
        )
    reported = frozenset(t.id for t, s in zip(tasks, specs, strict=True) if s["reported"])
    return agent, other, job, tasks, reported


def reconcile(world: World, agent, reported):
    with world.uow() as uow:
        outcome = world.reconciler.reconcile(uow, agent, reported | {10**9})
        uow.commit()
    return outcome


@settings(max_examples=150, deadline=None)
@given(st.lists(TASK, max_size=8), st.sampled_from([-1, 0, 1, 3]))
def test_reconciliation_follows_the_rules_and_touches_nothing_else(specs, requeue) -> None:
    world = World(grace=30)
    agent, _, _job, tasks, reported = build(world, specs, requeue)
    outcome = reconcile(world, agent, reported)
    expected_unsent = []
    for before in tasks:
        after = world.get_task(before.id)
        untouched = (
            before.agent_id != agent.id
            or before.is_finished
            or before.id in reported
            or not before.sent_to_agent
            or (
                before.sent_at is not None
                and world.clock.now() - before.sent_at < timedelta(seconds=30)
            )
        )
        if (
            before.agent_id == agent.id
            and not before.is_finished
            and before.id not in reported
            and not before.sent_to_agent
        ):
            expected_unsent.append(before.id)
        if untouched:
            assert after == before
            continue
        assert after.failures == before.failures + 1
        assert (after.reason, after.failed_on) == ("lost", agent.id)
        with world.uow() as uow:
            (lost,) = uow.tasks.failures_of(before.id)
        assert (lost.attempt, lost.agent_id, lost.reason) == (before.attempts, agent.id, "lost")
        if requeue == -1 or after.failures <= requeue:
            assert after == attrs.evolve(
                before.requeued(), failures=after.failures, reason="lost", failed_on=agent.id
            )
            assert after.id in outcome.requeued
        else:
            assert (after.state, after.agent_id) == (WorkState.FAILED, agent.id)
            assert after.id in outcome.failed
    assert list(outcome.unsent) == expected_unsent


@settings(max_examples=60, deadline=None)
@given(st.lists(TASK, max_size=8), st.sampled_from([-1, 0, 3]))
def test_reconciling_twice_changes_nothing_more(specs, requeue) -> None:
    world = World()
    agent, _, _, tasks, reported = build(world, specs, requeue)
    reconcile(world, agent, reported)
    first = [world.get_task(t.id) for t in tasks]
    second = reconcile(world, agent, reported)
    assert [world.get_task(t.id) for t in tasks] == first
    assert not second.failed and not second.requeued


@settings(max_examples=40, deadline=None)
@given(st.lists(TASK, max_size=6))
def test_an_offline_agent_is_never_reconciled(specs) -> None:
    world = World()
    agent, _, _, tasks, _ = build(world, specs, 3)
    outcome = reconcile(world, attrs.evolve(agent, state=AgentState.OFFLINE), frozenset())
    assert outcome == type(outcome)()
    assert [world.get_task(t.id) for t in tasks] == tasks


def test_the_job_state_is_recomputed_after_a_requeue() -> None:
    world = World()
    agent, _ = world.announce()
    job = world.job(requeue=-1)
    task = world.task(job, agent_id=agent.id, sent_to_agent=True, state=WorkState.RUNNING)
    with world.uow() as uow:
        uow.jobs.set_state(job.id, WorkState.RUNNING)
        uow.commit()
    reconcile(world, agent, frozenset())
    assert world.get_task(task.id).agent_id is None
    assert world.get_job(job.id).state is None
    assert uuid.UUID(str(agent.id)) == agent.id
