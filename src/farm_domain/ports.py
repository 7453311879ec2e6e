"""The ports: what the domain needs from the world, as small Protocols named by role."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

import attrs

from farm_domain.agents import Agent, AgentOverview, AgentQuery, AgentSummary, SoftReport
from farm_domain.answers import AssignAnswer, PollAnswer, StopAnswer, UpdateAnswer
from farm_domain.credentials import Session, Token, User
from farm_domain.enums import WorkState
from farm_domain.events import Event, EventQuery
from farm_domain.history import HistoryPage, StateChange
from farm_domain.scheduling import (
    AgentContact,
    AgentProfile,
    JobAgentBlock,
    JobProfile,
    JobQueue,
)
from farm_domain.software import Software, SoftwareVersion
from farm_domain.work import (
    Job,
    JobQuery,
    JobSummary,
    JobTypeVersion,
    Task,
    TaskFailure,
    TaskLog,
    TaskStatus,
)


class AgentRepository(Protocol):
    def get(self, agent_id: uuid.UUID, *, for_update: bool = False) -> Agent | None: ...

    def get_with_active(
        self, agent_id: uuid.UUID, *, for_update: bool = True
    ) -> tuple[Agent, dict[int, int]] | None:
        """The agent with the attempts of its unfinished tasks (task id -> attempt), read
        together: what a heartbeat needs to see that nothing changed. ``for_update``: the
        agent stays locked until the transaction ends."""

    def get_as_heard(
        self, agent_id: uuid.UUID, now: datetime
    ) -> tuple[Agent, dict[int, int], bool] | None:
        """``get_with_active`` without a lock, and whether the agent holds a credential of its
        own usable at ``now`` (``identities.is_enrolled``), read together: all that a heartbeat
        moving only soft state reads."""

    def add(self, agent: Agent) -> None:
        """Store a new agent with its MAC addresses, GPUs and software, and record its
        registration (``history.agent_created``). Raises AlreadyExists (its id is stored,
        perhaps by a concurrent announce)."""

    def save(self, agent: Agent, previous: Agent, *, reason: str, at: datetime) -> None:
        """Write an existing agent's scalar fields (not its sets) that differ from ``previous``
        (the agent as read in this unit of work); a change of its history state
        (``history.agent_state``) records a row with ``reason`` and ``at``."""

    def replace_mac_addresses(self, agent_id: uuid.UUID, macs: frozenset[str]) -> None: ...

    def replace_gpus(self, agent_id: uuid.UUID, names: frozenset[str]) -> None:
        """Link the agent to these GPUs, adding names the shared catalogue lacks."""

    def attach_software(self, agent_id: uuid.UUID, version_ids: Iterable[int]) -> None: ...

    def tags(self, agent_id: uuid.UUID) -> frozenset[str]: ...

    def replace_tags(self, agent_id: uuid.UUID, tags: frozenset[str]) -> None: ...

    def detach_software(self, agent_id: uuid.UUID, version_id: int) -> None: ...

    def delete(self, agent_id: uuid.UUID) -> bool: ...

    def query(self, query: AgentQuery) -> list[AgentSummary]:
        """Agents matching every filter, ordered by hostname then id."""

    def overview(self, query: AgentQuery) -> list[AgentOverview]:
        """Like ``query``, with what a monitor shows of each agent (a fixed number of queries
        whatever the page size)."""

    def hostnames(self, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The hostnames of those of these agents that exist."""

    def summaries(self, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AgentSummary]:
        """Hostname, port and address of those of these agents that exist."""

    def record_heard(self, reports: Sequence[SoftReport]) -> int:
        """Write these soft reports (at most one per agent), each only where the agent exists
        and was not heard from later; returns how many agents changed."""


class TaskRepository(Protocol):
    def get(self, task_id: int, *, for_update: bool = False) -> Task | None:
        """The task, unless its job is hidden (being stored or deleted)."""

    def add(self, task: Task) -> Task:
        """Store a new task and record its creation (``history.task_created``); returns it with
        its id."""

    def save(self, task: Task, previous: Task, *, reason: str, at: datetime) -> None:
        """Write the task; a change of its history state from ``previous`` (the task as read in
        this unit of work; ``history.task_state``) records a row with ``reason`` and ``at``."""

    def active_of_agent(self, agent_id: uuid.UUID, *, for_update: bool = False) -> list[Task]:
        """The agent's tasks that are neither done nor failed."""

    def of_agent(self, agent_id: uuid.UUID) -> list[tuple[Task, JobSummary]]:
        """The agent's tasks with their jobs (hidden jobs' tasks left out)."""

    def status_counts(self, job_id: int) -> dict[TaskStatus, int]: ...

    def status_counts_of(self, job_ids: Iterable[int]) -> dict[int, dict[TaskStatus, int]]:
        """Per-status counts for each of these jobs (jobs without tasks are absent)."""

    def busy_agents_of(self, job_ids: Iterable[int]) -> dict[int, int]:
        """How many agents hold unfinished tasks of each of these jobs."""

    def add_many(self, tasks: Sequence[Task]) -> None:
        """Store new tasks in bulk (their ids are assigned by storage) and record their creation
        (``history.task_created``) in one statement, not a row at a time."""

    def release_of_job(self, job_id: int, *, reason: str, at: datetime) -> list[Task]:
        """Lock the job's unfinished tasks that agents hold (by id) and take them from their
        agents, counting no failure; returns them as they were."""

    def cancel_unfinished(self, job_id: int, reason: str, now: datetime, *, why: str) -> int:
        """Cancel every unfinished task of the job that no agent holds, in one statement
        (``reason``, finished ``now``, back-off cleared), each change recorded with ``why``;
        returns how many."""

    def of_job(
        self,
        job_id: int,
        *,
        limit: int | None = None,
        offset: int = 0,
        status: TaskStatus | None = None,
    ) -> list[Task]:
        """The job's tasks ordered by frame (of that ``status`` when given); ``limit`` of them
        from ``offset`` when given."""

    def record_failure(self, failure: TaskFailure) -> TaskFailure:
        """Store one failed attempt; returns it with its id."""

    def failures_of(self, task_id: int, *, limit: int = 100) -> list[TaskFailure]:
        """The task's latest ``limit`` failed attempts, oldest of them first."""

    def lock_of_job(self, job_id: int) -> None:
        """Lock the job's tasks for this transaction. Tasks are locked before their job (an
        agent's report or heartbeat locks a task, then updates its job's state): a change of
        the whole job (its deletion) locks its tasks first, or the two wait on each other."""


class JobRepository(Protocol):
    """Jobs. A job stored not ``ready`` (its tasks are still being stored) is seen by no query
    here nor by the scheduler until ``make_ready``, and a job ``hide``-den for its deletion
    never again: only the methods that name them see them. A hidden job's state, times and
    settings are never changed."""

    def get(self, job_id: int, *, for_update: bool = False) -> Job | None:
        """The job with its tags, parents, requirements and job type name and version."""

    def add(self, job: Job, *, ready: bool = True) -> Job:
        """Store a new job with its tags, parents and requirements; returns it with its id."""

    def lock_unready(self, job_id: int) -> bool:
        """Lock the job until the transaction ends if it is stored and not ready yet; returns
        whether it is."""

    def make_ready(self, job_id: int) -> bool:
        """Make a job that is not ready yet ready (and queued); returns whether it was one."""

    def discard_unready(self, job_id: int, tasks: int) -> bool:
        """Delete up to ``tasks`` of the tasks of a job that is not ready, then the job once it
        has none; returns whether no such job is left (a ready job is never touched)."""

    def hide(self, job_id: int) -> bool:
        """Hide a ready job for its deletion (state ``deleting``): from now on no query here,
        nor the scheduler, nor ``TaskRepository.get`` sees it or its tasks; returns whether it
        was a ready job."""

    def purge(self, job_id: int, tasks: int) -> tuple[list[int], bool]:
        """Delete up to ``tasks`` of the tasks of a hidden job being deleted, then the job once
        it has none; returns the ids of the tasks deleted and whether no such job is left (any
        other job is never touched)."""

    def deleting(self) -> list[int]:
        """The hidden jobs whose deletion has begun."""

    def unready_since(self, before: datetime) -> list[int]:
        """The jobs still not ready that were submitted before ``before``."""

    def save(self, job: Job) -> None:
        """Write the job's scalar fields and its tags."""

    def set_state(self, job_id: int, state: WorkState | None) -> None: ...

    def set_times(
        self, job_id: int, started: datetime | None, finished: datetime | None
    ) -> None: ...

    def query(self, query: JobQuery) -> list[Job]:
        """Jobs matching the query, newest first."""

    def find_by_title(self, title: str) -> Job | None:
        """The newest job with this title."""

    def existing_ids(self, job_ids: Iterable[int]) -> set[int]: ...

    def titles(self, job_ids: Iterable[int]) -> dict[int, str]:
        """The titles of those of these jobs that exist (and are not hidden)."""

    def children(self, job_id: int) -> list[int]:
        """The ids of the jobs that wait for this one (name it a parent), ascending."""

    def delete(self, job_id: int) -> None: ...


class JobTypeRepository(Protocol):
    def add(
        self, name: str, version: int = 1, spec: JobTypeVersion | None = None
    ) -> JobTypeVersion:
        """Store version ``version`` of job type ``name``, creating the job type when it is new;
        the other fields (and requirements) come from ``spec`` when given. Raises AlreadyExists
        (that version is stored, perhaps by a concurrent request)."""

    def latest(self, name: str) -> JobTypeVersion | None:
        """The newest version of the job type named ``name``."""

    def get_version(self, name: str, version: int) -> JobTypeVersion | None: ...

    def name_of(self, jobtype_id: int) -> str | None: ...

    def list_latest(self) -> list[JobTypeVersion]:
        """The newest version of every job type, ordered by name."""

    def versions(self, name: str) -> list[JobTypeVersion]: ...

    def in_use(self, name: str) -> bool:
        """Whether any job runs a version of this job type."""

    def delete(self, name: str) -> None: ...


class SoftwareRepository(Protocol):
    def get_by_name(self, name: str) -> Software | None:
        """The software with its versions ordered by rank."""

    def list_all(self) -> list[Software]:
        """Every software, ordered by name, each with its versions ordered by rank."""

    def add(self, name: str, versions: Sequence[tuple[str, int]]) -> Software:
        """Raises AlreadyExists (the name is taken, perhaps by a concurrent request)."""

    def rename(self, software_id: int, name: str) -> None: ...

    def delete(self, software_id: int) -> None: ...

    def add_version(self, software_id: int, version: str, rank: int) -> SoftwareVersion:
        """Raises AlreadyExists (the version is stored, perhaps by a concurrent request)."""

    def set_rank(self, version_id: int, rank: int) -> None: ...

    def delete_version(self, version_id: int) -> None: ...


class TaskLogRepository(Protocol):
    def add(self, log: TaskLog) -> TaskLog:
        """Raises AlreadyExists (the identifier is registered for the attempt already,
        perhaps by a concurrent request)."""

    def get(self, task_id: int, attempt: int, identifier: str) -> TaskLog | None: ...

    def of_attempt(self, task_id: int, attempt: int) -> list[TaskLog]:
        """The attempt's logs in the order they were registered."""

    def save(self, log: TaskLog) -> None:
        """Write the log's size and state."""


class BlocklistRepository(Protocol):
    def record_failure(self, job_id: int, agent_id: uuid.UUID, now: datetime) -> None: ...

    def record_rejection(
        self,
        job_id: int,
        agent_id: uuid.UUID,
        fingerprint: str,
        now: datetime,
        refusal: str | None = None,
    ) -> None:
        """Record that the agent, with these resources, refused the job's work (``refusal``:
        what it answered)."""

    def of_agent(self, agent_id: uuid.UUID) -> list[JobAgentBlock]: ...

    def of_agents(self, agent_ids: Sequence[uuid.UUID]) -> list[JobAgentBlock]: ...

    def of_job(self, job_id: int) -> list[JobAgentBlock]: ...

    def clear(self, job_id: int, agent_id: uuid.UUID) -> None: ...

    def clear_job(self, job_id: int) -> int:
        """Forget every agent's failures and refusals of the job; returns how many."""


class SchedulingRepository(Protocol):
    """The queries the scheduler needs, shaped for its rules."""

    def candidate_jobs(self, now: datetime | None = None) -> list[JobProfile]:
        """Jobs that are neither paused nor finished, have queued tasks and whose parents are
        all done, with their busy agents and requirements as ranks. Given ``now``, only jobs
        with a queued task whose back-off (``not_before``) has passed by then."""

    def failed_jobs(self, reason_prefix: str, limit: int) -> list[JobProfile]:
        """Up to ``limit`` failed jobs (the newest) whose reason begins with
        ``reason_prefix``, as profiles."""

    def agent_profile(self, agent_id: uuid.UUID) -> AgentProfile | None: ...

    def job_profile(self, job_id: int) -> JobProfile | None:
        """The job's profile as ``candidate_jobs`` would list it, whatever its state (None:
        no such job, or it is hidden)."""

    def job_queue(self, job_id: int, now: datetime, first: int = 0) -> JobQueue:
        """The job's queued tasks counted: all, those that may be offered at ``now`` (no
        ``not_before`` after it), the earliest ``not_before`` of the others; and the first
        ``first`` of the ready ones by frame (as ``queued_tasks`` reads them, nothing locked)."""

    def retried_on(self, agent_id: uuid.UUID, now: datetime) -> set[int]:
        """The jobs with a queued task, ready at ``now``, whose last failed attempt was on this
        agent (``Task.failed_on``)."""

    def lock_idle_agents(
        self, agent_ids: Sequence[uuid.UUID]
    ) -> list[tuple[AgentContact, AgentProfile]]:
        """Those of the agents that are online, enabled and hold no unfinished task, each
        locked until the transaction ends, with their profiles, in the order given. An agent
        whose row another transaction holds is skipped, not waited for (it is busy being
        heard from or assigned; it gets work on its own)."""

    def idle_agents(self) -> list[uuid.UUID]:
        """Agents that are online, enabled and hold no unfinished task."""

    def contacts(self) -> list[AgentContact]:
        """Every agent, as the liveness sweeps see it."""

    def profiles(self) -> list[tuple[AgentContact, AgentProfile]]:
        """Every agent as the liveness sweeps see it, with its profile, by hostname."""

    def lock_job(self, job_id: int, *, wait: bool = True) -> int | None:
        """Lock the job's row until the transaction ends and count the agents holding its
        unfinished tasks, as committed now. Without ``wait``, a row another transaction holds
        answers None at once."""

    def queued_tasks(self, job_id: int, limit: int, now: datetime | None = None) -> list[Task]:
        """Up to ``limit`` of the job's queued tasks by frame, skipping rows other transactions
        have locked; given ``now``, only those whose back-off has passed by then."""

    def claim(
        self, task_ids: Sequence[int], agent_id: uuid.UUID, *, reason: str, at: datetime
    ) -> list[int]:
        """Give queued tasks to the agent as a new attempt each, only those still queued and
        unowned; returns the ids it gave."""

    def mark_sent(
        self, task_id: int, agent_id: uuid.UUID, attempt: int, now: datetime, *, reason: str
    ) -> bool:
        """Record that the agent accepted this attempt, only if it still owns it."""


class TokenRepository(Protocol):
    """Bearer tokens by name, each stored with its secret's digest (never the secret)."""

    def add(self, token: Token, digest: str) -> None:
        """Raises AlreadyExists (the name is taken, perhaps by a concurrent request)."""

    def get(self, name: str) -> Token | None: ...

    def by_digest(self, digest: str) -> tuple[Token, str] | None:
        """The token whose secret has this digest, with the digest as stored (to compare in
        constant time): one indexed read, as every request makes one."""

    def query(self) -> list[Token]:
        """Every token, revoked and expired ones too, ordered by name."""

    def of_agent(self, agent_id: uuid.UUID) -> list[Token]:
        """The agent's own credentials, revoked ones too."""

    def revoke(self, name: str, when: datetime) -> None: ...

    def delete(self, name: str) -> None: ...


class UserRepository(Protocol):
    """People who log in, each stored with their password's hash."""

    def add(self, user: User, password_hash: str) -> None:
        """Raises AlreadyExists (the name is taken, perhaps by a concurrent request)."""

    def get(self, name: str) -> User | None: ...

    def with_password(self, name: str) -> tuple[User, str] | None:
        """The user and their password's hash."""

    def query(self) -> list[User]:
        """Every user, ordered by name."""

    def set_password(self, name: str, password_hash: str) -> None: ...

    def delete(self, name: str) -> None: ...


class SessionRepository(Protocol):
    """Dashboard sessions, each stored under its secret's digest."""

    def add(self, session: Session, digest: str) -> None:
        """Store a session of an existing user."""

    def by_digest(self, digest: str) -> tuple[Session, str] | None:
        """The session with this digest, and the digest as stored."""

    def delete(self, digest: str) -> None: ...

    def delete_of_user(self, user: str) -> None: ...

    def delete_expired(self, now: datetime) -> None:
        """Forget the sessions that expired at or before ``now``."""


class EventRepository(Protocol):
    """The audit trail: appended to, never changed."""

    def add(self, event: Event) -> Event:
        """Store a new event; returns it with its id."""

    def query(self, query: EventQuery) -> list[Event]:
        """Events matching every filter (``since`` inclusive), newest first (by time, then
        id), at most ``query.limit``."""


class HistoryRepository(Protocol):
    """The changes of state the tasks' and agents' repositories recorded (``farm_domain.history``)."""

    def of_task(self, task_id: int, page: HistoryPage) -> list[StateChange]:
        """The task's changes, newest first: ``page.limit`` of them older than ``page.before``."""

    def of_agent(self, agent_id: uuid.UUID, page: HistoryPage) -> list[StateChange]:
        """The agent's changes, newest first, paged as ``of_task``."""


class FileStore(Protocol):
    """Bytes under slash-separated keys (``logs/...``, ``updates/...``), outside the database."""

    def write(self, key: str, chunks: Iterable[bytes], limit: int) -> int:
        """Store the chunks under ``key`` atomically; returns the size.

        Raises TooLarge (and keeps nothing) when they add up to more than ``limit`` bytes,
        StorageFull (and keeps nothing) when the store would exceed its total budget,
        WrittenAway (and keeps nothing) when a ``delete`` of a key above it ran meanwhile.
        """

    def append(self, key: str, offset: int, data: bytes, limit: int) -> int:
        """Add ``data``, which starts at byte ``offset`` of the file under ``key`` (created
        empty when missing), and return the file's size after. Bytes the file has already
        (a chunk sent again) are not written twice: only those beyond its size are added.

        Raises LogGap (and adds nothing) when ``offset`` is beyond the file's size; TooLarge
        when the file would exceed ``limit`` bytes, StorageFull when the store would exceed its
        total budget, WrittenAway when a ``delete`` of a key above it ran meanwhile (each
        adding nothing).
        """

    def read(self, key: str, offset: int = 0) -> Iterator[bytes] | None:
        """The bytes under ``key`` from byte ``offset`` on, in chunks, or None when there are
        none."""

    def delete(self, key: str) -> None:
        """Forget the bytes under ``key`` and under every key below it (``logs/7`` takes
        ``logs/7/...`` along); a key with nothing under it is not an error. Raises OSError."""


class UnitOfWork(Protocol):
    """One transaction: rolls back on exit unless ``commit`` was called."""

    # Read-only properties, not attributes: an implementation may then hold its own repository
    # classes (a protocol's attributes are invariant).
    @property
    def agents(self) -> AgentRepository: ...

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def jobs(self) -> JobRepository: ...

    @property
    def jobtypes(self) -> JobTypeRepository: ...

    @property
    def software(self) -> SoftwareRepository: ...

    @property
    def logs(self) -> TaskLogRepository: ...

    @property
    def blocks(self) -> BlocklistRepository: ...

    @property
    def scheduling(self) -> SchedulingRepository: ...

    @property
    def tokens(self) -> TokenRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def events(self) -> EventRepository: ...

    @property
    def history(self) -> HistoryRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work; ``read_only`` ones never write (and may not lock)."""


class SoftState(Protocol):
    """Soft state on its way to storage: heartbeats' reports kept, the latest per agent, and
    written in batches, so that a heartbeat moving only them takes no write lock of its own."""

    def report(self, report: SoftReport) -> None:
        """Keep the report until the next batch (a later report of the agent replaces it)."""

    def flush(self) -> int:
        """Write every pending report now, in one statement; returns how many were pending."""


class TaskQueue(Protocol):
    """Work for the queue's consumers. Called only after the database commit; carries ids only."""

    def assign_tasks(self) -> None: ...

    def assign_tasks_later(self, delay: float) -> None:
        """An assignment pass in ``delay`` seconds (when a retry back-off ends). Requests for
        about the same time are coalesced."""

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None: ...

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None: ...

    def update_agent(self, agent_id: uuid.UUID) -> None: ...

    def stop_tasks(
        self, agent_id: uuid.UUID, host: str, port: int, task_ids: Sequence[int]
    ) -> None:
        """Ask the agent at host:port to stop these tasks (used once the agent row is gone; its
        id signs the call)."""


class AgentClient(Protocol):
    """Calls to render nodes (agent-protocol.md), answered in the domain's terms: the adapter
    owns the wire format and signs each call for the agent ``agent_id``. ``base_url`` is
    ``http://host:port/api/v1``."""

    def assign(
        self, agent_id: uuid.UUID, base_url: str, job: Job, tasks: Sequence[Task]
    ) -> AssignAnswer:
        """Hand the agent a batch of one job's tasks."""

    def tasks(self, agent_id: uuid.UUID, base_url: str) -> PollAnswer:
        """Ask the agent which tasks it runs."""

    def stop_task(self, agent_id: uuid.UUID, base_url: str, task_id: int) -> StopAnswer: ...

    def update(self, agent_id: uuid.UUID, base_url: str, version: str) -> UpdateAnswer:
        """Ask the agent to update itself to ``version``."""


class AgentKeys(Protocol):
    """The key each farm agent verifies the master's calls with (handed to it when it
    announces itself; derived from the master's secret, so nothing is stored)."""

    def key_for(self, agent_id: uuid.UUID) -> str:
        """The agent's signing key, as hex."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class CreateCounter(Protocol):
    """Counts each client's creates against its budget (see ``farm_domain.budgets``)."""

    def wait(self, payer: str) -> float | None:
        """None when ``payer`` may create now; otherwise the seconds until it may."""

    def spend(self, payer: str) -> None:
        """Count one create of ``payer``'s."""


class Secrets(Protocol):
    """Randomness for credentials."""

    def random_token(self) -> str:
        """A new URL-safe secret of 256 random bits."""


class PasswordHasher(Protocol):
    """Slow, salted password hashes (argon2id)."""

    def hash_password(self, password: str) -> str: ...

    def verify_password(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` is the one hashed; False for a hash it cannot read."""


class Counters(Protocol):
    """What the master counts as it happens, for ``/metrics``: each process counts its own, and
    the adapter adds them up across the web workers and the queue's consumers. Reasons are short
    codes from a small set (``REQUEUE_REASONS``; failures: the agents' reason codes)."""

    def assigned(self, tasks: int) -> None:
        """Tasks claimed for an agent (a batch)."""

    def dispatched(self, outcome: str) -> None:
        """An agent's answer to a batch sent to it: ``accepted``, ``refused``, ``conflict``,
        ``busy`` or ``unreachable``."""

    def requeued(self, reason: str, tasks: int = 1) -> None:
        """Tasks put back in the queue, and why (one of ``REQUEUE_REASONS``)."""

    def failed(self, reason: str) -> None:
        """A task's attempt failed, with its reason code (``exit``, ``lost`` ...)."""

    def stale_report(self) -> None:
        """A report refused because another attempt (or another agent) owns the task. Stays at
        zero on a healthy farm."""

    def double_assignment(self, tasks: int) -> None:
        """Tasks found running on an agent at the attempt another agent holds: one attempt given
        to two agents. Must stay at zero."""


REQUEUE_REASONS = (
    "agent_offline",  # its agent went offline (timeout, failed poll, reported itself offline)
    "agent_deleted",
    "refused",  # its agent refused the batch (or answered that it holds some already)
    "declined",  # its agent was busy or shutting down when the batch was sent
    "uncallable",  # the master may not call its agent
    "retry",  # its attempt failed and the job allows another
    "lost",  # missing from its agent's report, and the job allows another
    "given_back",  # its agent gave it back
)


class NoCounters:
    """Counts nothing (the default; tests that do not look at metrics)."""

    def assigned(self, tasks: int) -> None:
        pass

    def dispatched(self, outcome: str) -> None:
        pass

    def requeued(self, reason: str, tasks: int = 1) -> None:
        pass

    def failed(self, reason: str) -> None:
        pass

    def stale_report(self) -> None:
        pass

    def double_assignment(self, tasks: int) -> None:
        pass


@attrs.frozen
class Exposition:
    """The metrics as a scraper reads them: a body in ``content_type``."""

    body: bytes
    content_type: str


class MetricsSource(Protocol):
    """The master's measurements: the counters of every process, the farm's state as stored,
    and each request's route, status and duration."""

    def exposition(self, accept: str | None) -> Exposition:
        """Everything measured, in the format ``accept`` (a request's Accept header) asks
        for, Prometheus text otherwise."""

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (``route``: its template)."""


class ReadinessProbe(Protocol):
    def problems(self) -> list[str]:
        """What keeps the master from serving: the database or the queue out of reach, the
        schema not at the newest migration. Empty when it is ready."""


class ChangeMarker(Protocol):
    """Reads, in one cheap query, a value that changes whenever a job, a task or an agent
    changes in a way a dashboard shows (state, assignment, start, end, a recorded event)."""

    def marker(self) -> str: ...


class FarmStatistics(Protocol):
    """The farm overview's aggregates, each one query."""

    def agent_counts(self) -> tuple[dict[str, int], int]:
        """Agents by shown state label, and how many hold unfinished tasks."""

    def done_per_hour(self, since: datetime) -> dict[datetime, int]:
        """Tasks done (finished) from ``since``, by the start of their hour (UTC)."""

    def failures_by_reason(self, since: datetime) -> dict[str, int]:
        """Failed attempts recorded from ``since``, by reason."""
