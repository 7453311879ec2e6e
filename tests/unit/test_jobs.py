"""JobService on fakes: submission, changes, deletion and the agents' reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

import pytest

from farm_domain.enums import WorkState
from farm_domain.errors import Conflict, NotFound, Unavailable, ValidationError, WrittenAway
from farm_domain.events import EventQuery
from farm_domain.files import TaskLogs
from farm_domain.history import HistoryPage
from farm_domain.job_cleanup import ABANDONED_AFTER
from farm_domain.job_requests import JobChanges, JobSpec, TaskReport
from farm_domain.jobs import JobService
from farm_domain.jobtypes import JobTypeSpec
from farm_domain.ports import UnitOfWork, UnitOfWorkFactory
from farm_domain.work import Job, Task, TaskStatus
from tests.support.builders import World
from tests.support.fakes.collaborators import MemoryFileStore
from tests.support.identities import ADMIN


@pytest.fixture
def world() -> World:
    world = World()
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render", max_batch=2))
    return world


def submit(world: World, **fields: object):
    spec: dict[str, object] = {"title": "shot", "jobtype": "render", "start": 1, "end": 10}
    spec.update(fields)
    return world.jobs.submit(ADMIN, JobSpec(**spec))  # type: ignore[arg-type]  # any JobSpec fields


def test_submission_makes_one_task_per_frame_and_asks_for_assignment(world: World) -> None:
    view = submit(world, by=3, priority=7)
    assert view.counts == {TaskStatus.QUEUED: 4}
    tasks = world.jobs.tasks(ADMIN, view.job.id)
    assert [t.frame for t in tasks] == [1.0, 4.0, 7.0, 10.0]
    assert {t.priority for t in tasks} == {7}
    assert view.job.jobtype == "render" and view.job.jobtype_version == 1
    assert world.queue.names() == ["assign_tasks"]


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"jobtype": None}, ValidationError, "No jobtype specified"),
        ({"jobtype": "nope"}, NotFound, "JobType nope not found"),
        ({"jobtype_version": 9}, NotFound, "JobType render version 9 not found"),
        ({"end": 0}, ValidationError, "`end` must be larger than or equal to start"),
        ({"priority": 1001}, ValidationError, "`priority` must be between -1000 and 1000"),
        ({"requeue": -2}, ValidationError, "`requeue` must be between -1"),
        ({"minimum_agents": 3, "maximum_agents": 2}, ValidationError, "must not exceed"),
        ({"parents": [999]}, ValidationError, "parent job(s) not found: 999"),
        ({"title": ""}, ValidationError, "`title` must be 1 to 255"),
    ],
)
def test_bad_submissions_change_nothing(world: World, fields, error, message) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        submit(world, **fields)
    assert world.jobs.query(ADMIN) == []
    assert world.queue.calls == []


def test_get_by_id_or_newest_title(world: World) -> None:
    older = submit(world, title="same").job
    newer = submit(world, title="same").job
    assert world.jobs.get(ADMIN, str(older.id)).job.id == older.id
    assert world.jobs.get(ADMIN, "same").job.id == newer.id
    with pytest.raises(NotFound, match="Job other not found"):
        world.jobs.get(ADMIN, "other")


def test_pause_and_resume(world: World) -> None:
    job = submit(world).job
    world.queue.calls.clear()
    paused = world.jobs.update(ADMIN, job.id, JobChanges(state="paused", priority=50))
    assert (paused.job.state, paused.job.priority) == (WorkState.PAUSED, 50)
    resumed = world.jobs.update(ADMIN, job.id, JobChanges(state="queued"))
    assert resumed.job.state is None
    assert world.queue.names() == ["assign_tasks", "assign_tasks"]
    with pytest.raises(ValidationError, match="`done` is not a state a job can be set to"):
        world.jobs.update(ADMIN, job.id, JobChanges(state="done"))


def test_a_finished_job_cannot_be_paused(world: World) -> None:
    job = submit(world, end=1).job
    agent, _ = world.announce()
    (task,) = world.jobs.tasks(ADMIN, job.id)
    world.registry.assign_task(ADMIN, agent.id, task.id)
    world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done"))
    with pytest.raises(Conflict, match="is done"):
        world.jobs.update(ADMIN, job.id, JobChanges(state="paused"))


def test_delete_asks_agents_to_stop_their_tasks(world: World) -> None:
    job = submit(world, end=3).job
    agent, _ = world.announce(remote_ip="10.0.0.9", port=50001)
    first, second, _ = world.jobs.tasks(ADMIN, job.id)
    world.registry.assign_task(ADMIN, agent.id, first.id)
    world.registry.assign_task(ADMIN, agent.id, second.id)
    world.queue.calls.clear()
    assert world.jobs.delete(ADMIN, job.id)
    assert (
        "stop_tasks",
        (agent.id, "10.0.0.9", 50001, (first.id, second.id)),
    ) in world.queue.calls
    assert not world.jobs.delete(ADMIN, job.id)
    assert world.registry.tasks(ADMIN, agent.id) == []


def test_deleting_a_job_deletes_its_tasks_files_and_only_theirs(world: World) -> None:
    logs = TaskLogs(world.uow, world.files, world.clock, 1000, policy=world.policy)
    deleted, kept = submit(world, end=2).job, submit(world, end=1).job
    for job in (deleted, kept):
        for task in world.jobs.tasks(ADMIN, job.id):
            logs.register(ADMIN, job.id, task.id, 0, "render", None)
            logs.upload(ADMIN, job.id, task.id, 0, "render", [b"text"])
    kept_files = {
        k
        for k in world.files.files
        if k.startswith(f"logs/{world.jobs.tasks(ADMIN, kept.id)[0].id}/")
    }
    assert len(world.files.files) == 3 and len(kept_files) == 1

    assert world.jobs.delete(ADMIN, deleted.id)

    assert set(world.files.files) == kept_files


def test_a_log_upload_that_ends_after_its_job_was_deleted_keeps_nothing(world: World) -> None:
    logs = TaskLogs(world.uow, world.files, world.clock, 1000, policy=world.policy)
    job = submit(world, end=1).job
    task = world.jobs.tasks(ADMIN, job.id)[0]
    logs.register(ADMIN, job.id, task.id, 0, "render", None)

    def text_while_the_job_is_deleted() -> Iterator[bytes]:
        yield b"first "
        assert world.jobs.delete(ADMIN, job.id)
        yield b"last"

    with pytest.raises(NotFound):
        logs.upload(ADMIN, job.id, task.id, 0, "render", text_while_the_job_is_deleted())
    assert world.files.files == {}


class FailingOn:
    """A unit of work factory whose ``nth`` unit fails to start (the database went away)."""

    def __init__(self, inner: UnitOfWorkFactory, nth: int) -> None:
        self._inner = inner
        self._nth = nth
        self.started = 0

    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        self.started += 1
        if self.started == self._nth:
            raise Unavailable("the database is unavailable; retry shortly")
        return self._inner(read_only=read_only)


def chunked(world: World, uow: UnitOfWorkFactory | None = None) -> JobService:
    """The world's job service, storing tasks 3 at a time."""
    return JobService(
        uow or world.uow,
        world.queue,
        world.clock,
        3,
        policy=world.policy,
        files=world.files,
        task_chunk=3,
    )


def test_a_job_of_many_chunks_is_stored_whole_with_one_event(world: World) -> None:
    view = chunked(world).submit(ADMIN, JobSpec(title="big", jobtype="render", start=1, end=10))
    assert view.counts == {TaskStatus.QUEUED: 10}
    assert world.jobs.get(ADMIN, view.job.id).counts == {TaskStatus.QUEUED: 10}
    assert [t.frame for t in world.jobs.tasks(ADMIN, view.job.id)] == [
        float(f) for f in range(1, 11)
    ]
    submitted = [e for e in world.events.query(ADMIN, EventQuery()) if e.action == "job.submit"]
    assert [e.after["tasks"] for e in submitted if e.after] == [10]
    assert world.queue.names() == ["assign_tasks"]


def test_each_task_of_a_job_of_many_chunks_records_its_submission_once(world: World) -> None:
    view = chunked(world).submit(ADMIN, JobSpec(title="big", jobtype="render", start=1, end=10))
    with world.uow(read_only=True) as uow:
        firsts = [
            [(c.before, c.after, c.reason, c.at) for c in uow.history.of_task(t.id, HistoryPage())]
            for t in uow.tasks.of_job(view.job.id)
        ]
    assert firsts == [[(None, "queued", "submitted", world.clock.now())]] * 10


@pytest.mark.parametrize("failing", [2, 3, 5])  # the first chunk, the second, making it ready
def test_a_submission_failing_midway_leaves_no_job(world: World, failing: int) -> None:
    jobs = chunked(world, FailingOn(world.uow, failing))
    with pytest.raises(Unavailable):
        jobs.submit(ADMIN, JobSpec(title="big", jobtype="render", start=1, end=9))
    assert world.jobs.query(ADMIN) == []
    assert world.uow.store.data.jobs == {} and world.uow.store.data.tasks == {}
    assert "job.submit" not in {e.action for e in world.events.query(ADMIN, EventQuery())}
    assert world.queue.calls == []


def test_a_job_its_master_left_half_stored_is_discarded_once_abandoned(world: World) -> None:
    with world.uow() as uow:
        version = uow.jobtypes.latest("render")
        assert version is not None
        job = uow.jobs.add(
            Job(id=0, title="big", jobtype_version_id=version.id, time_submitted=world.clock.now()),
            ready=False,
        )
        uow.tasks.add_many([Task(id=0, job_id=job.id, frame=1.0)])
        uow.commit()
    world.clock.advance(ABANDONED_AFTER.total_seconds() - 1)
    world.dispatcher.watch_agents()  # maybe still being stored
    assert job.id in world.uow.store.data.jobs
    world.clock.advance(2)
    world.dispatcher.watch_agents()
    assert world.uow.store.data.jobs == {} and world.uow.store.data.tasks == {}


class FolderDeletedMidway(MemoryFileStore):
    """A store whose task folder is deleted while a file is written into it."""

    def write(self, key: str, chunks: Iterable[bytes], limit: int) -> int:
        self.delete(key.rsplit("/", 2)[0])
        raise WrittenAway(f"{key} was deleted while it was written")


def test_a_log_upload_whose_folder_is_deleted_midway_is_not_found(world: World) -> None:
    files = FolderDeletedMidway()
    logs = TaskLogs(world.uow, files, world.clock, 1000, policy=world.policy)
    job = submit(world, end=1).job
    task = world.jobs.tasks(ADMIN, job.id)[0]
    logs.register(ADMIN, job.id, task.id, 0, "render", None)
    with pytest.raises(NotFound, match="Log render not found"):
        logs.upload(ADMIN, job.id, task.id, 0, "render", [b"text"])
    assert files.files == {}


def test_a_deletion_is_a_chunk_per_transaction_and_the_sweep_finishes_one_left_midway(
    world: World,
) -> None:
    logs = TaskLogs(world.uow, world.files, world.clock, 1000, policy=world.policy)
    job = submit(world, end=10).job
    tasks = world.jobs.tasks(ADMIN, job.id)
    for task in tasks:
        logs.register(ADMIN, job.id, task.id, 0, "render", None)
        logs.upload(ADMIN, job.id, task.id, 0, "render", [b"text"])
    # Units: hiding the job, its first chunk of 3 tasks, then the database goes away.
    assert chunked(world, FailingOn(world.uow, 3)).delete(ADMIN, job.id)

    data = world.uow.store.data
    assert sorted(data.tasks) == [task.id for task in tasks[3:]]
    assert {key.split("/")[1] for key in world.files.files} == {str(t.id) for t in tasks[3:]}
    assert world.jobs.query(ADMIN) == []
    with pytest.raises(NotFound):
        world.jobs.get(ADMIN, job.id)
    with pytest.raises(NotFound):
        world.jobs.task(ADMIN, job.id, tasks[5].id)
    with pytest.raises(NotFound):
        logs.download(ADMIN, job.id, tasks[5].id, 0, "render")
    with pytest.raises(NotFound):
        logs.of_attempt(ADMIN, job.id, tasks[5].id, 0)
    assert not world.jobs.delete(ADMIN, job.id)
    deleted = [e for e in world.events.query(ADMIN, EventQuery()) if e.action == "job.delete"]
    assert len(deleted) == 1

    world.dispatcher.watch_agents()
    data = world.uow.store.data
    assert data.jobs == {} and data.tasks == {} and data.logs == {}
    assert world.files.files == {}


def test_a_job_being_deleted_takes_no_report_and_frees_its_agents_first(world: World) -> None:
    job = submit(world, end=2).job
    agent, _ = world.announce(remote_ip="10.0.0.9", port=50001)
    first, second = world.jobs.tasks(ADMIN, job.id)
    world.registry.assign_task(ADMIN, agent.id, first.id)
    # The database goes away after the job is hidden: its tasks are still stored.
    assert chunked(world, FailingOn(world.uow, 2)).delete(ADMIN, job.id)
    assert set(world.uow.store.data.tasks) == {first.id, second.id}
    assert world.registry.tasks(ADMIN, agent.id) == []
    assert ("stop_tasks", (agent.id, "10.0.0.9", 50001, (first.id,))) in world.queue.calls
    with pytest.raises(NotFound):
        world.jobs.report(ADMIN, job.id, first.id, TaskReport(state="done"), agent.id)
    with pytest.raises(NotFound):
        world.registry.assign_task(ADMIN, agent.id, second.id)


def assigned(world: World, requeue: int = 3):
    job = submit(world, end=2, requeue=requeue).job
    agent, _ = world.announce()
    task = world.jobs.tasks(ADMIN, job.id)[0]
    world.registry.assign_task(ADMIN, agent.id, task.id)
    world.queue.calls.clear()
    return job, agent, task


def test_running_then_done(world: World) -> None:
    job, agent, task = assigned(world)
    running = world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="running", progress=0.25))
    assert (running.state, running.time_started, running.progress) == (
        WorkState.RUNNING,
        world.clock.now(),
        0.25,
    )
    assert world.jobs.get(ADMIN, job.id).job.state is WorkState.RUNNING
    assert world.jobs.get(ADMIN, job.id).job.time_started == world.clock.now()
    world.clock.advance(10)
    done = world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done", last_error="ignored"))
    assert (done.state, done.time_finished, done.last_error, done.progress) == (
        WorkState.DONE,
        world.clock.now(),
        None,
        1.0,
    )
    # The agent has nothing left to do: the queue is asked to give it more.
    assert world.queue.calls == [("assign_tasks_to_agent", (agent.id,))]


def test_a_late_running_never_reopens_a_done_task(world: World) -> None:
    job, agent, task = assigned(world)
    done = world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done"))
    late = world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="running"), agent.id)
    assert late == done
    assert world.registry.tasks(ADMIN, agent.id)[0][0].state is WorkState.DONE


@pytest.mark.parametrize(
    ("requeue", "failures_before", "requeued"),
    [(3, 0, True), (0, 0, False), (1, 1, False), (-1, 50, True)],
)
def test_failed_follows_the_requeue_policy(
    world: World,
    requeue,
    failures_before,
    requeued,
) -> None:
    job, agent, task = assigned(world, requeue=requeue)
    with world.uow() as uow:
        import attrs

        stored = uow.tasks.get(task.id)
        assert stored is not None
        uow.tasks.save(
            attrs.evolve(stored, failures=failures_before),
            stored,
            reason="test",
            at=world.clock.now(),
        )
        uow.commit()
    result = world.jobs.report(
        ADMIN, job.id, task.id, TaskReport(state="failed", last_error="exit 1")
    )
    assert result.failures == failures_before + 1
    assert result.last_error == "exit 1"
    if requeued:
        assert (result.state, result.agent_id) == (None, None)
        assert world.queue.names() == ["assign_tasks"]
    else:
        assert (result.state, result.agent_id) == (WorkState.FAILED, agent.id)


def test_queued_with_null_agent_gives_the_task_back(world: World) -> None:
    job, _agent, task = assigned(world)
    world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="running"))
    back = world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="queued", give_back=True))
    assert (back.state, back.agent_id, back.failures) == (None, None, 0)
    again = world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="queued", give_back=True))
    assert again == back


def test_reports_from_an_agent_that_does_not_own_the_task_are_409(world: World) -> None:
    job, agent, task = assigned(world)
    other, _ = world.announce(hostname="other")
    with pytest.raises(Conflict, match="not assigned to agent"):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="done"), other.id)
    world.registry.assign_task(ADMIN, other.id, task.id)
    with pytest.raises(Conflict):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="running"), agent.id)
    world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="queued", give_back=True), other.id)
    with pytest.raises(Conflict, match="not assigned to any agent"):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="running"))
    assert world.jobs.task(ADMIN, job.id, task.id).state is None


def test_the_task_must_belong_to_the_job(world: World) -> None:
    job, _, task = assigned(world)
    other = submit(world, title="other").job
    with pytest.raises(NotFound, match="Task not found"):
        world.jobs.report(ADMIN, other.id, task.id, TaskReport(state="running"))
    with pytest.raises(NotFound, match="Task not found"):
        world.jobs.task(ADMIN, other.id, task.id)
    with pytest.raises(ValidationError, match="`paused` is not a valid state"):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="paused"))
    with pytest.raises(ValidationError, match="`progress` must be between 0 and 1"):
        world.jobs.report(ADMIN, job.id, task.id, TaskReport(progress=1.5))
    assert uuid.UUID(int=0) != task.agent_id
