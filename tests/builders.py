"""Builders shared by tests at every layer: jobs and tasks straight through a unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from farm_domain.work import Job, Task


def add_job(uow_factory: Any, now: datetime, *, requeue: int = 3, title: str = "job") -> Job:
    with uow_factory() as uow:
        version = uow.jobtypes.add(f"type-{uuid.uuid4().hex[:8]}")
        job = uow.jobs.add(
            Job(
                id=0,
                title=title,
                jobtype_version_id=version.id,
                requeue=requeue,
                time_submitted=now,
            )
        )
        uow.commit()
    return job


def add_task(uow_factory: Any, job: Job, now: datetime, **fields: Any) -> Task:
    with uow_factory() as uow:
        task = uow.tasks.add(
            Task(id=0, job_id=job.id, frame=fields.pop("frame", 1.0), time_submitted=now, **fields)
        )
        uow.commit()
    return task


def get_task(uow_factory: Any, task_id: int) -> Task:
    with uow_factory() as uow:
        task = uow.tasks.get(task_id)
    assert task is not None
    return task
