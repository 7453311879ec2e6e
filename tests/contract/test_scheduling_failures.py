"""The scheduler's queries for failures that don't stall a job, on the fake and on SQL (SQLite
and PostgreSQL): retry back-off, every agent with its profile, and jobs failed as stuck."""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs

from farm_domain.enums import AgentState, WorkState
from farm_domain.ports import UnitOfWorkFactory
from farm_domain.work import Job, Task
from tests.contract.test_repositories import (  # noqa: F401  # the fixtures, shared
    T0,
    add_tasks,
    database_url_pg,
    make_agent,
    uow,
)


def add_job(uow_factory: UnitOfWorkFactory, title: str = "job") -> Job:
    with uow_factory() as u:
        version = u.jobtypes.add(f"type-{uuid.uuid4().hex[:8]}")
        job = u.jobs.add(Job(id=0, title=title, jobtype_version_id=version.id, time_submitted=T0))
        u.commit()
    return job


def test_queued_tasks_backing_off_are_left_out_given_a_time(uow) -> None:  # noqa: F811
    job = add_job(uow)
    other = add_job(uow, title="other")
    agent = uuid.uuid4()
    with uow() as u:
        u.agents.add(make_agent(id=agent))
        u.commit()
    later = T0 + timedelta(seconds=15)
    ready, waiting, due = add_tasks(
        uow,
        job,
        Task(id=0, job_id=0, frame=1.0),
        Task(id=0, job_id=0, frame=2.0, not_before=later, failed_on=agent, failures=1),
        Task(id=0, job_id=0, frame=3.0, not_before=T0),
    )
    (only_waiting,) = add_tasks(uow, other, Task(id=0, job_id=0, frame=1.0, not_before=later))
    with uow() as u:
        got = u.tasks.get(waiting.id)
        assert (got.not_before, got.failed_on, got.failures) == (later, agent, 1)
        assert [t.id for t in u.scheduling.queued_tasks(job.id, 10)] == [
            ready.id,
            waiting.id,
            due.id,
        ]
        assert [t.id for t in u.scheduling.queued_tasks(job.id, 10, T0)] == [ready.id, due.id]
        assert [t.id for t in u.scheduling.queued_tasks(job.id, 10, later)] == [
            ready.id,
            waiting.id,
            due.id,
        ]
        assert {p.id for p in u.scheduling.candidate_jobs()} == {job.id, other.id}
        assert {p.id for p in u.scheduling.candidate_jobs(T0)} == {job.id}
        assert {p.id for p in u.scheduling.candidate_jobs(later)} == {job.id, other.id}
    assert only_waiting.not_before == later


def test_profiles_list_every_agent_with_its_contact_and_profile(uow) -> None:  # noqa: F811
    online = make_agent(hostname="a", ram=8192, free_ram=100, cpus=4)
    offline = make_agent(hostname="b", state=AgentState.OFFLINE)
    disabled = make_agent(hostname="c", disabled=True)
    with uow() as u:
        for agent in (online, offline, disabled):
            u.agents.add(agent)
        u.agents.replace_tags(online.id, frozenset({"gpu"}))
        u.commit()
    with uow() as u:
        found = u.scheduling.profiles()
        assert [(c.id, c.state, c.disabled) for c, _ in found] == [
            (online.id, AgentState.ONLINE, False),
            (offline.id, AgentState.OFFLINE, False),
            (disabled.id, AgentState.ONLINE, True),
        ]
        assert [c for c, _ in found] == u.scheduling.contacts()
        for _, profile in found:
            assert profile == u.scheduling.agent_profile(profile.id)
        assert found[0][1].tags == frozenset({"gpu"})
        assert (found[0][1].ram, found[0][1].free_ram, found[0][1].cpus) == (8192, 100, 4)


def test_failed_jobs_by_the_beginning_of_their_reason(uow) -> None:  # noqa: F811
    jobs = [add_job(uow, title=f"j{n}") for n in range(5)]
    reasons = [
        ("every eligible agent failed it 3 times", WorkState.FAILED),
        ("every eligible agent refused it or failed it 3 times", WorkState.FAILED),
        ("every eligible agent failed it 3 times", None),  # queued again
        ("every_eligible agent", WorkState.FAILED),  # LIKE's wildcards are escaped
        (None, WorkState.FAILED),
    ]
    with uow() as u:
        for job, (reason, state) in zip(jobs, reasons, strict=True):
            u.jobs.save(attrs.evolve(u.jobs.get(job.id), reason=reason))
            u.jobs.set_state(job.id, state)
            u.tasks.add(Task(id=0, job_id=job.id, frame=1.0, state=state and WorkState.FAILED))
        u.commit()
    with uow() as u:
        found = u.scheduling.failed_jobs("every eligible agent", 10)
        assert [p.id for p in found] == [jobs[1].id, jobs[0].id]  # newest first
        assert found[1].reason == "every eligible agent failed it 3 times"
        assert [p.id for p in u.scheduling.failed_jobs("every eligible agent", 1)] == [jobs[1].id]
        assert u.scheduling.failed_jobs("every%", 10) == []
        assert [p.id for p in u.scheduling.failed_jobs("every_", 10)] == [jobs[3].id]
        # A job's reason is in its profile as a candidate too.
        (queued,) = u.scheduling.candidate_jobs()
        assert (queued.id, queued.reason) == (jobs[2].id, reasons[2][0])
