"""Jobs that must go in steps: a submission stopped halfway, and a deletion, each done a chunk of
tasks per short transaction (on SQLite each transaction holds the write lock every heartbeat
waits for), and finished later by the liveness sweep when their master stopped midway."""

from __future__ import annotations

import logging
from datetime import timedelta

from farm_domain.errors import Unavailable
from farm_domain.files import forget_task_files
from farm_domain.ports import Clock, FileStore, UnitOfWorkFactory

log = logging.getLogger("farm.jobs")

TASK_CHUNK = 1_000
"""A job's tasks are stored (and a discarded job's deleted) this many per transaction: on SQLite
each transaction holds the write lock that every heartbeat waits for."""
ABANDONED_AFTER = timedelta(minutes=10)
"""A job whose tasks are still being stored this long after its submission began was abandoned
(its master stopped midway): it is discarded."""


def discard_unready(uow: UnitOfWorkFactory, job_id: int, chunk: int = TASK_CHUNK) -> None:
    """Delete a job that is not ready yet and its tasks, ``chunk`` tasks per transaction. A
    failure is logged: ``discard_abandoned`` tries again later."""
    try:
        while True:
            with uow() as unit:
                gone = unit.jobs.discard_unready(job_id, chunk)
                unit.commit()
            if gone:
                break
    except Unavailable:
        log.warning("could not discard a job stored halfway", extra={"job_id": job_id})
        return
    log.info("job discarded", extra={"job_id": job_id, "reason": "stored halfway"})


def purge_deleted(
    uow: UnitOfWorkFactory, files: FileStore | None, job_id: int, chunk: int = TASK_CHUNK
) -> bool:
    """Delete a job hidden for its deletion: its tasks ``chunk`` per transaction (each chunk's
    files after its commit), then the job. Returns whether it is gone; a failure is logged and
    ``discard_abandoned`` finishes it later (hidden, it is seen by nobody meanwhile)."""
    try:
        while True:
            with uow() as unit:
                deleted, gone = unit.jobs.purge(job_id, chunk)
                unit.commit()
            if files is not None:
                forget_task_files(files, deleted)
            if gone:
                return True
    except Unavailable:
        log.warning("could not finish deleting a job", extra={"job_id": job_id})
        return False


def discard_abandoned(
    uow: UnitOfWorkFactory, clock: Clock, files: FileStore | None = None
) -> list[int]:
    """Discard the jobs whose tasks are still being stored ABANDONED_AFTER after their
    submission began: their master stopped midway, and their submitter never heard they were
    created (finishing them would run a job nobody knows of, twice if they submit again). And
    finish the deletions begun and not finished (their master stopped, or the database failed,
    midway; one still under way is harmlessly helped). Returns the ids of both."""
    with uow(read_only=True) as unit:
        abandoned = unit.jobs.unready_since(clock.now() - ABANDONED_AFTER)
        deleting = unit.jobs.deleting()
    for job_id in abandoned:
        log.warning("job abandoned while its tasks were stored", extra={"job_id": job_id})
        discard_unready(uow, job_id)
    for job_id in deleting:
        if purge_deleted(uow, files, job_id):
            log.info("job deleted", extra={"job_id": job_id, "reason": "deletion finished"})
    return [*abandoned, *deleting]
