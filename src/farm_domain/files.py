"""Task logs and agent update archives: files the master keeps for agents, not rows."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Iterator

import attrs

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.audit import record
from farm_domain.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    TooLarge,
    ValidationError,
    WrittenAway,
)
from farm_domain.identities import refuse_unbound_for_enrolled
from farm_domain.ports import Clock, FileStore, UnitOfWork, UnitOfWorkFactory
from farm_domain.work import Task, TaskLog

logger = logging.getLogger("farm.files")

# Matched with fullmatch (`$` also matches before a trailing newline). An identifier is a file
# name with ".csv" appended: at most 251 characters, so that the name fits in 255.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}")
# PyFarm's agent version format: 1, 1.2, 1.2.3 with an optional -dev/-pre/-rc/-alpha/-beta tag.
MAX_CHUNK = 1024 * 1024
"""The largest log chunk an agent may send at once (bytes)."""

_VERSION = re.compile(r"\d+(\.\d+(\.\d+)?)?(-(pre|dev|rc|alpha|beta)\d*)?", re.ASCII)


def task_files(task_id: int) -> str:
    """The key under which a task's files (its logs) are kept: they go when the task goes."""
    return f"logs/{task_id}"


def forget_task_files(files: FileStore, task_ids: Iterable[int]) -> None:
    """Delete the files of tasks whose rows are gone (after the commit: a rolled-back delete
    must not lose them). A failure is logged: the tasks are gone either way, and ids are never
    reused, so what stays on disk is never served."""
    for task_id in task_ids:
        try:
            files.delete(task_files(task_id))
        except OSError as error:
            logger.warning(
                "could not delete a deleted task's files",
                extra={"task_id": task_id, "error": str(error)},
            )


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value) or ".." in value:
        raise ValidationError(
            f"{value!r} is not a valid log identifier: letters, digits, '.', '_' and '-', "
            "at most 251",
            field="identifier",
        )
    return value


class TaskLogs:
    """Logs of each attempt at a task: registered by the agent, then uploaded as CSV text.

    Only the task's agent writes them (the agent that registered a log, else the task's
    current agent); anyone who may read reads them."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        files: FileStore,
        clock: Clock,
        max_bytes: int,
        *,
        policy: AccessPolicy,
    ) -> None:
        self._uow = uow
        self._files = files
        self._clock = clock
        self._max_bytes = max_bytes
        self._policy = policy

    def _require_owner(self, uow: UnitOfWork, actor: Identity, owner: uuid.UUID | None) -> None:
        if owner is None:
            self._policy.require(actor, Permission.ACT_AS_AGENT)
        else:
            self._policy.require_agent(actor, owner)
            refuse_unbound_for_enrolled(uow, actor, owner, self._clock.now())

    @staticmethod
    def _key(log: TaskLog) -> str:
        return f"{task_files(log.task_id)}/{log.attempt}/{log.identifier}.csv"

    def _task(self, uow: UnitOfWork, job_id: int, task_id: int) -> Task:
        task = uow.tasks.get(task_id)
        if task is None or task.job_id != job_id:
            raise NotFound("Task not found")
        return task

    def register(
        self,
        actor: Identity,
        job_id: int,
        task_id: int,
        attempt: int,
        identifier: str,
        agent_id: uuid.UUID | None,
    ) -> tuple[TaskLog, bool]:
        """Register a log (the task's agent) for an attempt the task has had; an identifier
        already registered is returned as it is, not an error. Returns (log, created). Raises
        Forbidden, NotFound, ValidationError, Conflict (an attempt still to come)."""
        self._policy.require(actor, Permission.ACT_AS_AGENT)
        _identifier(identifier)
        if attempt < 0:
            raise ValidationError("the attempt must be 0 or more", field="attempt")
        if agent_id is not None:
            self._policy.require_agent(actor, agent_id)
        with self._uow() as uow:
            task = self._task(uow, job_id, task_id)
            self._require_owner(uow, actor, task.agent_id)
            if attempt > task.attempts:
                raise Conflict(
                    f"Task {task_id} has had {task.attempts} attempts: "
                    f"there is no attempt {attempt} to log"
                )
            existing = uow.logs.get(task_id, attempt, identifier)
            if existing is not None:
                return existing, False
            try:
                log = uow.logs.add(
                    TaskLog(0, task_id, attempt, identifier, agent_id, self._clock.now())
                )
            except AlreadyExists:  # registered by a concurrent request a moment before
                existing = uow.logs.get(task_id, attempt, identifier)
                if existing is None:
                    raise
                return existing, False
            uow.commit()
        return log, True

    def _registered(self, job_id: int, task_id: int, attempt: int, identifier: str) -> TaskLog:
        with self._uow(read_only=True) as uow:
            self._task(uow, job_id, task_id)
            log = uow.logs.get(task_id, attempt, identifier)
        if log is None:
            raise NotFound(f"Log {identifier} not found")
        return log

    def _owned(
        self, actor: Identity, job_id: int, task_id: int, attempt: int, identifier: str
    ) -> TaskLog:
        """The registered log, once ``actor`` is known to act as its agent."""
        self._policy.require(actor, Permission.ACT_AS_AGENT)
        with self._uow(read_only=True) as uow:
            task = self._task(uow, job_id, task_id)
            log = uow.logs.get(task_id, attempt, identifier)
        self._require_owner(uow, actor, log.agent_id if log and log.agent_id else task.agent_id)
        if log is None:
            raise NotFound(f"Log {identifier} not found")
        return log

    def upload(
        self,
        actor: Identity,
        job_id: int,
        task_id: int,
        attempt: int,
        identifier: str,
        chunks: Iterable[bytes],
    ) -> TaskLog:
        """Store the log's text (the task's agent), replacing any earlier upload. Raises
        Forbidden, NotFound, TooLarge."""
        log = self._owned(actor, job_id, task_id, attempt, identifier)
        try:
            size = self._files.write(self._key(log), chunks, self._max_bytes)
        except WrittenAway:  # its job was deleted while the text came in
            raise NotFound(f"Log {identifier} not found") from None
        with self._uow() as uow:
            current = uow.logs.get(task_id, attempt, identifier)
            if current is None:  # its job was deleted while the text came in
                forget_task_files(self._files, [task_id])
                raise NotFound(f"Log {identifier} not found")
            saved = TaskLog(
                current.id,
                current.task_id,
                current.attempt,
                current.identifier,
                current.agent_id,
                current.created_on,
                size,
                current.state,
            )
            uow.logs.save(saved)
            uow.commit()
        return saved

    def append(
        self,
        actor: Identity,
        job_id: int,
        task_id: int,
        attempt: int,
        identifier: str,
        offset: int,
        data: bytes,
    ) -> TaskLog:
        """Add a chunk of a running frame's log (the task's agent): ``data`` starts at byte
        ``offset`` of the log. Bytes the master has already are acknowledged, not added again
        (a chunk resent after a lost answer). Returns the log, ``size`` its bytes now. Raises
        Forbidden, NotFound, ValidationError, LogGap (the chunk starts beyond what the master
        has: its ``offset`` says where to resume), TooLarge, StorageFull."""
        if offset < 0:
            raise ValidationError("`offset` must be 0 or more", field="offset")
        if len(data) > MAX_CHUNK:
            raise TooLarge(f"a log chunk is at most {MAX_CHUNK} bytes")
        log = self._owned(actor, job_id, task_id, attempt, identifier)
        try:
            size = self._files.append(self._key(log), offset, data, self._max_bytes)
        except WrittenAway:  # its job was deleted meanwhile
            raise NotFound(f"Log {identifier} not found") from None
        with self._uow() as uow:
            current = uow.logs.get(task_id, attempt, identifier)
            if current is None:  # its job was deleted meanwhile
                forget_task_files(self._files, [task_id])
                raise NotFound(f"Log {identifier} not found")
            # Two chunks' answers may commit in either order: the log only grows by chunks.
            size = max(size, current.size or 0)
            saved = attrs.evolve(current, size=size)
            if current.size != size:
                uow.logs.save(saved)
                uow.commit()
        return saved

    def download(
        self,
        actor: Identity,
        job_id: int,
        task_id: int,
        attempt: int,
        identifier: str,
        offset: int = 0,
    ) -> Iterator[bytes]:
        """The log's text from byte ``offset`` on (what has arrived so far of a running
        frame's). Raises Forbidden, NotFound when the log is unknown or nothing was uploaded
        yet, ValidationError."""
        self._policy.require(actor, Permission.READ)
        if offset < 0:
            raise ValidationError("`offset` must be 0 or more", field="offset")
        log = self._registered(job_id, task_id, attempt, identifier)
        chunks = self._files.read(self._key(log), offset)
        if chunks is None:
            raise NotFound(f"Log {identifier} has no text yet")
        return chunks

    def of_attempt(self, actor: Identity, job_id: int, task_id: int, attempt: int) -> list[TaskLog]:
        """The logs registered for one attempt at the task, in order. Raises Forbidden,
        NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            self._task(uow, job_id, task_id)
            return uow.logs.of_attempt(task_id, attempt)

    def set_state(
        self, actor: Identity, job_id: int, task_id: int, attempt: int, identifier: str, state: str
    ) -> TaskLog:
        """PyFarm agent 0.8.6 reports a log's state (the task's agent); it is kept for
        display. Raises Forbidden, NotFound, ValidationError."""
        self._policy.require(actor, Permission.ACT_AS_AGENT)
        if not 1 <= len(state) <= 16 or not state.isprintable():
            raise ValidationError("`state` must be 1 to 16 printable characters", field="state")
        log = self._owned(actor, job_id, task_id, attempt, identifier)
        with self._uow() as uow:
            current = uow.logs.get(task_id, attempt, identifier) or log
            saved = TaskLog(
                current.id,
                current.task_id,
                current.attempt,
                current.identifier,
                current.agent_id,
                current.created_on,
                current.size,
                state,
            )
            uow.logs.save(saved)
            uow.commit()
        return saved


class AgentUpdates:
    """Agent update archives (zip files) by version, which agents download to upgrade (and
    then run: only admins upload them)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        files: FileStore,
        clock: Clock,
        max_bytes: int,
        *,
        policy: AccessPolicy,
    ) -> None:
        self._uow = uow
        self._files = files
        self._clock = clock
        self._max_bytes = max_bytes
        self._policy = policy

    @staticmethod
    def _key(version: str) -> str:
        if not _VERSION.fullmatch(version):
            raise ValidationError(f"{version!r} is not a valid agent version", field="version")
        return f"updates/pyfarm-agent-{version}.zip"

    def upload(self, actor: Identity, version: str, chunks: Iterable[bytes]) -> int:
        """Store the archive for ``version``; returns its size. Raises Forbidden,
        ValidationError, TooLarge."""
        self._policy.require(actor, Permission.ADMINISTER)
        size = self._files.write(self._key(version), chunks, self._max_bytes)
        with self._uow() as uow:
            # The file is written first (it may be refused as too large); an event lost to a
            # failed commit here leaves an archive without its event, never the reverse.
            record(
                uow,
                actor,
                self._clock.now(),
                "update.upload",
                f"update:{version}",
                after={"size": size},
            )
            uow.commit()
        return size

    def download(self, actor: Identity, version: str) -> Iterator[bytes]:
        """Raises Forbidden, ValidationError (malformed version) and NotFound."""
        self._policy.require(actor, Permission.READ)
        chunks = self._files.read(self._key(version))
        if chunks is None:
            raise NotFound("Specified update not found")
        return chunks
