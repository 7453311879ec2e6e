"""Controls on fakes: retry, skip and stop a task; cancel, pause, resume and requeue a job; the
bulk forms; who may; what each refuses (and that a refusal changes nothing)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm_domain.controls import (
    MAX_BULK,
    JobAction,
    Running,
    TaskAction,
    parse_ids,
    parse_running,
)
from farm_domain.enums import WorkState
from farm_domain.errors import Conflict, Forbidden, NotFound, ValidationError
from farm_domain.events import EventQuery
from farm_domain.job_requests import JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from farm_domain.work import Job, Task, TaskStatus, job_state
from tests.support.builders import World
from tests.support.identities import ADMIN, ARTIST, OTHER_ARTIST, VIEWER, WRANGLER


@pytest.fixture
def world() -> World:
    world = World()
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
    return world


def submit(world: World, end: int = 3, actor: Any = ARTIST, **fields: Any) -> Job:
    spec = JobSpec(title="shot", jobtype="render", start=1, end=end, **fields)
    return world.jobs.submit(actor, spec).job


def tasks(world: World, job: Job) -> list[Task]:
    return world.jobs.tasks(ADMIN, job.id)


def running(world: World, job: Job, task: Task, port: int = 50001) -> Any:
    agent, _ = world.announce(remote_ip="10.0.0.9", port=port, hostname=f"node{port}")
    world.registry.assign_task(ADMIN, agent.id, task.id)
    world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="running"), agent.id)
    world.queue.calls.clear()
    return agent


def done(world: World, job: Job, task: Task) -> None:
    agent, _ = world.announce(hostname="done-node")
    world.registry.assign_task(ADMIN, agent.id, task.id)
    world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done"), agent.id)


def failed(world: World, job: Job, task: Task) -> None:
    agent, _ = world.announce(hostname="fail-node")
    world.registry.assign_task(ADMIN, agent.id, task.id)
    world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="failed"), agent.id)


def state_of(world: World) -> Any:
    return copy.deepcopy(world.uow.store.data)


def actions(world: World) -> list[str]:
    return [e.action for e in world.events.query(ADMIN, EventQuery())]


# -- retry ----------------------------------------------------------------------------------


def test_retry_a_running_task_stops_it_and_queues_a_new_attempt(world: World) -> None:
    job = submit(world, requeue=0)
    task = tasks(world, job)[0]
    agent = running(world, job, task)
    retried = world.controls.task(WRANGLER, TaskAction.RETRY, job.id, task.id)
    assert (retried.status, retried.agent_id, retried.attempts) == (TaskStatus.QUEUED, None, 1)
    assert retried.failed_on == agent.id
    assert world.queue.calls == [
        ("stop_tasks", (agent.id, "10.0.0.9", 50001, (task.id,))),
        ("assign_tasks", ()),
    ]
    # The old run's late report is refused; the next hand-out is attempt 2.
    with pytest.raises(Conflict):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done"), agent.id, 1)
    world.registry.assign_task(ADMIN, agent.id, task.id)
    assert world.get_task(task.id).attempts == 2
    with pytest.raises(Conflict, match="at attempt 2, not 1"):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done"), agent.id, 1)
    assert "task.retry" in actions(world)


@pytest.mark.parametrize("finish", [done, failed])
def test_retry_a_finished_task_keeps_its_failures(world: World, finish: Any) -> None:
    job = submit(world, end=1, requeue=0)
    (task,) = tasks(world, job)
    finish(world, job, task)
    before = world.get_task(task.id)
    assert world.jobs.get(ADMIN, job.id).job.state in (WorkState.DONE, WorkState.FAILED)
    retried = world.controls.task(ARTIST, TaskAction.RETRY, job.id, task.id)
    assert retried.status is TaskStatus.QUEUED
    assert retried.failures == before.failures
    assert retried.time_finished is None
    view = world.jobs.get(ADMIN, job.id)
    assert view.job.state is None and view.job.time_finished is None


def test_retry_a_queued_task_is_a_conflict_that_changes_nothing(world: World) -> None:
    job = submit(world)
    task = tasks(world, job)[0]
    world.queue.calls.clear()
    before = state_of(world)
    with pytest.raises(Conflict, match=f"Task {task.id} is queued already"):
        world.controls.task(WRANGLER, TaskAction.RETRY, job.id, task.id)
    assert state_of(world) == before
    assert world.queue.calls == []


# -- skip -----------------------------------------------------------------------------------


def test_skip_makes_a_task_done_without_running_and_finishes_the_job(world: World) -> None:
    job = submit(world, end=2)
    first, second = tasks(world, job)
    agent = running(world, job, first)
    skipped = world.controls.task(WRANGLER, TaskAction.SKIP, job.id, first.id)
    assert (skipped.state, skipped.skipped, skipped.agent_id) == (WorkState.DONE, True, None)
    assert ("stop_tasks", (agent.id, "10.0.0.9", 50001, (first.id,))) in world.queue.calls
    world.controls.task(WRANGLER, TaskAction.SKIP, job.id, second.id)
    assert world.jobs.get(ADMIN, job.id).job.state is WorkState.DONE
    with pytest.raises(Conflict, match="is skipped already"):
        world.controls.task(WRANGLER, TaskAction.SKIP, job.id, second.id)
    # Retried, it runs after all.
    assert world.controls.task(WRANGLER, TaskAction.RETRY, job.id, second.id).skipped is False


def test_skip_a_done_task_is_a_conflict(world: World) -> None:
    job = submit(world, end=1)
    (task,) = tasks(world, job)
    done(world, job, task)
    before = state_of(world)
    with pytest.raises(Conflict, match="is done already"):
        world.controls.task(WRANGLER, TaskAction.SKIP, job.id, task.id)
    assert state_of(world) == before


# -- stop -----------------------------------------------------------------------------------


def test_stop_leaves_a_running_task_failed_without_blocking_its_agent(world: World) -> None:
    job = submit(world)
    task = tasks(world, job)[0]
    agent = running(world, job, task)
    stopped = world.controls.task(WRANGLER, TaskAction.STOP, job.id, task.id)
    assert (stopped.state, stopped.reason, stopped.agent_id) == (WorkState.FAILED, "stopped", None)
    assert stopped.failures == 0
    assert world.queue.calls == [
        ("stop_tasks", (agent.id, "10.0.0.9", 50001, (task.id,))),
        ("assign_tasks", ()),
    ]
    with world.uow(read_only=True) as uow:
        (failure,) = uow.tasks.failures_of(task.id)
        assert uow.blocks.of_job(job.id) == []
    assert (failure.reason, failure.attempt, failure.agent_id) == ("stopped", 1, agent.id)
    assert failure.message == "stopped by wendy"
    # A late report of the stopped run changes nothing.
    with pytest.raises(Conflict):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done"), agent.id, 1)


@pytest.mark.parametrize("make", ["queued", "done", "failed"])
def test_stop_applies_to_running_and_assigned_tasks_only(world: World, make: str) -> None:
    job = submit(world, end=1, requeue=0)
    (task,) = tasks(world, job)
    if make == "done":
        done(world, job, task)
    elif make == "failed":
        failed(world, job, task)
    before = state_of(world)
    with pytest.raises(Conflict, match=f"is {make}: only a running or assigned task"):
        world.controls.task(WRANGLER, TaskAction.STOP, job.id, task.id)
    assert state_of(world) == before


def test_stop_an_assigned_task(world: World) -> None:
    job = submit(world)
    task = tasks(world, job)[0]
    agent, _ = world.announce()
    world.registry.assign_task(ADMIN, agent.id, task.id)
    assert world.controls.task(WRANGLER, TaskAction.STOP, job.id, task.id).reason == "stopped"


# -- who may, what is found -----------------------------------------------------------------


@pytest.mark.parametrize("action", list(TaskAction))
def test_task_controls_by_role(world: World, action: TaskAction) -> None:
    job = submit(world, end=1)
    (task,) = tasks(world, job)
    running(world, job, task)
    before = state_of(world)
    for actor in (VIEWER, OTHER_ARTIST):
        with pytest.raises(Forbidden):
            world.controls.task(actor, action, job.id, task.id)
        with pytest.raises(Forbidden):
            world.controls.tasks(actor, action, job.id, [task.id])
    with pytest.raises(NotFound, match="Task not found"):
        world.controls.task(WRANGLER, action, job.id + 1, task.id)
    with pytest.raises(NotFound, match="Job 999 not found"):
        world.controls.tasks(WRANGLER, action, 999, [task.id])
    assert state_of(world) == before
    world.controls.task(ARTIST, action, job.id, task.id)


@pytest.mark.parametrize("action", list(JobAction))
def test_job_controls_by_role(world: World, action: JobAction) -> None:
    job = submit(world)
    if action is JobAction.RESUME:
        world.controls.job(ARTIST, JobAction.PAUSE, job.id)
    before = state_of(world)
    for actor in (VIEWER, OTHER_ARTIST):
        with pytest.raises(Forbidden):
            world.controls.job(actor, action, job.id)
    with pytest.raises(Forbidden):
        world.controls.jobs(VIEWER, action, [job.id])
    (outcome,) = world.controls.jobs(OTHER_ARTIST, action, [job.id])
    assert isinstance(outcome.error, Forbidden)
    with pytest.raises(NotFound, match="Job 999 not found"):
        world.controls.job(WRANGLER, action, 999)
    assert state_of(world) == before
    assert world.controls.job(ARTIST, action, job.id).ok


# -- bulk -----------------------------------------------------------------------------------


def test_bulk_tasks_answer_each_item(world: World) -> None:
    job = submit(world, end=3)
    other = submit(world, end=1)
    first, second, third = tasks(world, job)
    running(world, job, first)
    done(world, job, second)
    outcomes = world.controls.tasks(
        WRANGLER, TaskAction.STOP, job.id, [first.id, second.id, tasks(world, other)[0].id]
    )
    assert [o.ok for o in outcomes] == [True, False, False]
    assert isinstance(outcomes[1].error, Conflict)
    assert isinstance(outcomes[2].error, NotFound)
    assert world.get_task(first.id).reason == "stopped"
    outcomes = world.controls.tasks(WRANGLER, TaskAction.SKIP, job.id, [third.id, first.id])
    assert all(o.ok for o in outcomes)
    assert world.jobs.get(ADMIN, job.id).job.state is WorkState.DONE
    assert actions(world).count("task.skip") == 2


def test_bulk_jobs_answer_each_item(world: World) -> None:
    mine = submit(world)
    theirs = submit(world, actor=OTHER_ARTIST)
    outcomes = world.controls.jobs(ARTIST, JobAction.CANCEL, [mine.id, theirs.id, 999])
    assert outcomes[0].ok and outcomes[0].job is not None
    assert outcomes[0].job.job.state is WorkState.CANCELED
    assert isinstance(outcomes[1].error, Forbidden)
    assert isinstance(outcomes[2].error, NotFound)
    assert world.jobs.get(ADMIN, theirs.id).job.state is None


def test_bulk_delete_answers_each_job_and_leaves_the_refused(world: World) -> None:
    mine = submit(world)
    theirs = submit(world, actor=OTHER_ARTIST)
    outcomes = world.controls.delete_jobs(ARTIST, [mine.id, theirs.id, 999])
    assert [outcome.ok for outcome in outcomes] == [True, False, False]
    assert isinstance(outcomes[1].error, Forbidden)
    assert isinstance(outcomes[2].error, NotFound)
    with pytest.raises(NotFound):
        world.jobs.get(ADMIN, mine.id)
    assert world.jobs.get(ADMIN, theirs.id).job.id == theirs.id
    with pytest.raises(Forbidden):
        world.controls.delete_jobs(VIEWER, [theirs.id])
    with pytest.raises(ValidationError):
        world.controls.delete_jobs(WRANGLER, list(range(1, MAX_BULK + 2)))
    assert world.jobs.get(ADMIN, theirs.id).job.id == theirs.id


def test_bulk_bounds() -> None:
    assert parse_ids([3, 1, 3], "tasks") == [3, 1]
    for bad in ([], None, "1", [0], [True], [1.0], ["1"], [2**31], list(range(1, MAX_BULK + 2))):
        with pytest.raises(ValidationError):
            parse_ids(bad, "tasks")
    assert parse_running(None) is Running.FINISH
    assert parse_running("stop") is Running.STOP
    with pytest.raises(ValidationError, match="`running` must be `finish` or `stop`"):
        parse_running("kill")


def test_bulk_of_too_many_is_refused_whole(world: World) -> None:
    job = submit(world, end=1)
    with pytest.raises(ValidationError):
        world.controls.tasks(WRANGLER, TaskAction.SKIP, job.id, list(range(1, MAX_BULK + 2)))
    with pytest.raises(ValidationError):
        world.controls.jobs(WRANGLER, JobAction.CANCEL, [])
    assert world.jobs.get(ADMIN, job.id).job.state is None


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_stops_running_tasks_and_keeps_the_job_listed(world: World) -> None:
    job = submit(world, end=3)
    first, second, third = tasks(world, job)
    done(world, job, first)
    agent = running(world, job, second)
    outcome = world.controls.job(WRANGLER, JobAction.CANCEL, job.id)
    assert outcome.job is not None
    view = outcome.job
    assert view.job.state is WorkState.CANCELED
    assert view.job.reason == "canceled by wendy"
    assert view.job.time_finished == world.clock.now()
    assert view.counts == {TaskStatus.DONE: 1, TaskStatus.CANCELED: 2}
    assert ("stop_tasks", (agent.id, "10.0.0.9", 50001, (second.id,))) in world.queue.calls
    assert [v.job.id for v in world.jobs.query(ADMIN)] == [job.id]
    # Nothing of it is offered to agents any more, and no late report revives it.
    with world.uow(read_only=True) as uow:
        assert uow.scheduling.candidate_jobs() == []
    with pytest.raises(Conflict):
        world.jobs.report(ADMIN, job.id, second.id, TaskReport(state="done"), agent.id, 1)
    event = world.events.query(ADMIN, EventQuery())[0]
    assert (event.action, event.before, event.after) == (
        "job.cancel",
        {"state": "running"},
        {"state": "canceled", "canceled": 2, "stopped": [second.id]},
    )
    # Retrying or skipping one of its tasks must wait for a requeue; a second cancel conflicts.
    for action in (TaskAction.RETRY, TaskAction.SKIP):
        with pytest.raises(Conflict, match="is canceled: requeue it"):
            world.controls.task(WRANGLER, action, job.id, third.id)
    with pytest.raises(Conflict, match="is canceled: it cannot be canceled"):
        world.controls.job(WRANGLER, JobAction.CANCEL, job.id)
    with pytest.raises(Conflict, match="is canceled: it cannot be paused"):
        world.controls.job(WRANGLER, JobAction.PAUSE, job.id)


def test_requeue_brings_a_canceled_job_back(world: World) -> None:
    job = submit(world, end=2)
    first, _ = tasks(world, job)
    done(world, job, first)
    world.controls.job(WRANGLER, JobAction.CANCEL, job.id)
    world.queue.calls.clear()
    outcome = world.controls.job(WRANGLER, JobAction.REQUEUE, job.id)
    assert outcome.job is not None and len(outcome.requeued) == 1
    assert outcome.job.job.state is None and outcome.job.job.reason is None
    assert outcome.job.counts == {TaskStatus.DONE: 1, TaskStatus.QUEUED: 1}
    assert world.queue.names() == ["assign_tasks"]
    with world.uow(read_only=True) as uow:
        assert [p.id for p in uow.scheduling.candidate_jobs()] == [job.id]


@pytest.mark.parametrize("finish", [done, failed])
def test_a_finished_job_cannot_be_canceled(world: World, finish: Any) -> None:
    job = submit(world, end=1, requeue=0)
    (task,) = tasks(world, job)
    finish(world, job, task)
    before = state_of(world)
    with pytest.raises(Conflict, match="it cannot be canceled"):
        world.controls.job(WRANGLER, JobAction.CANCEL, job.id)
    assert state_of(world) == before


# -- pause and resume -----------------------------------------------------------------------


def test_pause_finish_lets_running_tasks_run_on(world: World) -> None:
    job = submit(world, end=2)
    first, _ = tasks(world, job)
    running(world, job, first)
    view = world.controls.job(WRANGLER, JobAction.PAUSE, job.id).job
    assert view is not None and view.job.state is WorkState.PAUSED
    assert world.get_task(first.id).state is WorkState.RUNNING
    assert world.queue.calls == []
    with pytest.raises(Conflict, match="is paused already"):
        world.controls.job(WRANGLER, JobAction.PAUSE, job.id)
    # Stopping its running frames afterwards is still possible.
    view = world.controls.job(WRANGLER, JobAction.PAUSE, job.id, Running.STOP).job
    assert view is not None and view.counts == {TaskStatus.QUEUED: 2}


def test_pause_stop_requeues_running_tasks_without_a_failure(world: World) -> None:
    job = submit(world, end=2)
    first, _ = tasks(world, job)
    agent = running(world, job, first)
    view = world.controls.job(WRANGLER, JobAction.PAUSE, job.id, Running.STOP).job
    assert view is not None and view.job.state is WorkState.PAUSED
    assert view.counts == {TaskStatus.QUEUED: 2}
    task = world.get_task(first.id)
    assert (task.failures, task.agent_id, task.attempts) == (0, None, 1)
    assert world.queue.calls[0] == ("stop_tasks", (agent.id, "10.0.0.9", 50001, (first.id,)))
    with world.uow(read_only=True) as uow:
        assert uow.scheduling.candidate_jobs() == []
        assert uow.blocks.of_job(job.id) == []
        assert uow.tasks.failures_of(first.id) == []
    event = world.events.query(ADMIN, EventQuery())[0]
    assert event.after == {"state": "paused", "running": "stop", "stopped": [first.id]}
    # Resumed, it runs again.
    world.queue.calls.clear()
    resumed = world.controls.job(WRANGLER, JobAction.RESUME, job.id).job
    assert resumed is not None and resumed.job.state is None
    assert world.queue.names() == ["assign_tasks"]
    with pytest.raises(Conflict, match="is queued, not paused"):
        world.controls.job(WRANGLER, JobAction.RESUME, job.id)


def test_resume_a_job_whose_frames_still_run(world: World) -> None:
    job = submit(world, end=2)
    first, _ = tasks(world, job)
    running(world, job, first)
    world.controls.job(WRANGLER, JobAction.PAUSE, job.id)
    view = world.controls.job(WRANGLER, JobAction.RESUME, job.id).job
    assert view is not None and view.job.state is WorkState.RUNNING


# -- the job-state rule with canceled tasks -------------------------------------------------

_STATUSES = st.dictionaries(st.sampled_from(list(TaskStatus)), st.integers(1, 5))
_CURRENT = st.sampled_from([None, *WorkState])


@given(_STATUSES, _CURRENT)
def test_job_state_with_canceled_tasks(counts: dict[TaskStatus, int], current: Any) -> None:
    state = job_state(counts, current)
    active = {TaskStatus.QUEUED, TaskStatus.ASSIGNED, TaskStatus.RUNNING, TaskStatus.PAUSED}
    if not counts:
        assert state is current
    elif set(counts) == {TaskStatus.DONE}:
        assert state is WorkState.DONE
    elif not active & set(counts):
        # Finished: canceled wins over failed; never done unless every task is.
        expected = WorkState.CANCELED if TaskStatus.CANCELED in counts else WorkState.FAILED
        assert state is expected
    else:
        assert state not in (WorkState.DONE, WorkState.FAILED, WorkState.CANCELED)


# -- any sequence of controls and agent reports keeps the rules -----------------------------

_STEP = st.one_of(
    st.tuples(st.sampled_from(list(TaskAction)), st.integers(0, 3)),
    st.tuples(st.sampled_from(list(JobAction)), st.sampled_from(list(Running))),
    st.tuples(st.sampled_from(["assign", "run", "done", "fail"]), st.integers(0, 3)),
)


@settings(deadline=None)  # deep copies of the fake store: timings vary on a busy machine
@given(st.lists(_STEP, max_size=25))
def test_any_sequence_of_controls_keeps_the_rules(steps: list[tuple[Any, Any]]) -> None:
    world = World()
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
    job = submit(world, end=4, requeue=1)
    ids = [t.id for t in tasks(world, job)]
    agents = [world.announce(hostname=f"n{i}")[0].id for i in range(4)]
    for kind, arg in steps:
        before = state_of(world)
        try:
            if isinstance(kind, TaskAction):
                world.controls.task(WRANGLER, kind, job.id, ids[arg])
            elif isinstance(kind, JobAction):
                world.controls.job(WRANGLER, kind, job.id, arg)
            else:
                task = world.get_task(ids[arg])
                if kind == "assign":
                    world.registry.assign_task(ADMIN, agents[arg], task.id)
                else:
                    state = {"run": "running", "done": "done", "fail": "failed"}[kind]
                    world.jobs.report(
                        ADMIN, job.id, task.id, TaskReport(state=state), task.agent_id
                    )
        except (Conflict, NotFound):
            assert state_of(world) == before, f"a refused {kind} changed something"
        view = world.jobs.get(ADMIN, job.id)
        counts, stored = view.counts, view.job.state
        every = tasks(world, job)
        # The job's state is the rule's, given whether it is paused.
        paused = WorkState.PAUSED if stored is WorkState.PAUSED else None
        if stored is not WorkState.CANCELED or any(not t.is_finished for t in every):
            assert stored is job_state(counts, paused)
        if stored is WorkState.CANCELED:
            assert not any(t.status in _ACTIVE for t in every)
        for task in every:
            assert not task.skipped or task.state is WorkState.DONE
            assert task.state is not WorkState.CANCELED or task.agent_id is None


_ACTIVE = {TaskStatus.QUEUED, TaskStatus.ASSIGNED, TaskStatus.RUNNING}
