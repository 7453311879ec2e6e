"""The same assertions against the fakes, SQLite and PostgreSQL: the fakes cannot drift."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import attrs
import pytest

from farm_adapters.sql.engine import create_database_engine
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.access import Role
from farm_domain.agents import Agent, AgentQuery, SoftwareRef
from farm_domain.enums import AgentState, OsClass, UseAddress, WorkState
from farm_domain.events import Event, EventQuery
from farm_domain.ports import UnitOfWorkFactory
from farm_domain.work import Job, JobQuery, Task, TaskStatus
from tests.support.fakes.unit_of_work import FakeUnitOfWorkFactory

T0 = datetime(2026, 3, 1, 10, 30, 15, 250000, tzinfo=UTC)


@pytest.fixture(params=["fake", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def uow(request: pytest.FixtureRequest) -> Iterator[UnitOfWorkFactory]:
    if request.param == "fake":
        yield FakeUnitOfWorkFactory()
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "database_url_pg")
    engine = create_database_engine(url)
    yield SqlUnitOfWorkFactory(engine)
    engine.dispose()


@pytest.fixture
def database_url_pg(postgres_database_url: str) -> str:
    from tests.support.databases import empty_tables

    engine = create_database_engine(postgres_database_url)
    empty_tables(engine)
    engine.dispose()
    return postgres_database_url


def make_agent(**overrides: object) -> Agent:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "hostname": "node1",
        "remote_ip": "127.0.0.1",
        "ram": 4096,
        "free_ram": 2048,
        "cpus": 8,
        "port": 50000,
    }
    fields.update(overrides)
    return Agent(**fields)  # type: ignore[arg-type]  # any Agent fields


def add_job(uow_factory: UnitOfWorkFactory, title: str = "job", requeue: int = 3) -> Job:
    with uow_factory() as uow:
        version = uow.jobtypes.add("render")
        job = uow.jobs.add(
            Job(
                id=0, title=title, jobtype_version_id=version.id, requeue=requeue, time_submitted=T0
            )
        )
        uow.commit()
    return job


def add_tasks(uow_factory: UnitOfWorkFactory, job: Job, *tasks: Task) -> list[Task]:
    with uow_factory() as uow:
        added = [uow.tasks.add(attrs.evolve(task, job_id=job.id)) for task in tasks]
        uow.commit()
    return added


def test_an_agent_reads_back_exactly_as_it_was_added(uow) -> None:
    agent = make_agent(
        os_class=OsClass.LINUX,
        os_fullname="Debian 12",
        cpu_name="Xeon",
        version="0.8.6",
        use_address=UseAddress.HOSTNAME,
        state=AgentState.RUNNING,
        disabled=True,
        ram_allocation=0.5,
        cpu_allocation=2.0,
        restart_requested=True,
        time_offset=-3,
        last_heard_from=T0,
        mac_addresses=frozenset({"aa:bb:cc:dd:ee:ff"}),
        gpus=frozenset({"GeForce GTX 1080", "Quadro"}),
    )
    with uow() as u:
        u.agents.add(agent)
        u.commit()
    with uow(read_only=True) as u:
        assert u.agents.get(agent.id) == agent


def test_nothing_is_kept_without_commit(uow) -> None:
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
    with uow() as u:
        assert u.agents.get(agent.id) is None


def test_save_writes_scalars_but_leaves_the_sets(uow) -> None:
    agent = make_agent(mac_addresses=frozenset({"aa:aa:aa:aa:aa:aa"}), gpus=frozenset({"g1"}))
    with uow() as u:
        u.agents.add(agent)
        u.commit()
    with uow() as u:
        changed = attrs.evolve(agent, ram=8192, mac_addresses=frozenset(), gpus=frozenset())
        u.agents.save(changed, agent, reason="test", at=T0)
        u.commit()
    with uow() as u:
        stored = u.agents.get(agent.id)
    assert stored.ram == 8192
    assert stored.mac_addresses == {"aa:aa:aa:aa:aa:aa"}
    assert stored.gpus == {"g1"}


def test_save_against_the_agent_as_read_writes_what_changed(uow) -> None:
    agent = make_agent(ram=4096, free_ram=1024, last_heard_from=datetime(2026, 1, 1, tzinfo=UTC))
    with uow() as u:
        u.agents.add(agent)
        u.commit()
    with uow() as u:
        before = u.agents.get(agent.id, for_update=True)
        changed = attrs.evolve(
            before,
            free_ram=2048,
            state=AgentState.RUNNING,
            last_heard_from=before.last_heard_from + timedelta(seconds=5),
        )
        u.agents.save(changed, before, reason="test", at=T0)
        u.agents.save(changed, changed, reason="test", at=T0)  # nothing differs: nothing written
        u.commit()
    with uow() as u:
        stored = u.agents.get(agent.id)
    assert (stored.free_ram, stored.state, stored.last_heard_from, stored.ram) == (
        2048,
        AgentState.RUNNING,
        changed.last_heard_from,
        4096,
    )


def test_sets_are_replaced_and_the_gpu_catalogue_is_shared(uow) -> None:
    first, second = make_agent(gpus=frozenset({"shared"})), make_agent()
    with uow() as u:
        u.agents.add(first)
        u.agents.add(second)
        u.agents.replace_gpus(second.id, frozenset({"shared", "other"}))
        u.agents.replace_mac_addresses(second.id, frozenset({"01:02:03:04:05:06"}))
        u.commit()
    with uow() as u:
        u.agents.replace_gpus(first.id, frozenset())
        u.commit()
    with uow() as u:
        assert u.agents.get(first.id).gpus == frozenset()
        assert u.agents.get(second.id).gpus == {"shared", "other"}
        assert u.agents.get(second.id).mac_addresses == {"01:02:03:04:05:06"}


def test_attached_software_shows_on_the_agent(uow) -> None:
    agent = make_agent()
    with uow() as u:
        blender = u.software.add("blender", [("2.79", 100), ("2.80", 200)])
        u.agents.add(agent)
        u.agents.attach_software(agent.id, [v.id for v in blender.versions])
        u.agents.attach_software(agent.id, [blender.versions[0].id])  # twice is harmless
        u.commit()
    with uow() as u:
        assert u.agents.get(agent.id).software == (
            SoftwareRef("blender", "2.79"),
            SoftwareRef("blender", "2.80"),
        )
        assert [v.version for v in u.software.get_by_name("blender").versions] == ["2.79", "2.80"]
        assert u.software.get_by_name("maya") is None


def test_query_filters_and_orders_by_hostname_then_id(uow) -> None:
    agents = [
        make_agent(hostname="b", ram=1024, cpus=2, port=2000),
        make_agent(hostname="a", ram=8192, cpus=16, port=3000, remote_ip="10.0.0.5"),
        make_agent(hostname="c", ram=4096, cpus=8, port=2000, state=AgentState.OFFLINE),
        make_agent(hostname="a", ram=4096, cpus=4, port=2000, disabled=True),
    ]
    with uow() as u:
        for agent in agents:
            u.agents.add(agent)
        u.commit()

    def names(**filters: object) -> list[str]:
        with uow(read_only=True) as u:
            return [a.hostname for a in u.agents.query(AgentQuery(**filters))]  # type: ignore[arg-type]  # any AgentQuery fields

    a_ids = sorted(str(a.id) for a in agents if a.hostname == "a")
    with uow(read_only=True) as u:
        listed = u.agents.query(AgentQuery())
    assert [a.hostname for a in listed] == ["a", "a", "b", "c"]
    assert [str(a.id) for a in listed[:2]] == a_ids
    assert names(min_ram=4096) == ["a", "a", "c"]
    with uow(read_only=True) as u:  # a range filter sorts its rows the same way
        ranged = u.agents.query(AgentQuery(min_ram=1024, max_cpus=64))
    assert [str(a.id) for a in ranged] == a_ids + [str(agents[0].id), str(agents[2].id)]
    assert names(max_ram=4096, min_cpus=4) == ["a", "c"]
    assert names(max_cpus=2) == ["b"]
    assert names(port=2000, hostname="a") == ["a"]
    assert names(remote_ip="10.0.0.5") == ["a"]
    assert names(state=AgentState.DISABLED) == ["a"]
    assert names(state=AgentState.OFFLINE) == ["c"]
    assert names(state=AgentState.ONLINE) == ["a", "b"]
    assert names(limit=2, offset=1) == ["a", "b"]


def test_delete_reports_whether_the_agent_existed_and_frees_its_tasks(uow) -> None:
    agent = make_agent()
    job = add_job(uow)
    with uow() as u:
        u.agents.add(agent)
        u.commit()
    (task,) = add_tasks(uow, job, Task(id=0, job_id=0, frame=1.0, agent_id=agent.id))
    with uow() as u:
        assert u.agents.delete(agent.id) is True
        assert u.agents.delete(agent.id) is False
        u.commit()
    with uow() as u:
        assert u.agents.get(agent.id) is None
        assert u.tasks.get(task.id).agent_id is None


def test_tasks_round_trip_and_the_active_ones_of_an_agent(uow) -> None:
    agent, other = make_agent(), make_agent(hostname="other")
    with uow() as u:
        u.agents.add(agent)
        u.agents.add(other)
        u.commit()
    job = add_job(uow, title="shot 10")
    mine = Task(
        id=0,
        job_id=0,
        frame=1.5,
        agent_id=agent.id,
        sent_to_agent=True,
        sent_at=T0,
        attempts=2,
        failures=1,
        last_error="boom",
        time_submitted=T0,
    )
    tasks = add_tasks(
        uow,
        job,
        mine,
        Task(id=0, job_id=0, frame=2.0, agent_id=agent.id, state=WorkState.RUNNING),
        Task(id=0, job_id=0, frame=3.0, agent_id=agent.id, state=WorkState.DONE),
        Task(id=0, job_id=0, frame=4.0, agent_id=agent.id, state=WorkState.FAILED),
        Task(id=0, job_id=0, frame=5.0, agent_id=other.id),
        Task(id=0, job_id=0, frame=6.0),
    )
    with uow() as u:
        assert u.tasks.get(tasks[0].id) == attrs.evolve(mine, id=tasks[0].id, job_id=job.id)
        assert [t.frame for t in u.tasks.active_of_agent(agent.id)] == [1.5, 2.0]
        read, active = u.agents.get_with_active(agent.id)
        assert read == u.agents.get(agent.id)
        assert active == {tasks[0].id: 2, tasks[1].id: 0}
        assert u.agents.get_with_active(other.id)[1] == {tasks[4].id: 0}
        assert u.agents.get_with_active(uuid.uuid4()) is None
        listed = u.tasks.of_agent(agent.id)
        assert [t.frame for t, _ in listed] == [1.5, 2.0, 3.0, 4.0]
        summary = listed[0][1]
        assert (summary.id, summary.title, summary.jobtype, summary.jobtype_version) == (
            job.id,
            "shot 10",
            "render",
            1,
        )
        assert u.tasks.status_counts(job.id) == {
            TaskStatus.ASSIGNED: 2,
            TaskStatus.RUNNING: 1,
            TaskStatus.DONE: 1,
            TaskStatus.FAILED: 1,
            TaskStatus.QUEUED: 1,
        }
        read = u.tasks.get(tasks[1].id)
        u.tasks.save(attrs.evolve(read, state=WorkState.DONE), read, reason="test", at=T0)
        u.commit()
    with uow() as u:
        assert [t.frame for t in u.tasks.active_of_agent(agent.id)] == [1.5]


def test_an_agent_as_heard_has_its_active_tasks_and_whether_its_own_credential_is_usable(
    uow,
) -> None:
    from farm_domain.credentials import Token

    agent, other = make_agent(), make_agent(hostname="node2")
    with uow(read_only=True) as u:
        assert u.agents.get_as_heard(agent.id, T0) is None
    with uow() as u:
        u.agents.add(agent)
        u.agents.add(other)
        u.commit()
    job = add_job(uow)
    (task,) = add_tasks(uow, job, Task(id=0, job_id=0, frame=1.0, agent_id=agent.id, attempts=2))
    with uow(read_only=True) as u:
        assert u.agents.get_as_heard(agent.id, T0) == (
            u.agents.get(agent.id),
            {task.id: 2},
            False,
        )
    later = T0 + timedelta(hours=1)
    with uow() as u:
        # Expired or revoked credentials, or another agent's, do not make it enrolled.
        u.tokens.add(Token("a1", Role.AGENT, T0, expires=later, agent_id=agent.id), "1" * 64)
        u.tokens.add(Token("a2", Role.AGENT, T0, revoked=T0, agent_id=agent.id), "2" * 64)
        u.tokens.add(Token("b1", Role.AGENT, T0, agent_id=other.id), "3" * 64)
        u.commit()
    with uow(read_only=True) as u:
        assert u.agents.get_as_heard(agent.id, T0)[2] is True
        assert u.agents.get_as_heard(agent.id, later)[2] is False
        assert u.agents.get_as_heard(agent.id, later - timedelta(microseconds=1))[2] is True
        assert u.agents.get_as_heard(other.id, later) == (u.agents.get(other.id), {}, True)


def test_jobs_keep_their_state(uow) -> None:
    job = add_job(uow, requeue=-1)
    with uow() as u:
        assert u.jobs.get(job.id) == job
        u.jobs.set_state(job.id, WorkState.RUNNING)
        u.commit()
    with uow() as u:
        assert u.jobs.get(job.id).state is WorkState.RUNNING
        assert u.jobs.get(job.id + 1000) is None


def test_software_catalogue_round_trip(uow) -> None:
    agent = make_agent()
    with uow() as u:
        maya = u.software.add("maya", [("2018", 200), ("2017", 100)])
        u.software.add("blender", [])
        u.agents.add(agent)
        u.agents.attach_software(agent.id, [v.id for v in maya.versions])
        u.commit()
    with uow() as u:
        assert [s.name for s in u.software.list_all()] == ["blender", "maya"]
        assert [v.version for v in u.software.get_by_name("maya").versions] == ["2017", "2018"]
        newest = u.software.add_version(maya.id, "2019", 300)
        u.software.set_rank(maya.versions[0].id, 50)  # 2017 stays lowest
        u.software.rename(maya.id, "Maya")
        u.commit()
    with uow() as u:
        renamed = u.software.get_by_name("Maya")
        assert u.software.get_by_name("maya") is None
        assert [(v.version, v.rank) for v in renamed.versions] == [
            ("2017", 50),
            ("2018", 200),
            ("2019", 300),
        ]
        assert renamed.versions[-1] == newest
        u.agents.detach_software(agent.id, renamed.versions[0].id)
        u.software.delete_version(renamed.versions[1].id)
        u.commit()
    with uow() as u:
        assert u.agents.get(agent.id).software == ()
        u.agents.attach_software(agent.id, [newest.id])
        u.software.delete(renamed.id)
        u.commit()
    with uow() as u:
        assert u.software.get_by_name("Maya") is None
        assert u.agents.get(agent.id).software == ()


def test_job_type_versions_and_their_requirements(uow) -> None:
    from farm_domain.work import JobTypeVersion, SoftwareRequirement

    with uow() as u:
        blender = u.software.add("blender", [("2.79", 100), ("2.80", 200)])
        low, high = blender.versions
        spec = JobTypeVersion(
            id=0,
            jobtype_id=0,
            name="render",
            version=1,
            description="renders",
            classname="R",
            code="class R: pass",
            max_batch=4,
            batch_contiguous=False,
            software_requirements=(
                SoftwareRequirement(blender.id, "blender", low.id, "2.79", high.id, "2.80"),
            ),
        )
        first = u.jobtypes.add("render", 1, spec)
        second = u.jobtypes.add(
            "render", 2, attrs.evolve(spec, description="renders better", software_requirements=())
        )
        other = u.jobtypes.add("comp")
        u.commit()
    assert (first.name, first.version, first.max_batch, first.batch_contiguous) == (
        "render",
        1,
        4,
        False,
    )
    assert first.software_requirements == spec.software_requirements
    assert first.jobtype_id == second.jobtype_id != other.jobtype_id
    with uow() as u:
        assert [v.version for v in u.jobtypes.versions("render")] == [1, 2]
        assert u.jobtypes.latest("render") == second
        assert u.jobtypes.get_version("render", 1).description == "renders better"
        assert u.jobtypes.get_version("render", 3) is None
        assert [(j.name, j.version) for j in u.jobtypes.list_latest()] == [
            ("comp", 1),
            ("render", 2),
        ]
        assert u.jobtypes.name_of(first.jobtype_id) == "render"
        assert u.jobtypes.latest("nope") is None
        u.software.rename(blender.id, "Blender")
        u.software.delete_version(high.id)
        u.commit()
    with uow() as u:
        (requirement,) = u.jobtypes.get_version("render", 1).software_requirements
        assert (requirement.software, requirement.min_version, requirement.max_version) == (
            "Blender",
            "2.79",
            None,
        )
        assert not u.jobtypes.in_use("render")
        u.jobs.add(Job(id=0, title="j", jobtype_version_id=first.id, time_submitted=T0))
        assert u.jobtypes.in_use("render") and not u.jobtypes.in_use("comp")
        u.jobtypes.delete("comp")
        u.commit()
    with uow() as u:
        assert u.jobtypes.latest("comp") is None


def test_jobs_round_trip_with_tags_parents_and_requirements(uow) -> None:
    from farm_domain.work import JobQuery, SoftwareRequirement

    parent = add_job(uow, title="parent")
    with uow() as u:
        maya = u.software.add("maya", [("2017", 100), ("2018", 200)])
        version = u.jobtypes.add("render", 3)
        job = Job(
            id=0,
            title="shot",
            jobtype_version_id=version.id,
            priority=5,
            weight=20,
            requeue=-1,
            frame_start=1.0,
            frame_end=10.5,
            frame_by=0.5,
            batch=4,
            ram=2048,
            ram_warning=3000,
            ram_max=4000,
            cpus=8,
            minimum_agents=1,
            maximum_agents=3,
            data={"command": ["echo", "{frame}"], "n": [1, 2.5, None]},
            environ={"A": "b"},
            user="ana",
            tags=("lighting", "fx", "fx"),
            parents=(parent.id,),
            time_submitted=T0,
            software_requirements=(
                SoftwareRequirement(maya.id, "maya", maya.versions[0].id, "2017", None, None),
            ),
        )
        added = u.jobs.add(job)
        u.tasks.add_many(
            [Task(id=0, job_id=added.id, frame=f, time_submitted=T0) for f in (2.0, 1.0, 1.5)]
        )
        u.commit()
    expected = attrs.evolve(
        job, id=added.id, tags=("fx", "lighting"), jobtype="render", jobtype_version=3
    )
    assert added == expected
    with uow() as u:
        assert u.jobs.get(added.id) == expected
        assert [t.frame for t in u.tasks.of_job(added.id)] == [1.0, 1.5, 2.0]
        assert [t.frame for t in u.tasks.of_job(added.id, limit=1, offset=1)] == [1.5]
        assert [t.frame for t in u.tasks.of_job(added.id, offset=2)] == [2.0]
        assert u.tasks.status_counts_of([added.id, parent.id]) == {added.id: {TaskStatus.QUEUED: 3}}
        assert u.jobs.find_by_title("shot") == expected
        assert u.jobs.find_by_title("nope") is None
        assert u.jobs.existing_ids([parent.id, added.id, 999999]) == {parent.id, added.id}
        assert [j.id for j in u.jobs.query(JobQuery())] == [added.id, parent.id]
        assert [j.id for j in u.jobs.query(JobQuery(limit=1, offset=1))] == [parent.id]
        assert [j.id for j in u.jobs.query(JobQuery(title="parent"))] == [parent.id]
        u.jobs.save(
            attrs.evolve(
                expected, priority=-5, tags=("new",), state=WorkState.PAUSED, time_started=T0
            )
        )
        u.commit()
    with uow() as u:
        saved = u.jobs.get(added.id)
        assert (saved.priority, saved.tags, saved.state, saved.time_started) == (
            -5,
            ("new",),
            WorkState.PAUSED,
            T0,
        )
        assert saved.parents == (parent.id,)
        assert [j.id for j in u.jobs.query(JobQuery(state=WorkState.PAUSED))] == [added.id]
        assert [j.id for j in u.jobs.query(JobQuery(queued=True))] == [parent.id]
        u.jobs.set_times(added.id, None, T0)
        u.jobs.delete(parent.id)
        u.commit()
    with uow() as u:
        remaining = u.jobs.get(added.id)
        assert (remaining.parents, remaining.time_started, remaining.time_finished) == (
            (),
            None,
            T0,
        )
        u.jobs.delete(added.id)
        u.commit()
    with uow() as u:
        assert u.jobs.get(added.id) is None
        assert u.tasks.of_job(added.id) == []


def test_task_logs_per_attempt(uow) -> None:
    from farm_domain.work import TaskLog

    job = add_job(uow)
    (task,) = add_tasks(uow, job, Task(id=0, job_id=0, frame=1.0))
    agent_id = uuid.uuid4()
    with uow() as u:
        first = u.logs.add(TaskLog(0, task.id, 1, "a.csv", agent_id, T0))
        second = u.logs.add(TaskLog(0, task.id, 1, "b.csv", None, T0))
        u.logs.add(TaskLog(0, task.id, 2, "a.csv", None, T0))
        u.commit()
    with uow() as u:
        assert u.logs.get(task.id, 1, "a.csv") == first
        assert u.logs.get(task.id, 3, "a.csv") is None
        assert u.logs.of_attempt(task.id, 1) == [first, second]
        u.logs.save(attrs.evolve(first, size=12, state="done"))
        u.commit()
    with uow() as u:
        assert (u.logs.get(task.id, 1, "a.csv").size, u.logs.get(task.id, 1, "a.csv").state) == (
            12,
            "done",
        )
        u.jobs.delete(job.id)
        u.commit()
    with uow() as u:
        assert u.logs.of_attempt(task.id, 1) == []


def test_a_tasks_failures_are_its_latest_oldest_first(uow) -> None:
    from farm_domain.work import TaskFailure

    job = add_job(uow)
    task, other = add_tasks(
        uow, job, Task(id=0, job_id=0, frame=1.0), Task(id=0, job_id=0, frame=2.0)
    )
    with uow() as u:
        stored = [
            u.tasks.record_failure(
                TaskFailure(0, task.id, attempt, None, T0 + timedelta(seconds=attempt), "exit")
            )
            for attempt in range(1, 6)
        ]
        u.tasks.record_failure(TaskFailure(0, other.id, 1, None, T0, "timeout"))
        u.commit()
    with uow() as u:
        assert u.tasks.failures_of(task.id) == stored
        assert u.tasks.failures_of(task.id, limit=2) == stored[-2:]
        assert [f.reason for f in u.tasks.failures_of(other.id)] == ["timeout"]


def test_blocklist_counts_failures_and_remembers_rejections(uow) -> None:
    agent, other = make_agent(), make_agent(hostname="other")
    job = add_job(uow)
    with uow() as u:
        u.agents.add(agent)
        u.agents.add(other)
        u.blocks.record_failure(job.id, agent.id, T0)
        u.blocks.record_failure(job.id, agent.id, T0)
        u.blocks.record_rejection(job.id, other.id, "4096:8:[]", T0)
        u.commit()
    with uow() as u:
        mine, theirs = (
            u.blocks.of_job(job.id)
            if str(agent.id) < str(other.id)
            else reversed(u.blocks.of_job(job.id))
        )
        assert (mine.failures, mine.rejected_fingerprint) == (2, None)
        assert (theirs.failures, theirs.rejected_fingerprint) == (0, "4096:8:[]")
        assert mine.blocks("x", 2) and not mine.blocks("x", 3)
        assert theirs.blocks("4096:8:[]", 3) and not theirs.blocks("8192:8:[]", 3)
        assert [b.job_id for b in u.blocks.of_agent(agent.id)] == [job.id]
        assert {b.agent_id for b in u.blocks.of_agents([agent.id, other.id])} == {
            agent.id,
            other.id,
        }
        assert [b.agent_id for b in u.blocks.of_agents([other.id])] == [other.id]
        assert u.blocks.of_agents([]) == []
        u.blocks.clear(job.id, agent.id)
        u.commit()
    with uow() as u:
        assert [b.agent_id for b in u.blocks.of_job(job.id)] == [other.id]


def test_scheduling_queries(uow) -> None:
    from farm_domain.scheduling import RankRange
    from farm_domain.work import JobTypeVersion, SoftwareRequirement

    idle, busy, off = (
        make_agent(hostname="a"),
        make_agent(hostname="b"),
        make_agent(hostname="c", state=AgentState.OFFLINE),
    )
    with uow() as u:
        maya = u.software.add("maya", [("2017", 100), ("2018", 200)])
        for agent in (idle, busy, off):
            u.agents.add(agent)
        u.agents.attach_software(idle.id, [maya.versions[1].id])
        version = u.jobtypes.add(
            "render",
            1,
            JobTypeVersion(
                0,
                0,
                "render",
                1,
                max_batch=3,
                batch_contiguous=False,
                software_requirements=(
                    SoftwareRequirement(maya.id, "maya", maya.versions[0].id, "2017"),
                ),
            ),
        )
        parent = u.jobs.add(
            Job(id=0, title="parent", jobtype_version_id=version.id, time_submitted=T0)
        )
        ready = u.jobs.add(
            Job(
                id=0,
                title="ready",
                jobtype_version_id=version.id,
                priority=3,
                time_submitted=T0,
                batch=5,
                ram=1024,
                cpus=2,
                frame_by=2.0,
            )
        )
        waiting = u.jobs.add(
            Job(
                id=0,
                title="waiting",
                jobtype_version_id=version.id,
                parents=(parent.id,),
                time_submitted=T0,
            )
        )
        paused = u.jobs.add(
            Job(
                id=0,
                title="paused",
                jobtype_version_id=version.id,
                state=WorkState.PAUSED,
                time_submitted=T0,
            )
        )
        u.tasks.add_many(
            [
                Task(id=0, job_id=j.id, frame=f)
                for j in (ready, waiting, paused)
                for f in (3.0, 1.0, 5.0)
            ]
        )
        u.tasks.add(Task(id=0, job_id=ready.id, frame=7.0, agent_id=busy.id))
        u.tasks.add(Task(id=0, job_id=parent.id, frame=1.0, state=WorkState.DONE))
        u.commit()
    with uow() as u:
        (profile,) = [p for p in u.scheduling.candidate_jobs() if p.id == ready.id]
        assert (
            profile.priority,
            profile.busy_agents,
            profile.batch,
            profile.max_batch,
            profile.batch_contiguous,
            profile.ram,
            profile.cpus,
            profile.frame_by,
        ) == (3, 1, 5, 3, False, 1024, 2, 2.0)
        assert profile.requirements == (RankRange(maya.id, 100, None),)
        assert {p.id for p in u.scheduling.candidate_jobs()} == {ready.id}
        assert u.scheduling.idle_agents() == [idle.id]
        agent = u.scheduling.agent_profile(idle.id)
        assert (agent.ram, agent.cpus, agent.software) == (4096, 8, frozenset({(maya.id, 200)}))
        # Busy, offline and unknown agents are left out; the profile is the one above.
        unknown = uuid.uuid4()
        ((contact, locked),) = u.scheduling.lock_idle_agents([unknown, off.id, busy.id, idle.id])
        assert (contact.id, contact.hostname, contact.state, contact.busy) == (
            idle.id,
            "a",
            AgentState.ONLINE,
            False,
        )
        assert locked == agent
        assert u.scheduling.lock_idle_agents([]) == []
        queued = u.scheduling.queued_tasks(ready.id, 2)
        assert [t.frame for t in queued] == [1.0, 3.0]
        claim = partial(u.scheduling.claim, reason="test", at=T0)
        assert claim([queued[0].id], idle.id) == [queued[0].id]
        assert claim([queued[0].id, queued[1].id], busy.id) == [queued[1].id]
        assert claim([], busy.id) == []
        assert not u.scheduling.mark_sent(queued[0].id, idle.id, 2, T0, reason="test")
        assert u.scheduling.mark_sent(queued[0].id, idle.id, 1, T0, reason="test")
        u.commit()
    with uow() as u:
        claimed = u.tasks.get(queued[0].id)
        assert (claimed.agent_id, claimed.attempts, claimed.sent_to_agent, claimed.sent_at) == (
            idle.id,
            1,
            True,
            T0,
        )
        u.jobs.set_state(parent.id, WorkState.RUNNING)
        u.jobs.set_state(waiting.id, None)
        u.commit()
    with uow() as u:
        assert u.scheduling.idle_agents() == []
        u.jobs.set_state(parent.id, WorkState.DONE)
        u.commit()
    with uow() as u:
        assert {p.id for p in u.scheduling.candidate_jobs()} == {ready.id, waiting.id}


def test_agent_tags_and_job_tag_requirements(uow) -> None:
    from farm_domain.work import TagRequirement

    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        u.agents.replace_tags(agent.id, frozenset({"gpu", "linux"}))
        version = u.jobtypes.add("render")
        job = u.jobs.add(
            Job(
                id=0,
                title="t",
                jobtype_version_id=version.id,
                time_submitted=T0,
                tag_requirements=(TagRequirement("gpu"), TagRequirement("big", negate=True)),
            )
        )
        u.tasks.add(Task(id=0, job_id=job.id, frame=1.0))
        u.commit()
    with uow() as u:
        assert u.agents.tags(agent.id) == {"gpu", "linux"}
        assert u.scheduling.agent_profile(agent.id).tags == {"gpu", "linux"}
        assert u.jobs.get(job.id).tag_requirements == (
            TagRequirement("big", True),
            TagRequirement("gpu", False),
        )
        (profile,) = u.scheduling.candidate_jobs()
        assert profile.tag_requirements == (("big", True), ("gpu", False))
        u.agents.replace_tags(agent.id, frozenset())
        u.commit()
    with uow() as u:
        assert u.agents.tags(agent.id) == frozenset()


def test_agent_overview_and_busy_agents_per_job(uow) -> None:
    first, second = make_agent(hostname="a", disabled=True), make_agent(hostname="b")
    job = add_job(uow)
    with uow() as u:
        maya = u.software.add("maya", [("2018", 100)])
        u.agents.add(first)
        u.agents.add(second)
        u.agents.attach_software(second.id, [maya.versions[0].id])
        u.commit()
    add_tasks(
        uow,
        job,
        Task(id=0, job_id=0, frame=1.0, agent_id=second.id),
        Task(id=0, job_id=0, frame=2.0, agent_id=second.id),
        Task(id=0, job_id=0, frame=3.0, agent_id=first.id, state=WorkState.DONE),
    )
    with uow() as u:
        a, b = u.agents.overview(AgentQuery())
        assert (a.hostname, a.state, a.active_tasks, a.software) == (
            "a",
            AgentState.DISABLED,
            0,
            (),
        )
        assert (b.active_tasks, [s.software for s in b.software]) == (2, ["maya"])
        assert [o.hostname for o in u.agents.overview(AgentQuery(limit=1, offset=1))] == ["b"]
        assert u.tasks.busy_agents_of([job.id, 12345]) == {job.id: 1}
        gone = uuid.uuid4()
        assert u.agents.hostnames([second.id, gone, first.id, second.id]) == {
            first.id: "a",
            second.id: "b",
        }
        assert u.agents.hostnames([]) == {}


@pytest.mark.postgres
def test_locking_idle_agents_skips_rows_another_transaction_holds(database_url_pg: str) -> None:
    engine = create_database_engine(database_url_pg)
    uow = SqlUnitOfWorkFactory(engine)
    first, second = make_agent(hostname="a"), make_agent(hostname="b")
    with uow() as u:
        u.agents.add(first)
        u.agents.add(second)
        u.commit()
    with uow() as holder:
        holder.agents.get(first.id, for_update=True)  # a heartbeat in progress
        with uow() as sweep:
            locked = sweep.scheduling.lock_idle_agents([first.id, second.id])
            assert [contact.id for contact, _ in locked] == [second.id]
    with uow() as sweep:  # released: both are found, in the order asked
        assert [c.id for c, _ in sweep.scheduling.lock_idle_agents([second.id, first.id])] == [
            second.id,
            first.id,
        ]
    engine.dispose()


@pytest.mark.postgres
def test_an_agent_read_after_waiting_for_its_lock_is_current(database_url_pg: str) -> None:
    """The sets and active tasks come with the row as it is once the lock is ours, not as they
    were when the read began waiting for it."""
    import threading

    engine = create_database_engine(database_url_pg)
    uow = SqlUnitOfWorkFactory(engine)
    agent = make_agent(mac_addresses=frozenset({"aa:aa:aa:aa:aa:aa"}))
    with uow() as u:
        u.agents.add(agent)
        u.commit()
    seen: list[tuple[Agent, dict[int, int]] | None] = []

    def heartbeat() -> None:
        with uow() as u:
            seen.append(u.agents.get_with_active(agent.id))

    with uow() as holder:
        holder.agents.get(agent.id, for_update=True)
        waiter = threading.Thread(target=heartbeat)
        waiter.start()
        # Each look in a new transaction: pg_stat_activity is a snapshot kept for the rest of
        # one, and a first look taken before the heartbeat waited would be all it ever saw.
        _wait_for_a_lock_wait(engine)
        holder.agents.replace_mac_addresses(agent.id, frozenset({"bb:bb:bb:bb:bb:bb"}))
        holder.commit()
    waiter.join(30)
    (found,) = seen
    assert found is not None
    read, active = found
    assert read.mac_addresses == {"bb:bb:bb:bb:bb:bb"} and active == {}
    engine.dispose()


def _event(at: datetime, actor: str = "ana", target: str = "job:1", **fields: object) -> Event:
    values: dict[str, object] = {
        "id": 0,
        "at": at,
        "actor": actor,
        "role": Role.ARTIST,
        "address": "10.0.0.3",
        "action": "job.update",
        "target": target,
        "before": {"priority": 0, "tags": ["a"]},
        "after": {"priority": 5, "tags": ["a", "b"], "user": None},
    }
    values.update(fields)
    return Event(**values)  # type: ignore[arg-type]  # any Event fields


def test_events_read_back_as_added_newest_first(uow) -> None:
    with uow() as u:
        first = u.events.add(_event(T0))
        second = u.events.add(
            _event(T0, actor="master", role=Role.ADMIN, address=None, before=None, after=None)
        )
        third = u.events.add(_event(T0 + timedelta(seconds=1), target="agent:x"))
        u.commit()
    assert len({first.id, second.id, third.id}) == 3 and first.id > 0
    with uow(read_only=True) as u:
        everything = u.events.query(EventQuery())
    # Newest first; events at the same instant by id, the later one first.
    assert everything == [third, second, first]
    assert everything[2] == attrs.evolve(_event(T0), id=first.id)
    assert everything[1].role is Role.ADMIN and everything[1].before is None


def test_events_are_filtered_by_target_actor_and_time_and_limited(uow) -> None:
    with uow() as u:
        for n in range(5):
            u.events.add(
                _event(T0 + timedelta(minutes=n), actor=f"a{n % 2}", target=f"job:{n % 3}")
            )
        u.commit()
    with uow(read_only=True) as u:
        by_target = u.events.query(EventQuery(target="job:0"))
        by_actor = u.events.query(EventQuery(actor="a1"))
        since = u.events.query(EventQuery(since=T0 + timedelta(minutes=3)))
        both = u.events.query(EventQuery(target="job:1", actor="a1"))
        limited = u.events.query(EventQuery(limit=2))
    assert [e.at.minute - T0.minute for e in by_target] == [3, 0]
    assert [e.at.minute - T0.minute for e in by_actor] == [3, 1]
    assert [e.at.minute - T0.minute for e in since] == [4, 3]  # inclusive
    assert [e.at.minute - T0.minute for e in both] == [1]
    assert [e.at.minute - T0.minute for e in limited] == [4, 3]


def test_an_event_rolled_back_with_its_change_is_not_kept(uow) -> None:
    with uow() as u:
        u.events.add(_event(T0))
    with uow(read_only=True) as u:
        assert u.events.query(EventQuery()) == []


def test_jobs_keep_who_submitted_them(uow) -> None:
    with uow() as u:
        version = u.jobtypes.add("render")
        job = u.jobs.add(
            Job(
                id=0,
                title="shot",
                jobtype_version_id=version.id,
                time_submitted=T0,
                submitted_by="ana",
            )
        )
        old = u.jobs.add(Job(id=0, title="old", jobtype_version_id=version.id, time_submitted=T0))
        u.commit()
    with uow(read_only=True) as u:
        found, found_old = u.jobs.get(job.id), u.jobs.get(old.id)
    assert found is not None and found.submitted_by == "ana"
    assert found_old is not None and found_old.submitted_by is None


def test_a_job_not_ready_is_seen_by_no_query_until_made_ready(uow) -> None:
    ready = add_job(uow, title="ready")
    with uow() as u:
        version = u.jobtypes.latest("render")
        assert version is not None
        job = u.jobs.add(
            Job(id=0, title="big", jobtype_version_id=version.id, time_submitted=T0),
            ready=False,
        )
        u.tasks.add_many([Task(id=0, job_id=job.id, frame=f, time_submitted=T0) for f in (1, 2)])
        u.commit()
    assert job.id > ready.id and job.title == "big" and job.state is None
    with uow() as u:
        assert u.jobs.get(job.id) is None and u.jobs.find_by_title("big") is None
        assert [j.id for j in u.jobs.query(JobQuery())] == [ready.id]
        assert u.jobs.query(JobQuery(queued=True)) == [u.jobs.get(ready.id)]
        assert u.jobs.existing_ids([job.id, ready.id]) == {ready.id}
        assert job.id not in {p.id for p in u.scheduling.candidate_jobs()}
        assert u.jobs.unready_since(T0 + timedelta(seconds=1)) == [job.id]
        assert u.jobs.unready_since(T0) == []
        assert u.jobs.lock_unready(job.id) and not u.jobs.lock_unready(ready.id)
        assert not u.jobs.make_ready(ready.id)
        assert u.jobs.make_ready(job.id)
        assert not u.jobs.make_ready(job.id)
        u.commit()
    with uow() as u:
        made = u.jobs.get(job.id)
        assert made is not None and made.state is None and made.title == "big"
        assert job.id in {p.id for p in u.scheduling.candidate_jobs()}
        assert u.jobs.unready_since(T0 + timedelta(days=1)) == []
        assert u.jobs.discard_unready(job.id, 1)  # ready: never discarded
        assert len(u.tasks.of_job(job.id)) == 2


def test_a_job_not_ready_is_discarded_a_chunk_of_tasks_at_a_time(uow) -> None:
    with uow() as u:
        version = u.jobtypes.add("render")
        job = u.jobs.add(
            Job(id=0, title="big", jobtype_version_id=version.id, time_submitted=T0),
            ready=False,
        )
        frames = range(5)
        u.tasks.add_many([Task(id=0, job_id=job.id, frame=f, time_submitted=T0) for f in frames])
        u.commit()
    left = []
    while True:
        with uow() as u:
            gone = u.jobs.discard_unready(job.id, 2)
            u.commit()
        with uow() as u:
            left.append(len(u.tasks.of_job(job.id)))
        if gone:
            break
    assert left == [3, 1, 0]
    with uow() as u:
        assert u.jobs.unready_since(T0 + timedelta(days=1)) == []
        assert not u.jobs.make_ready(job.id) and not u.jobs.lock_unready(job.id)
        assert u.jobs.discard_unready(job.id, 2)


def test_a_duplicate_is_refused_with_already_exists_and_the_transaction_goes_on(uow) -> None:
    """The repositories never store a duplicate nor break the transaction (no unique violation
    on PostgreSQL): the service decides whether that is a conflict or the existing one."""
    from farm_domain.credentials import Token, User
    from farm_domain.errors import AlreadyExists
    from farm_domain.work import TaskLog

    agent = make_agent()
    job = add_job(uow)
    (task,) = add_tasks(uow, job, Task(id=0, job_id=0, frame=1.0))
    with uow() as u:
        u.agents.add(agent)
        maya = u.software.add("maya", [("2018", 100)])
        u.logs.add(TaskLog(0, task.id, 1, "a.csv", None, T0))
        u.tokens.add(Token("ci", Role.ADMIN, T0), "d" * 64)
        u.users.add(User("ana", Role.ADMIN, T0), "hash")
        u.commit()
    refused = {
        "agent": lambda u: u.agents.add(make_agent(id=agent.id, hostname="other")),
        "software": lambda u: u.software.add("maya", []),
        "version": lambda u: u.software.add_version(maya.id, "2018", 300),
        "job type version": lambda u: u.jobtypes.add("render", 1),
        "log": lambda u: u.logs.add(TaskLog(0, task.id, 1, "a.csv", agent.id, T0)),
        "token": lambda u: u.tokens.add(Token("ci", Role.ARTIST, T0), "e" * 64),
        "user": lambda u: u.users.add(User("ana", Role.ARTIST, T0), "other"),
    }
    for what, add in refused.items():
        with uow() as u:
            with pytest.raises(AlreadyExists):
                add(u)
            u.software.add("after " + what, [])  # the transaction is still usable
            u.commit()
    with uow() as u:
        assert u.agents.get(agent.id).hostname == "node1"
        assert [v.rank for v in u.software.get_by_name("maya").versions] == [100]
        assert [v.version for v in u.jobtypes.versions("render")] == [1]
        assert u.logs.get(task.id, 1, "a.csv").agent_id is None
        assert u.tokens.get("ci").role is Role.ADMIN
        assert u.users.get("ana").role is Role.ADMIN
        assert {s.name for s in u.software.list_all()} == {"maya"} | {
            "after " + what for what in refused
        }


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_constraint_violation_that_reaches_the_unit_of_work_is_a_conflict(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """The backstop: a write the repositories do not guard (a rename onto a name just taken,
    a log of a task just deleted) is a Conflict (409) with a message, never a 500."""
    from farm_domain.errors import AlreadyExists, Conflict
    from farm_domain.work import TaskLog

    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "database_url_pg")
    engine = create_database_engine(url)
    uow = SqlUnitOfWorkFactory(engine)
    with uow() as u:
        maya = u.software.add("maya", [])
        u.software.add("blender", [])
        u.commit()
    with pytest.raises(AlreadyExists, match="software"), uow() as u:
        u.software.rename(maya.id, "blender")
    with pytest.raises(Conflict, match="deleted or changed"), uow() as u:
        u.logs.add(TaskLog(0, 12345, 1, "a.csv", None, T0))
        u.commit()
    with uow() as u:
        assert u.software.get_by_name("maya") is not None
    engine.dispose()


@pytest.mark.postgres
def test_locking_a_jobs_tasks_waits_for_a_report_in_progress(database_url_pg: str) -> None:
    """A job's deletion takes its tasks' locks before the job's, as a report does: it waits
    for the report to finish rather than holding the job the report needs next."""
    import threading

    engine = create_database_engine(database_url_pg)
    uow = SqlUnitOfWorkFactory(engine)
    job = add_job(uow)
    first, second = add_tasks(
        uow, job, Task(id=0, job_id=0, frame=1.0), Task(id=0, job_id=0, frame=2.0)
    )
    locked = threading.Event()

    def delete() -> None:
        with uow() as u:
            u.tasks.lock_of_job(job.id)
            locked.set()
            u.jobs.delete(job.id)
            u.commit()

    with uow() as report:
        report.tasks.get(second.id, for_update=True)
        deleter = threading.Thread(target=delete)
        deleter.start()
        _wait_for_a_lock_wait(engine)
        assert not locked.is_set()
        report.jobs.set_state(job.id, WorkState.RUNNING)  # the job is free for the report
        report.commit()
    deleter.join(timeout=30)
    assert locked.is_set() and not deleter.is_alive()
    with uow() as u:
        assert u.jobs.get(job.id) is None and u.tasks.get(first.id) is None
    engine.dispose()


def _wait_for_a_lock_wait(engine) -> None:
    """Poll (with a deadline) until a session of the database waits for a row lock."""
    import time

    from sqlalchemy import text

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("nothing waited for the lock")


def test_a_job_hidden_for_its_deletion_and_its_tasks_are_seen_by_nobody(uow) -> None:
    job = add_job(uow, title="deleted")
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        other = u.jobs.add(attrs.evolve(job, id=0, title="kept"))
        u.commit()
    held, done, queued = add_tasks(
        uow,
        job,
        Task(id=0, job_id=0, frame=1, agent_id=agent.id, state=WorkState.RUNNING),
        Task(id=0, job_id=0, frame=2, agent_id=agent.id, state=WorkState.DONE),
        Task(id=0, job_id=0, frame=3),
    )
    with uow() as u:
        released = u.tasks.release_of_job(job.id, reason="test", at=T0)
        assert u.jobs.hide(job.id) and not u.jobs.hide(job.id)
        u.commit()
    assert [task.id for task in released] == [held.id]
    with uow() as u:
        assert u.jobs.get(job.id) is None and u.jobs.find_by_title("deleted") is None
        assert [j.id for j in u.jobs.query(JobQuery())] == [other.id]
        assert u.jobs.existing_ids([job.id]) == set()
        assert job.id not in {p.id for p in u.scheduling.candidate_jobs()}
        assert u.scheduling.lock_job(job.id) is None
        assert u.tasks.get(held.id) is None and u.tasks.get(queued.id, for_update=True) is None
        assert u.tasks.of_agent(agent.id) == [] and u.tasks.active_of_agent(agent.id) == []
        assert u.jobs.deleting() == [job.id]
        # A report that read the job before it was hidden never makes it seen again.
        u.jobs.set_state(job.id, WorkState.RUNNING)
        u.jobs.set_times(job.id, T0, None)
        u.commit()
    with uow() as u:
        assert u.jobs.get(job.id) is None and u.jobs.deleting() == [job.id]
        assert u.jobs.purge(other.id, 2) == ([], True)  # never a visible job
    left, deleted = [], []
    while True:
        with uow() as u:
            ids, gone = u.jobs.purge(job.id, 2)
            u.commit()
        deleted += ids
        with uow() as u:
            left.append(len(u.tasks.of_job(job.id)))
        if gone:
            break
    assert sorted(deleted) == sorted([held.id, done.id, queued.id])
    assert left == [1, 0]
    with uow() as u:
        assert u.jobs.deleting() == [] and u.jobs.get(other.id) is not None
        assert u.jobs.purge(job.id, 2) == ([], True)


def test_explanations_read_any_jobs_profile_the_queue_by_readiness_and_retried_jobs(
    uow,
) -> None:
    from farm_domain.scheduling import JobQueue, RankRange
    from farm_domain.work import SoftwareRequirement, TagRequirement

    agent_a, agent_b = make_agent(hostname="a", free_ram=1000), make_agent(hostname="b")
    with uow() as u:
        maya = u.software.add("maya", [("2017", 100), ("2018", 200)])
        u.agents.add(agent_a)
        u.agents.add(agent_b)
        u.agents.attach_software(agent_b.id, [maya.versions[0].id])
        u.agents.replace_tags(agent_b.id, frozenset({"gpu"}))
        version = u.jobtypes.add("render")
        paused = u.jobs.add(
            Job(
                id=0,
                title="paused",
                jobtype_version_id=version.id,
                state=WorkState.PAUSED,
                time_submitted=T0,
                ram=512,
                maximum_agents=2,
                tag_requirements=(TagRequirement("gpu"),),
                software_requirements=(
                    SoftwareRequirement(maya.id, "maya", maya.versions[1].id, "2018"),
                ),
            )
        )
        u.tasks.add_many(
            [
                Task(id=0, job_id=paused.id, frame=1.0),
                Task(id=0, job_id=paused.id, frame=2.0, not_before=T0),
                Task(
                    id=0,
                    job_id=paused.id,
                    frame=3.0,
                    not_before=T0 + timedelta(seconds=30),
                    failed_on=agent_a.id,
                ),
                Task(id=0, job_id=paused.id, frame=4.0, not_before=T0 + timedelta(seconds=90)),
                Task(id=0, job_id=paused.id, frame=5.0, agent_id=agent_a.id),
                Task(id=0, job_id=paused.id, frame=6.0, state=WorkState.DONE),
            ]
        )
        empty = u.jobs.add(
            Job(id=0, title="empty", jobtype_version_id=version.id, time_submitted=T0)
        )
        u.commit()
    with uow(read_only=True) as u:
        # Not a candidate (paused), yet its profile is read as a candidate's would be.
        assert paused.id not in {p.id for p in u.scheduling.candidate_jobs()}
        profile = u.scheduling.job_profile(paused.id)
        assert (profile.id, profile.ram, profile.maximum_agents, profile.busy_agents) == (
            paused.id,
            512,
            2,
            1,
        )
        assert profile.requirements == (RankRange(maya.id, 200, None),)
        assert profile.tag_requirements == (("gpu", False),)
        assert u.scheduling.job_profile(10**6) is None
        # Queued: four; ready at T0 + 30 s: those without not_before or not after it.
        now = T0 + timedelta(seconds=30)
        assert u.scheduling.job_queue(paused.id, now) == JobQueue(4, 3, T0 + timedelta(seconds=90))
        # The first ready ones by frame, as the scheduler reads them (none asked: none read).
        first = u.scheduling.job_queue(paused.id, now, first=2).first
        assert [(t.frame, t.not_before) for t in first] == [(1.0, None), (2.0, T0)]
        assert [t.frame for t in u.scheduling.job_queue(paused.id, now, first=10).first] == [
            1.0,
            2.0,
            3.0,
        ]
        # The jobs with a ready queued task the agent failed last.
        assert u.scheduling.retried_on(agent_a.id, now) == {paused.id}
        assert u.scheduling.retried_on(agent_a.id, T0) == set()
        assert u.scheduling.retried_on(agent_b.id, now) == set()
        assert u.scheduling.job_queue(paused.id, T0 + timedelta(hours=1)) == JobQueue(4, 4, None)
        assert u.scheduling.job_queue(empty.id, now) == JobQueue(0, 0, None)
        assert u.jobs.titles([paused.id, empty.id, 10**6]) == {
            paused.id: "paused",
            empty.id: "empty",
        }
        assert u.jobs.titles([]) == {}


def test_canceling_a_job_cancels_its_unheld_unfinished_tasks_in_one_statement(uow) -> None:
    job = add_job(uow, title="to cancel")
    agent = make_agent()
    with uow() as u:
        u.agents.add(agent)
        other = u.jobs.add(attrs.evolve(job, id=0, title="other"))
        u.commit()
    held, done, failed, queued, delayed = add_tasks(
        uow,
        job,
        Task(id=0, job_id=0, frame=1, agent_id=agent.id, state=WorkState.RUNNING),
        Task(id=0, job_id=0, frame=2, state=WorkState.DONE),
        Task(id=0, job_id=0, frame=3, state=WorkState.FAILED),
        Task(id=0, job_id=0, frame=4),
        Task(id=0, job_id=0, frame=5, not_before=T0),
    )
    (elsewhere,) = add_tasks(uow, other, Task(id=0, job_id=0, frame=1))
    with uow() as u:
        assert [t.id for t in u.tasks.release_of_job(job.id, reason="test", at=T0)] == [held.id]
        assert u.tasks.cancel_unfinished(job.id, "canceled", T0, why="test") == 3
        u.commit()
    with uow(read_only=True) as u:
        states = {t.id: (t.state, t.reason, t.agent_id) for t in u.tasks.of_job(job.id)}
        assert states == {
            held.id: (WorkState.CANCELED, "canceled", None),
            done.id: (WorkState.DONE, None, None),
            failed.id: (WorkState.FAILED, None, None),
            queued.id: (WorkState.CANCELED, "canceled", None),
            delayed.id: (WorkState.CANCELED, "canceled", None),
        }
        assert all(
            t.time_finished == T0 and t.not_before is None
            for t in u.tasks.of_job(job.id)
            if t.state is WorkState.CANCELED
        )
        assert u.tasks.get(elsewhere.id) == elsewhere
        assert u.tasks.cancel_unfinished(job.id, "canceled", T0, why="test") == 0
