"""The history's contract, shared by the fake and the SQL repositories: the state-writing
repositories record each change of state once, with its reason and time, and nothing else;
reads are newest first and paged; each task and agent keeps a bounded number of rows."""

from __future__ import annotations

from datetime import timedelta

import attrs

from farm_domain.enums import AgentState, WorkState
from farm_domain.history import (
    AGENT_HISTORY_KEPT,
    MAX_HISTORY,
    TASK_HISTORY_KEPT,
    HistoryPage,
    StateChange,
)
from farm_domain.ports import UnitOfWorkFactory
from farm_domain.work import Task
from tests.contract.test_repositories import (  # noqa: F401  # the fixtures
    T0,
    add_job,
    add_tasks,
    database_url_pg,
    make_agent,
    uow,
)

EVERY = HistoryPage(limit=MAX_HISTORY)
T1 = T0 + timedelta(seconds=1)


def _steps(changes: list[StateChange]) -> list[tuple[str | None, str, str]]:
    return [(c.before, c.after, c.reason) for c in changes]


def _task(factory: UnitOfWorkFactory) -> Task:
    job = add_job(factory)
    (task,) = add_tasks(factory, job, Task(id=0, job_id=0, frame=1))
    return task


def test_saving_a_task_records_a_change_of_state_and_nothing_else(uow) -> None:  # noqa: F811
    task = _task(uow)
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        assigned = task.assigned_to(agent.id)
        u.tasks.save(assigned, task, reason="assigned by wendy", at=T0)
        progressed = attrs.evolve(assigned, progress=0.5, attempts=2)
        u.tasks.save(progressed, assigned, reason="progress", at=T0)  # same state: no row
        running = attrs.evolve(progressed, state=WorkState.RUNNING)
        u.tasks.save(running, progressed, reason="reported by its agent", at=T1)
        u.commit()
    with uow(read_only=True) as u:
        changes = u.history.of_task(task.id, EVERY)
    assert _steps(changes) == [
        ("assigned", "running", "reported by its agent"),
        ("queued", "assigned", "assigned by wendy"),
    ]
    assert [(c.at, c.task_id, c.job_id, c.agent_id) for c in changes] == [
        (T1, task.id, task.job_id, agent.id),
        (T0, task.id, task.job_id, agent.id),
    ]
    assert changes[0].id > changes[1].id


def test_nothing_is_recorded_without_commit(uow) -> None:  # noqa: F811
    task = _task(uow)
    with uow() as u:
        u.tasks.save(attrs.evolve(task, state=WorkState.FAILED), task, reason="x", at=T0)
    with uow(read_only=True) as u:
        assert u.history.of_task(task.id, EVERY) == []


def test_a_claim_and_a_send_are_recorded_once(uow) -> None:  # noqa: F811
    task = _task(uow)
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        assert u.scheduling.claim([task.id], agent.id, reason="scheduled", at=T0) == [task.id]
        assert u.scheduling.claim([task.id], agent.id, reason="again", at=T0) == []
        assert u.scheduling.mark_sent(task.id, agent.id, 1, T1, reason="accepted")
        assert u.scheduling.mark_sent(task.id, agent.id, 1, T1, reason="accepted twice")
        u.commit()
    with uow(read_only=True) as u:
        changes = u.history.of_task(task.id, EVERY)
    assert _steps(changes) == [
        ("assigned", "sent", "accepted"),
        ("queued", "assigned", "scheduled"),
    ]
    assert [(c.at, c.agent_id) for c in changes] == [(T1, agent.id), (T0, agent.id)]


def test_a_send_after_the_agent_reported_running_records_nothing(uow) -> None:  # noqa: F811
    task = _task(uow)
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        u.scheduling.claim([task.id], agent.id, reason="scheduled", at=T0)
        claimed = u.tasks.get(task.id)
        running = attrs.evolve(claimed, state=WorkState.RUNNING)
        u.tasks.save(running, claimed, reason="reported", at=T0)
        assert u.scheduling.mark_sent(task.id, agent.id, 1, T1, reason="accepted")
        u.commit()
    with uow(read_only=True) as u:
        assert [c.after for c in u.history.of_task(task.id, EVERY)] == ["running", "assigned"]
        assert u.tasks.get(task.id).sent_to_agent


def test_the_bulk_statements_record_every_task_they_change(uow) -> None:  # noqa: F811
    job = add_job(uow)
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        u.commit()
    held, done, queued = add_tasks(
        uow,
        job,
        Task(id=0, job_id=0, frame=1, agent_id=agent.id, state=WorkState.RUNNING),
        Task(id=0, job_id=0, frame=2, agent_id=agent.id, state=WorkState.DONE),
        Task(id=0, job_id=0, frame=3),
    )
    with uow() as u:
        released = u.tasks.release_of_job(job.id, reason="canceled by wendy", at=T0)
        assert [t.id for t in released] == [held.id]
        assert u.tasks.cancel_unfinished(job.id, "canceled", T1, why="canceled by wendy") == 2
        u.commit()
    with uow(read_only=True) as u:
        # Taken from its agent, it is still running until the cancel: one change.
        assert _steps(u.history.of_task(held.id, EVERY)) == [
            ("running", "canceled", "canceled by wendy")
        ]
        assert [c.at for c in u.history.of_task(held.id, EVERY)] == [T1]
        assert _steps(u.history.of_task(queued.id, EVERY)) == [
            ("queued", "canceled", "canceled by wendy")
        ]
        assert u.history.of_task(done.id, EVERY) == []


def test_saving_an_agent_records_a_change_of_its_shown_state_only(uow) -> None:  # noqa: F811
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        u.commit()
    with uow() as u:
        heard = attrs.evolve(agent, free_ram=1000, last_heard_from=T0)
        u.agents.save(heard, agent, reason="heartbeat", at=T0)  # no state changed: no row
        disabled = attrs.evolve(heard, disabled=True)
        u.agents.save(disabled, heard, reason="set by wendy", at=T0)
        offline = attrs.evolve(disabled, state=AgentState.OFFLINE)
        u.agents.save(offline, disabled, reason="agent unreachable", at=T1)
        u.commit()
    with uow(read_only=True) as u:
        changes = u.history.of_agent(agent.id, EVERY)
    assert _steps(changes) == [
        ("disabled", "offline", "agent unreachable"),
        ("online", "disabled", "set by wendy"),
    ]
    assert {(c.agent_id, c.task_id) for c in changes} == {(agent.id, None)}


def test_reads_are_paged_newest_first(uow) -> None:  # noqa: F811
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        previous = agent
        for n in range(5):
            state = AgentState.RUNNING if n % 2 == 0 else AgentState.ONLINE
            changed = attrs.evolve(previous, state=state)
            u.agents.save(changed, previous, reason=f"flip {n}", at=T0)
            previous = changed
        u.commit()
    with uow(read_only=True) as u:
        first = u.history.of_agent(agent.id, HistoryPage(limit=2))
        second = u.history.of_agent(agent.id, HistoryPage(limit=2, before=first[-1].id))
        last = u.history.of_agent(agent.id, HistoryPage(limit=2, before=second[-1].id))
        assert u.history.of_agent(agent.id, HistoryPage(before=last[-1].id)) == []
    assert [c.reason for c in first + second + last] == [f"flip {n}" for n in (4, 3, 2, 1, 0)]


def test_a_flapping_agent_keeps_its_newest_rows_only(uow) -> None:  # noqa: F811
    agent = make_agent()
    flips = AGENT_HISTORY_KEPT + 7
    with uow() as u:
        u.agents.add(agent)
        previous = agent
        for n in range(flips):
            state = AgentState.OFFLINE if n % 2 == 0 else AgentState.ONLINE
            changed = attrs.evolve(previous, state=state)
            u.agents.save(changed, previous, reason=f"flip {n}", at=T0)
            previous = changed
        u.commit()
    with uow(read_only=True) as u:
        kept = u.history.of_agent(agent.id, EVERY)
    assert [c.reason for c in kept] == [f"flip {n}" for n in reversed(range(7, flips))]


def test_a_task_requeued_without_end_keeps_its_newest_rows_only(uow) -> None:  # noqa: F811
    task = _task(uow)
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        current = task
        for n in range(TASK_HISTORY_KEPT // 2 + 3):
            assigned = current.assigned_to(agent.id)
            u.tasks.save(assigned, current, reason=f"assigned {n}", at=T0)
            current = assigned.requeued()
            u.tasks.save(current, assigned, reason=f"requeued {n}", at=T0)
        u.commit()
    with uow(read_only=True) as u:
        kept = u.history.of_task(task.id, EVERY)
    assert len(kept) == TASK_HISTORY_KEPT
    assert kept[0].reason == f"requeued {TASK_HISTORY_KEPT // 2 + 2}"
    assert kept[-1].reason == "assigned 3"


def test_the_history_goes_with_its_task_and_agent(uow) -> None:  # noqa: F811
    task = _task(uow)
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        failed = attrs.evolve(task, state=WorkState.FAILED)
        u.tasks.save(failed, task, reason="x", at=T0)
        u.agents.save(attrs.evolve(agent, disabled=True), agent, reason="y", at=T0)
        u.commit()
    with uow() as u:
        u.jobs.delete(task.job_id)
        assert u.agents.delete(agent.id)
        u.commit()
    with uow(read_only=True) as u:
        assert u.history.of_task(task.id, EVERY) == []
        assert u.history.of_agent(agent.id, EVERY) == []
