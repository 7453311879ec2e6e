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


def test_storing_tasks_records_their_creation_in_one_statement_per_job(uow) -> None:  # noqa: F811
    job = add_job(uow)
    agent = make_agent()
    with uow() as u:
        other = u.jobs.add(attrs.evolve(job, id=0, title="other"))
        u.agents.add(agent)
        u.tasks.add_many([Task(id=0, job_id=job.id, frame=f, time_submitted=T0) for f in (1, 2)])
        # Another job's tasks between the job's two batches, and tasks of each kind of state.
        u.tasks.add_many([Task(id=0, job_id=other.id, frame=1, time_submitted=T0)])
        u.tasks.add_many(
            [
                Task(id=0, job_id=job.id, frame=3, time_submitted=T1),
                Task(id=0, job_id=job.id, frame=4, time_submitted=T1, agent_id=agent.id),
                Task(
                    id=0,
                    job_id=job.id,
                    frame=5,
                    time_submitted=T1,
                    agent_id=agent.id,
                    sent_to_agent=True,
                ),
                Task(id=0, job_id=job.id, frame=6, time_submitted=T1, state=WorkState.DONE),
                Task(id=0, job_id=job.id, frame=7),  # no submission time: only tests build one
            ]
        )
        u.commit()
    with uow(read_only=True) as u:
        tasks = {t.frame: t for t in u.tasks.of_job(job.id)}
        (other_task,) = u.tasks.of_job(other.id)
        rows = {f: u.history.of_task(t.id, EVERY) for f, t in tasks.items()}
        assert _steps(u.history.of_task(other_task.id, EVERY)) == [(None, "queued", "submitted")]
    assert {f: _steps(r) for f, r in rows.items()} == {
        1: [(None, "queued", "submitted")],
        2: [(None, "queued", "submitted")],
        3: [(None, "queued", "submitted")],
        4: [(None, "assigned", "submitted")],
        5: [(None, "sent", "submitted")],
        6: [(None, "done", "submitted")],
        7: [],
    }
    assert [(r[0].at, r[0].job_id, r[0].task_id) for f, r in rows.items() if f in (1, 3)] == [
        (T0, job.id, tasks[1].id),
        (T1, job.id, tasks[3].id),
    ]
    assert rows[4][0].agent_id == agent.id


def test_a_task_stored_alone_records_its_creation_and_its_changes_chain_from_it(
    uow,  # noqa: F811
) -> None:
    job = add_job(uow)
    (task,) = add_tasks(uow, job, Task(id=0, job_id=0, frame=1, time_submitted=T0))
    with uow() as u:
        failed = attrs.evolve(task, state=WorkState.FAILED)
        u.tasks.save(failed, task, reason="stopped", at=T1)
        u.commit()
    with uow(read_only=True) as u:
        changes = u.history.of_task(task.id, EVERY)
    assert _steps(changes) == [("queued", "failed", "stopped"), (None, "queued", "submitted")]
    assert [c.at for c in changes] == [T1, T0]


def test_a_new_agent_records_its_registration_and_its_changes_chain_from_it(
    uow,  # noqa: F811
) -> None:
    agent = make_agent(last_heard_from=T0)
    with uow() as u:
        u.agents.add(agent)
        u.agents.save(attrs.evolve(agent, disabled=True), agent, reason="set by wendy", at=T1)
        u.commit()
    with uow(read_only=True) as u:
        changes = u.history.of_agent(agent.id, EVERY)
    assert _steps(changes) == [
        ("online", "disabled", "set by wendy"),
        (None, "online", "registered"),
    ]
    assert [(c.at, c.agent_id) for c in changes] == [(T1, agent.id), (T0, agent.id)]


def test_the_caps_count_the_creation_row_and_drop_it_first(uow) -> None:  # noqa: F811
    job = add_job(uow)
    (task,) = add_tasks(uow, job, Task(id=0, job_id=0, frame=1, time_submitted=T0))
    agent = make_agent(last_heard_from=T0)
    with uow() as u:
        u.agents.add(agent)
        current = task
        for n in range(TASK_HISTORY_KEPT // 2):  # with the creation: one row too many
            assigned = current.assigned_to(agent.id)
            u.tasks.save(assigned, current, reason=f"assigned {n}", at=T1)
            current = assigned.requeued()
            u.tasks.save(current, assigned, reason=f"requeued {n}", at=T1)
        previous = agent
        for n in range(AGENT_HISTORY_KEPT):
            changed = attrs.evolve(previous, disabled=not previous.disabled)
            u.agents.save(changed, previous, reason=f"flip {n}", at=T1)
            previous = changed
        u.commit()
    with uow(read_only=True) as u:
        task_rows = u.history.of_task(task.id, EVERY)
        agent_rows = u.history.of_agent(agent.id, EVERY)
    assert len(task_rows) == TASK_HISTORY_KEPT and task_rows[-1].reason == "assigned 0"
    assert len(agent_rows) == AGENT_HISTORY_KEPT and agent_rows[-1].reason == "flip 0"
