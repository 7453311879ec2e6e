"""The dashboard's searches, filters and sorts of agents, jobs and a job's tasks, the same on the
fakes, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import attrs
import pytest

from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.agents import AgentQuery, AgentSort
from farm_domain.enums import AgentState, WorkState
from farm_domain.ports import UnitOfWorkFactory
from farm_domain.work import Job, JobQuery, JobSort, Task, TaskStatus
from tests.contract.test_repositories import T0, make_agent
from tests.support.databases import empty_tables
from tests.support.fakes.unit_of_work import FakeUnitOfWorkFactory


@pytest.fixture(params=["fake", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def uow(request: pytest.FixtureRequest) -> Iterator[UnitOfWorkFactory]:
    if request.param == "fake":
        yield FakeUnitOfWorkFactory()
        return
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("postgres_database_url")
        engine = create_database_engine(url)
        empty_tables(engine)
        engine.dispose()
    engine = create_database_engine(url)
    yield SqlUnitOfWorkFactory(engine)
    engine.dispose()


def _agents(uow: UnitOfWorkFactory) -> list[uuid.UUID]:
    agents = [
        make_agent(hostname="render-b", ram=1024, cpus=2, remote_ip="10.0.0.7", last_heard_from=T0),
        make_agent(hostname="render-a", ram=8192, cpus=16, remote_ip="10.0.0.5"),
        make_agent(
            hostname="comp-c",
            ram=4096,
            cpus=8,
            state=AgentState.OFFLINE,
            last_heard_from=T0 + timedelta(hours=1),
        ),
        make_agent(hostname="render-d", ram=2048, cpus=4, disabled=True),
    ]
    with uow() as u:
        for agent in agents:
            u.agents.add(agent)
        u.agents.replace_tags(agents[0].id, frozenset({"gpu", "fast"}))
        u.agents.replace_tags(agents[2].id, frozenset({"gpu"}))
        u.commit()
    return [a.id for a in agents]


def _hosts(uow: UnitOfWorkFactory, **query: object) -> list[str]:
    with uow(read_only=True) as u:
        return [a.hostname for a in u.agents.overview(AgentQuery(**query))]  # type: ignore[arg-type]  # any AgentQuery fields


def test_agents_are_searched_by_part_of_hostname_or_address_and_filtered_by_tag(uow) -> None:
    _agents(uow)
    assert _hosts(uow, text="RENDER") == ["render-a", "render-b", "render-d"]
    assert _hosts(uow, text="0.0.7") == ["render-b"]
    assert _hosts(uow, text="%") == [] and _hosts(uow, text="_") == []
    assert _hosts(uow, tag="gpu") == ["comp-c", "render-b"]
    assert _hosts(uow, tag="gpu", text="render") == ["render-b"]
    assert _hosts(uow, tag="none") == []
    assert _hosts(uow, text="render", state=AgentState.DISABLED) == ["render-d"]


def test_agents_sort_by_each_column_both_ways(uow) -> None:
    _agents(uow)
    assert _hosts(uow, sort=AgentSort.RAM) == ["render-b", "render-d", "comp-c", "render-a"]
    assert _hosts(uow, sort=AgentSort.CPUS, descending=True) == [
        "render-a",
        "comp-c",
        "render-d",
        "render-b",
    ]
    assert _hosts(uow, sort=AgentSort.HOSTNAME, descending=True) == [
        "render-d",
        "render-b",
        "render-a",
        "comp-c",
    ]
    # disabled < offline < online, by the shown state's label; ties by hostname
    assert _hosts(uow, sort=AgentSort.STATE) == ["render-d", "comp-c", "render-a", "render-b"]
    # never heard from sorts as the oldest
    assert _hosts(uow, sort=AgentSort.LAST_HEARD) == [
        "render-a",
        "render-d",
        "render-b",
        "comp-c",
    ]
    assert _hosts(uow, sort=AgentSort.LAST_HEARD, descending=True)[:2] == ["comp-c", "render-b"]
    assert _hosts(uow, sort=AgentSort.RAM, limit=2, offset=1) == ["render-d", "comp-c"]


def _jobs(uow: UnitOfWorkFactory) -> dict[str, int]:
    made = {}
    with uow() as u:
        render = u.jobtypes.add("render")
        comp = u.jobtypes.add("comp")
        for title, version, priority, owner, user, tags, state in [
            ("Shot 10 beauty", render, 5, "ana", None, ("lighting",), None),
            ("shot 20 fx", render, -1, "bo", "ana", ("fx", "lighting"), WorkState.PAUSED),
            ("comp 100%", comp, 0, None, None, (), WorkState.RUNNING),
        ]:
            job = u.jobs.add(
                Job(
                    id=0,
                    title=title,
                    jobtype_version_id=version.id,
                    priority=priority,
                    submitted_by=owner,
                    user=user,
                    tags=tags,
                    state=state,
                    time_submitted=T0,
                )
            )
            made[title] = job.id
        u.commit()
    return made


def _titles(uow: UnitOfWorkFactory, **query: object) -> list[str]:
    with uow(read_only=True) as u:
        return [j.title for j in u.jobs.query(JobQuery(**query))]  # type: ignore[arg-type]  # any JobQuery fields


def test_jobs_are_searched_by_title_and_filtered_by_user_jobtype_and_tag(uow) -> None:
    _jobs(uow)
    assert _titles(uow) == ["comp 100%", "shot 20 fx", "Shot 10 beauty"]
    assert _titles(uow, text="SHOT") == ["shot 20 fx", "Shot 10 beauty"]
    assert _titles(uow, text="100%") == ["comp 100%"]
    assert _titles(uow, text="1_0") == []
    assert _titles(uow, user="ana") == ["shot 20 fx", "Shot 10 beauty"]
    assert _titles(uow, user="bo") == ["shot 20 fx"]
    assert _titles(uow, jobtype="comp") == ["comp 100%"]
    assert _titles(uow, jobtype="render", tag="fx") == ["shot 20 fx"]
    assert _titles(uow, tag="lighting", state=WorkState.PAUSED) == ["shot 20 fx"]
    assert _titles(uow, tag="lighting", queued=True) == ["Shot 10 beauty"]


def test_jobs_sort_by_each_column_both_ways(uow) -> None:
    made = _jobs(uow)
    assert _titles(uow, sort=JobSort.ID, descending=False) == list(made)
    assert _titles(uow, sort=JobSort.PRIORITY) == ["Shot 10 beauty", "comp 100%", "shot 20 fx"]
    assert _titles(uow, sort=JobSort.PRIORITY, descending=False, limit=1, offset=1) == ["comp 100%"]
    assert _titles(uow, sort=JobSort.STATE, descending=False) == [
        "shot 20 fx",
        "Shot 10 beauty",
        "comp 100%",
    ]
    assert _titles(uow, sort=JobSort.OWNER, descending=False) == [
        "comp 100%",
        "Shot 10 beauty",
        "shot 20 fx",
    ]
    assert _titles(uow, sort=JobSort.TITLE, descending=False, text="shot") == [
        "Shot 10 beauty",
        "shot 20 fx",
    ]


def test_a_jobs_tasks_are_filtered_by_status(uow) -> None:
    made = _jobs(uow)
    job_id = made["Shot 10 beauty"]
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        tasks = [
            Task(id=0, job_id=job_id, frame=float(frame), time_submitted=T0) for frame in range(6)
        ]
        tasks[1] = attrs.evolve(tasks[1], agent_id=agent.id)
        tasks[2] = attrs.evolve(tasks[2], agent_id=agent.id, state=WorkState.RUNNING)
        tasks[3] = attrs.evolve(tasks[3], state=WorkState.DONE)
        tasks[5] = attrs.evolve(tasks[5], state=WorkState.DONE)
        for task in tasks:
            u.tasks.add(task)
        u.commit()

    def frames(status: TaskStatus | None, **page: int) -> list[float]:
        with uow(read_only=True) as u:
            return [t.frame for t in u.tasks.of_job(job_id, status=status, **page)]

    assert frames(None) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert frames(TaskStatus.QUEUED) == [0.0, 4.0]
    assert frames(TaskStatus.ASSIGNED) == [1.0]
    assert frames(TaskStatus.RUNNING) == [2.0]
    assert frames(TaskStatus.DONE) == [3.0, 5.0]
    assert frames(TaskStatus.DONE, limit=1, offset=1) == [5.0]
    assert frames(TaskStatus.FAILED) == []
