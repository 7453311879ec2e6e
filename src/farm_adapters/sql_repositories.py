"""Repositories and the unit of work over SQLAlchemy Core, mapping rows to domain entities."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Self

import attrs
import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Uuid,
    and_,
    bindparam,
    delete,
    distinct,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, OperationalError

from farm_adapters import tables as t
from farm_adapters.database import READ_ONLY, SqliteWriterLock, sqlite_writer_lock
from farm_domain.agents import Agent, AgentOverview, AgentQuery, AgentSummary, SoftwareRef
from farm_domain.enums import AgentState, OsClass, UseAddress, WorkState
from farm_domain.errors import Unavailable
from farm_domain.scheduling import (
    AgentContact,
    AgentProfile,
    JobAgentBlock,
    JobProfile,
    RankRange,
)
from farm_domain.software import Software, SoftwareVersion
from farm_domain.work import (
    Job,
    JobQuery,
    JobSummary,
    JobTypeVersion,
    SoftwareRequirement,
    TagRequirement,
    Task,
    TaskLog,
    TaskStatus,
)


def _insert_ignoring_duplicates(connection: Connection, table: Any) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


# -- agents ----------------------------------------------------------------------------------


def _agent_row(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "hostname": agent.hostname,
        "remote_ip": agent.remote_ip,
        "use_address": agent.use_address.label,
        "os_class": agent.os_class.label if agent.os_class else None,
        "os_fullname": agent.os_fullname,
        "cpu_name": agent.cpu_name,
        "ram": agent.ram,
        "free_ram": agent.free_ram,
        "cpus": agent.cpus,
        "port": agent.port,
        "time_offset": agent.time_offset,
        "version": agent.version,
        "upgrade_to": agent.upgrade_to,
        "ram_allocation": agent.ram_allocation,
        "cpu_allocation": agent.cpu_allocation,
        "restart_requested": agent.restart_requested,
        "state": agent.state.label,
        "disabled": agent.disabled,
        "last_heard_from": agent.last_heard_from,
        "last_polled": agent.last_polled,
    }


def _enum(cls: Any, label: str) -> Any:
    return next(member for member in cls if member.label == label)


# The heartbeat's statements, built once: building a statement and its cache key cost more
# than running it on SQLite (profiled: about half of a heartbeat).
_AGENT_ID = bindparam("agent_id", type_=Uuid())


def _agent_statement(dialect: str, *, for_update: bool, with_active: bool = False) -> Any:
    """The agent's row with its MAC addresses, GPUs and software aggregated into JSON columns:
    one round trip instead of two (on PostgreSQL each costs ~150 us of loopback and driver)."""
    if dialect == "postgresql":
        group, row_of = func.json_agg, func.json_build_array
    else:
        group, row_of = func.json_group_array, func.json_array
    mac, ag = t.agent_mac_addresses.c, t.agent_gpus.c
    asv, sv = t.agent_software_versions.c, t.software_versions.c
    macs = select(group(mac.mac_address)).where(mac.agent_id == t.agents.c.id)
    gpus = (
        select(group(t.gpus.c.fullname))
        .join(t.gpus, t.gpus.c.id == ag.gpu_id)
        .where(ag.agent_id == t.agents.c.id)
    )
    software = (
        select(group(row_of(t.software.c.software, sv.version, sv.rank)))
        .select_from(t.agent_software_versions)
        .join(t.software_versions, sv.id == asv.software_version_id)
        .join(t.software, t.software.c.id == sv.software_id)
        .where(asv.agent_id == t.agents.c.id)
    )
    columns = [
        t.agents,
        macs.scalar_subquery().label("set_macs"),
        gpus.scalar_subquery().label("set_gpus"),
        software.scalar_subquery().label("set_software"),
    ]
    if with_active:
        tk = t.tasks.c
        columns.append(
            select(group(row_of(tk.id, tk.attempts)))
            .where(tk.agent_id == t.agents.c.id, t.TASK_IS_ACTIVE)
            .scalar_subquery()
            .label("active_attempts")
        )
    statement = select(*columns).where(t.agents.c.id == _AGENT_ID)
    # SKIP LOCKED: the subqueries read the statement's snapshot, taken before any wait for the
    # row lock, so a read that had to wait would pair the current row with the sets and tasks
    # as they were before the lock holder committed. A locked row reads as no row instead, and
    # the repository waits for the lock with a statement of its own, then reads again.
    return statement.with_for_update(of=t.agents, skip_locked=True) if for_update else statement


_GET_AGENT = {
    (dialect, for_update): _agent_statement(dialect, for_update=for_update)
    for dialect in ("sqlite", "postgresql")
    for for_update in (False, True)
}
_GET_AGENT_WITH_ACTIVE = {
    dialect: _agent_statement(dialect, for_update=True, with_active=True)
    for dialect in ("sqlite", "postgresql")
}
_LOCK_AGENT = select(t.agents.c.id).where(t.agents.c.id == _AGENT_ID).with_for_update()


def _json_list(value: Any) -> list[Any]:
    """An aggregated set: a list from psycopg, JSON text from SQLite, NULL for none."""
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, str | bytes) else list(value)


_SAVE_AGENT = update(t.agents).where(t.agents.c.id == bindparam("agent_key", type_=Uuid()))


class SqlAgentRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, agent_id: uuid.UUID, *, for_update: bool = False) -> Agent | None:
        statement = _GET_AGENT[self._c.dialect.name, for_update]
        row = self._read(statement, agent_id, locking=for_update)
        return None if row is None else self._agent_of(row)

    def get_with_active(self, agent_id: uuid.UUID) -> tuple[Agent, dict[int, int]] | None:
        statement = _GET_AGENT_WITH_ACTIVE[self._c.dialect.name]
        row = self._read(statement, agent_id, locking=True)
        if row is None:
            return None
        active = {
            task_id: attempts for task_id, attempts in _json_list(row._mapping["active_attempts"])
        }
        return self._agent_of(row), active

    def _read(self, statement: Any, agent_id: uuid.UUID, *, locking: bool) -> Row[Any] | None:
        """One round trip when the row is free; when another transaction holds it (or it does
        not exist), wait for its lock and read again with a fresh snapshot."""
        params = {"agent_id": agent_id}
        row = self._c.execute(statement, params).first()
        if row is not None or not locking:
            return row
        if self._c.execute(_LOCK_AGENT, params).first() is None:
            return None
        return self._c.execute(statement, params).first()

    @staticmethod
    def _agent_of(row: Row[Any]) -> Agent:
        m = row._mapping
        software = sorted(
            (name, rank, version) for name, version, rank in _json_list(m["set_software"])
        )
        return _agent_from(
            row,
            frozenset(_json_list(m["set_macs"])),
            frozenset(_json_list(m["set_gpus"])),
            tuple(SoftwareRef(name, version) for name, _, version in software),
        )

    def add(self, agent: Agent) -> None:
        self._c.execute(insert(t.agents), [_agent_row(agent)])
        if agent.mac_addresses:
            self.replace_mac_addresses(agent.id, agent.mac_addresses)
        if agent.gpus:
            self.replace_gpus(agent.id, agent.gpus)

    def save(self, agent: Agent, previous: Agent | None = None) -> None:
        row = _agent_row(agent)
        del row["id"]
        if previous is not None:
            # Only what changed: SQLite rewrites the entries of every index on a column in
            # the SET clause, changed or not (a heartbeat touched all six of the agents').
            before = _agent_row(previous)
            row = {key: value for key, value in row.items() if value != before[key]}
            if not row:
                return
        row["agent_key"] = agent.id
        self._c.execute(_SAVE_AGENT, row)

    def replace_mac_addresses(self, agent_id: uuid.UUID, macs: frozenset[str]) -> None:
        self._c.execute(
            delete(t.agent_mac_addresses).where(t.agent_mac_addresses.c.agent_id == agent_id)
        )
        if macs:
            self._c.execute(
                insert(t.agent_mac_addresses),
                [{"agent_id": agent_id, "mac_address": mac} for mac in sorted(macs)],
            )

    def replace_gpus(self, agent_id: uuid.UUID, names: frozenset[str]) -> None:
        self._c.execute(delete(t.agent_gpus).where(t.agent_gpus.c.agent_id == agent_id))
        if not names:
            return
        self._c.execute(
            _insert_ignoring_duplicates(self._c, t.gpus),
            [{"fullname": name} for name in sorted(names)],
        )
        ids = self._c.execute(select(t.gpus.c.id).where(t.gpus.c.fullname.in_(names))).scalars()
        self._c.execute(
            insert(t.agent_gpus), [{"agent_id": agent_id, "gpu_id": gpu_id} for gpu_id in ids]
        )

    def attach_software(self, agent_id: uuid.UUID, version_ids: Iterable[int]) -> None:
        rows = [{"agent_id": agent_id, "software_version_id": v} for v in version_ids]
        if rows:
            self._c.execute(_insert_ignoring_duplicates(self._c, t.agent_software_versions), rows)

    def tags(self, agent_id: uuid.UUID) -> frozenset[str]:
        return frozenset(
            self._c.execute(
                select(t.agent_tags.c.tag).where(t.agent_tags.c.agent_id == agent_id)
            ).scalars()
        )

    def replace_tags(self, agent_id: uuid.UUID, tags: frozenset[str]) -> None:
        self._c.execute(delete(t.agent_tags).where(t.agent_tags.c.agent_id == agent_id))
        if tags:
            self._c.execute(
                insert(t.agent_tags), [{"agent_id": agent_id, "tag": tag} for tag in sorted(tags)]
            )

    def detach_software(self, agent_id: uuid.UUID, version_id: int) -> None:
        self._c.execute(
            delete(t.agent_software_versions).where(
                t.agent_software_versions.c.agent_id == agent_id,
                t.agent_software_versions.c.software_version_id == version_id,
            )
        )

    def delete(self, agent_id: uuid.UUID) -> bool:
        result = self._c.execute(delete(t.agents).where(t.agents.c.id == agent_id))
        return result.rowcount > 0

    def query(self, query: AgentQuery) -> list[AgentSummary]:
        a = t.agents.c
        statement = select(a.id, a.hostname, a.port, a.remote_ip)
        return [
            AgentSummary(*row)
            for row in self._c.execute(_filtered(statement, query, self._c.dialect.name))
        ]

    def hostnames(self, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        wanted = list(set(agent_ids))
        if not wanted:
            return {}
        rows = self._c.execute(
            select(t.agents.c.id, t.agents.c.hostname).where(t.agents.c.id.in_(wanted))
        )
        return {agent_id: hostname for agent_id, hostname in rows}

    def overview(self, query: AgentQuery) -> list[AgentOverview]:
        a, tk = t.agents.c, t.tasks.c
        active = (
            select(func.count())
            .where(tk.agent_id == a.id, t.TASK_IS_ACTIVE)
            .correlate(t.agents)
            .scalar_subquery()
        )
        statement = select(
            a.id,
            a.hostname,
            a.remote_ip,
            a.port,
            a.state,
            a.disabled,
            a.ram,
            a.free_ram,
            a.cpus,
            a.last_heard_from,
            active.label("active"),
        )
        rows = self._c.execute(_filtered(statement, query, self._c.dialect.name)).all()
        ids = [row.id for row in rows]
        software: dict[uuid.UUID, list[SoftwareRef]] = {}
        if ids:
            for agent_id, name, version in self._c.execute(
                select(
                    t.agent_software_versions.c.agent_id,
                    t.software.c.software,
                    t.software_versions.c.version,
                )
                .join(
                    t.software_versions,
                    t.software_versions.c.id == t.agent_software_versions.c.software_version_id,
                )
                .join(t.software, t.software.c.id == t.software_versions.c.software_id)
                .where(t.agent_software_versions.c.agent_id.in_(ids))
                .order_by(t.software.c.software, t.software_versions.c.rank)
            ):
                software.setdefault(agent_id, []).append(SoftwareRef(name, version))
        overviews = []
        for row in rows:
            state = _enum(AgentState, row.state)
            shown = (
                AgentState.DISABLED if row.disabled and state is not AgentState.OFFLINE else state
            )
            overviews.append(
                AgentOverview(
                    row.id,
                    row.hostname,
                    row.remote_ip,
                    row.port,
                    shown,
                    row.ram,
                    row.free_ram,
                    row.cpus,
                    row.last_heard_from,
                    row.active,
                    tuple(software.get(row.id, ())),
                )
            )
        return overviews


_RANGE_FILTERS = ("min_ram", "max_ram", "min_cpus", "max_cpus")
# SQLite's planner, without histograms, guesses a range keeps a quarter of the rows and walks
# the whole (hostname, id) index to avoid a sort; unary + hides that index from ORDER BY, so
# the range's index finds the rows and they are sorted (100k agents, 4,686 matching:
# 18.5 -> 3 ms). Not for paged queries, where walking in order stops early.
_SQLITE_SORTED = (literal_column("+agents.hostname"), literal_column("+agents.id"))


def _filtered(statement: Any, query: AgentQuery, dialect: str) -> Any:
    """The AgentQuery's filters, order (hostname, id) and paging applied to a statement over
    the agents table."""
    a = t.agents.c
    if (
        dialect == "sqlite"
        and query.limit is None
        and any(getattr(query, name) is not None for name in _RANGE_FILTERS)
    ):
        statement = statement.order_by(*_SQLITE_SORTED)
    else:
        statement = statement.order_by(a.hostname, a.id)
    conditions = []
    if query.min_ram is not None:
        conditions.append(a.ram >= query.min_ram)
    if query.max_ram is not None:
        conditions.append(a.ram <= query.max_ram)
    if query.min_cpus is not None:
        conditions.append(a.cpus >= query.min_cpus)
    if query.max_cpus is not None:
        conditions.append(a.cpus <= query.max_cpus)
    if query.hostname is not None:
        conditions.append(a.hostname == query.hostname)
    if query.remote_ip is not None:
        conditions.append(a.remote_ip == query.remote_ip)
    if query.port is not None:
        conditions.append(a.port == query.port)
    if query.state is AgentState.DISABLED:
        conditions += [a.disabled.is_(True), a.state != "offline"]
    elif query.state is AgentState.OFFLINE:
        conditions.append(a.state == "offline")
    elif query.state is not None:
        conditions += [a.state == query.state.label, a.disabled.is_(False)]
    if conditions:
        statement = statement.where(and_(*conditions))
    if query.limit is not None:
        statement = statement.limit(query.limit)
    if query.offset:
        statement = statement.offset(query.offset)
    return statement


def _agent_from(
    row: Row[Any], macs: frozenset[str], gpus: frozenset[str], software: tuple[SoftwareRef, ...]
) -> Agent:
    m = row._mapping
    return Agent(
        id=m["id"],
        hostname=m["hostname"],
        remote_ip=m["remote_ip"],
        use_address=_enum(UseAddress, m["use_address"]),
        os_class=_enum(OsClass, m["os_class"]) if m["os_class"] else None,
        os_fullname=m["os_fullname"],
        cpu_name=m["cpu_name"],
        ram=m["ram"],
        free_ram=m["free_ram"],
        cpus=m["cpus"],
        port=m["port"],
        time_offset=m["time_offset"],
        version=m["version"],
        upgrade_to=m["upgrade_to"],
        ram_allocation=m["ram_allocation"],
        cpu_allocation=m["cpu_allocation"],
        restart_requested=m["restart_requested"],
        state=_enum(AgentState, m["state"]),
        disabled=m["disabled"],
        last_heard_from=m["last_heard_from"],
        last_polled=m["last_polled"],
        mac_addresses=macs,
        gpus=gpus,
        software=software,
    )


# -- tasks and jobs -----------------------------------------------------------------------------


def _task_row(task: Task) -> dict[str, Any]:
    return {
        "job_id": task.job_id,
        "frame": task.frame,
        "state": task.state.value if task.state else None,
        "priority": task.priority,
        "attempts": task.attempts,
        "failures": task.failures,
        "agent_id": task.agent_id,
        "sent_to_agent": task.sent_to_agent,
        "sent_at": task.sent_at,
        "last_error": task.last_error,
        "hidden": task.hidden,
        "progress": task.progress,
        "time_submitted": task.time_submitted,
        "time_started": task.time_started,
        "time_finished": task.time_finished,
    }


def _task_from(m: Any) -> Task:
    return Task(
        id=m["id"],
        job_id=m["job_id"],
        frame=m["frame"],
        state=WorkState(m["state"]) if m["state"] else None,
        priority=m["priority"],
        attempts=m["attempts"],
        failures=m["failures"],
        agent_id=m["agent_id"],
        sent_to_agent=m["sent_to_agent"],
        sent_at=m["sent_at"],
        last_error=m["last_error"],
        hidden=m["hidden"],
        progress=m["progress"],
        time_submitted=m["time_submitted"],
        time_started=m["time_started"],
        time_finished=m["time_finished"],
    )


_ACTIVE_OF_AGENT = (
    select(t.tasks).where(t.tasks.c.agent_id == _AGENT_ID, t.TASK_IS_ACTIVE).order_by(t.tasks.c.id)
)
_ACTIVE_OF_AGENT_FOR_UPDATE = _ACTIVE_OF_AGENT.with_for_update()


class SqlTaskRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, task_id: int, *, for_update: bool = False) -> Task | None:
        statement = select(t.tasks).where(t.tasks.c.id == task_id)
        if for_update:
            statement = statement.with_for_update()
        row = self._c.execute(statement).first()
        return None if row is None else _task_from(row._mapping)

    def add(self, task: Task) -> Task:
        new_id = self._c.execute(insert(t.tasks).values(_task_row(task))).inserted_primary_key[0]
        return attrs.evolve(task, id=new_id)

    def save(self, task: Task) -> None:
        self._c.execute(update(t.tasks).where(t.tasks.c.id == task.id).values(_task_row(task)))

    def active_of_agent(self, agent_id: uuid.UUID, *, for_update: bool = False) -> list[Task]:
        statement = _ACTIVE_OF_AGENT_FOR_UPDATE if for_update else _ACTIVE_OF_AGENT
        return [
            _task_from(row._mapping) for row in self._c.execute(statement, {"agent_id": agent_id})
        ]

    def of_agent(self, agent_id: uuid.UUID) -> list[tuple[Task, JobSummary]]:
        statement = (
            select(
                t.tasks,
                t.jobs.c.title.label("job_title"),
                t.jobtypes.c.name.label("jobtype_name"),
                t.jobtypes.c.id.label("jobtype_id"),
                t.jobtype_versions.c.version.label("jobtype_version"),
            )
            .join(t.jobs, t.jobs.c.id == t.tasks.c.job_id)
            .join(t.jobtype_versions, t.jobtype_versions.c.id == t.jobs.c.jobtype_version_id)
            .join(t.jobtypes, t.jobtypes.c.id == t.jobtype_versions.c.jobtype_id)
            .where(t.tasks.c.agent_id == agent_id)
            .order_by(t.tasks.c.id)
        )
        result = []
        for row in self._c.execute(statement):
            m = row._mapping
            summary = JobSummary(
                id=m["job_id"],
                title=m["job_title"],
                jobtype=m["jobtype_name"],
                jobtype_id=m["jobtype_id"],
                jobtype_version=m["jobtype_version"],
            )
            result.append((_task_from(m), summary))
        return result

    def add_many(self, tasks: Sequence[Task]) -> None:
        if tasks:
            self._c.execute(insert(t.tasks), [_task_row(task) for task in tasks])

    def of_job(self, job_id: int) -> list[Task]:
        rows = self._c.execute(
            select(t.tasks)
            .where(t.tasks.c.job_id == job_id)
            .order_by(t.tasks.c.frame, t.tasks.c.id)
        )
        return [_task_from(row._mapping) for row in rows]

    def status_counts_of(self, job_ids: Iterable[int]) -> dict[int, dict[TaskStatus, int]]:
        wanted = list(job_ids)
        found: dict[int, dict[TaskStatus, int]] = {}
        if not wanted:
            return found
        rows = self._c.execute(
            select(t.tasks.c.job_id, t.tasks.c.state, t.tasks.c.agent_id.is_(None), func.count())
            .where(t.tasks.c.job_id.in_(wanted))
            .group_by(t.tasks.c.job_id, t.tasks.c.state, t.tasks.c.agent_id.is_(None))
        )
        for job_id, state, unowned, count in rows:
            status = _status_of(state, unowned)
            counts = found.setdefault(job_id, {})
            counts[status] = counts.get(status, 0) + count
        return found

    def busy_agents_of(self, job_ids: Iterable[int]) -> dict[int, int]:
        wanted = list(job_ids)
        if not wanted:
            return {}
        tk = t.tasks.c
        return dict(
            self._c.execute(
                select(tk.job_id, func.count(distinct(tk.agent_id)))
                .where(tk.job_id.in_(wanted), tk.agent_id.is_not(None), t.TASK_IS_ACTIVE)
                .group_by(tk.job_id)
            ).all()
        )

    def status_counts(self, job_id: int) -> dict[TaskStatus, int]:
        rows = self._c.execute(
            select(t.tasks.c.state, t.tasks.c.agent_id.is_(None), func.count())
            .where(t.tasks.c.job_id == job_id)
            .group_by(t.tasks.c.state, t.tasks.c.agent_id.is_(None))
        )
        counts: dict[TaskStatus, int] = {}
        for state, unowned, count in rows:
            status = _status_of(state, unowned)
            counts[status] = counts.get(status, 0) + count
        return counts


def _status_of(state: str | None, unowned: bool) -> TaskStatus:
    if state is None:
        return TaskStatus.QUEUED if unowned else TaskStatus.ASSIGNED
    return TaskStatus(state)


def _requirements_of(
    connection: Connection, owner: Any, owner_ids: list[int]
) -> dict[int, list[SoftwareRequirement]]:
    """Software requirements by owner id, from the requirements table ``owner`` belongs to
    (a job's or a job type version's), with the catalogue's current names and bounds."""
    if not owner_ids:
        return {}
    r = owner.table.c
    low = t.software_versions.alias("low")
    high = t.software_versions.alias("high")
    rows = connection.execute(
        select(
            owner,
            r.software_id,
            t.software.c.software,
            r.min_version_id,
            low.c.version,
            r.max_version_id,
            high.c.version,
        )
        .join(t.software, t.software.c.id == r.software_id)
        .outerjoin(low, low.c.id == r.min_version_id)
        .outerjoin(high, high.c.id == r.max_version_id)
        .where(owner.in_(owner_ids))
        .order_by(t.software.c.software)
    )
    found: dict[int, list[SoftwareRequirement]] = {}
    for owner_id, *fields in rows:
        found.setdefault(owner_id, []).append(SoftwareRequirement(*fields))
    return found


def _tag_requirements_of(
    connection: Connection, job_ids: list[int]
) -> dict[int, list[tuple[str, bool]]]:
    if not job_ids:
        return {}
    r = t.job_tag_requirements.c
    found: dict[int, list[tuple[str, bool]]] = {}
    for job_id, tag, negate in connection.execute(
        select(r.job_id, r.tag, r.negate).where(r.job_id.in_(job_ids)).order_by(r.tag)
    ):
        found.setdefault(job_id, []).append((tag, negate))
    return found


_JOB_SCALARS = (
    "title",
    "jobtype_version_id",
    "priority",
    "weight",
    "requeue",
    "frame_start",
    "frame_end",
    "frame_by",
    "batch",
    "ram",
    "ram_warning",
    "ram_max",
    "cpus",
    "minimum_agents",
    "maximum_agents",
    "data",
    "environ",
    "user",
    "time_submitted",
    "time_started",
    "time_finished",
)


def _job_row(job: Job) -> dict[str, Any]:
    row = {name: getattr(job, name) for name in _JOB_SCALARS}
    row["state"] = job.state.value if job.state else None
    return row


class SqlJobRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def _select(
        self,
        *conditions: Any,
        for_update: bool = False,
        order: Any = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Job]:
        j = t.jobs.c
        statement = (
            select(
                t.jobs,
                t.jobtypes.c.name.label("jobtype_name"),
                t.jobtype_versions.c.version.label("jobtype_number"),
            )
            .join(t.jobtype_versions, t.jobtype_versions.c.id == j.jobtype_version_id)
            .join(t.jobtypes, t.jobtypes.c.id == t.jobtype_versions.c.jobtype_id)
            .where(*conditions)
            .order_by(*(order if order is not None else [j.id.desc()]))
        )
        if for_update:
            statement = statement.with_for_update(of=t.jobs)
        if limit is not None:
            statement = statement.limit(limit)
        if offset:
            statement = statement.offset(offset)
        rows = self._c.execute(statement).all()
        ids = [row.id for row in rows]
        tags = self._grouped(
            select(t.job_tags.c.job_id, t.job_tags.c.tag)
            .where(t.job_tags.c.job_id.in_(ids))
            .order_by(t.job_tags.c.tag),
            ids,
        )
        parents = self._grouped(
            select(t.job_parents.c.child_id, t.job_parents.c.parent_id)
            .where(t.job_parents.c.child_id.in_(ids))
            .order_by(t.job_parents.c.parent_id),
            ids,
        )
        requirements = _requirements_of(self._c, t.job_software_requirements.c.job_id, ids)
        tag_requirements = _tag_requirements_of(self._c, ids)
        jobs = []
        for row in rows:
            m = row._mapping
            jobs.append(
                Job(
                    id=m["id"],
                    state=WorkState(m["state"]) if m["state"] else None,
                    **{name: m[name] for name in _JOB_SCALARS},
                    tags=tuple(tags.get(m["id"], ())),
                    parents=tuple(parents.get(m["id"], ())),
                    software_requirements=tuple(requirements.get(m["id"], ())),
                    tag_requirements=tuple(
                        TagRequirement(tag, negate)
                        for tag, negate in tag_requirements.get(m["id"], ())
                    ),
                    jobtype=m["jobtype_name"],
                    jobtype_version=m["jobtype_number"],
                )
            )
        return jobs

    def _grouped(self, statement: Any, ids: list[int]) -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {}
        if ids:
            for key, value in self._c.execute(statement):
                found.setdefault(key, []).append(value)
        return found

    def get(self, job_id: int, *, for_update: bool = False) -> Job | None:
        found = self._select(t.jobs.c.id == job_id, for_update=for_update)
        return found[0] if found else None

    def add(self, job: Job) -> Job:
        new_id = self._c.execute(insert(t.jobs).values(_job_row(job))).inserted_primary_key[0]
        self._replace_tags(new_id, job.tags)
        if job.parents:
            self._c.execute(
                insert(t.job_parents), [{"child_id": new_id, "parent_id": p} for p in job.parents]
            )
        if job.tag_requirements:
            self._c.execute(
                insert(t.job_tag_requirements),
                [
                    {"job_id": new_id, "tag": r.tag, "negate": r.negate}
                    for r in job.tag_requirements
                ],
            )
        if job.software_requirements:
            self._c.execute(
                insert(t.job_software_requirements),
                [
                    {
                        "job_id": new_id,
                        "software_id": r.software_id,
                        "min_version_id": r.min_version_id,
                        "max_version_id": r.max_version_id,
                    }
                    for r in job.software_requirements
                ],
            )
        found = self.get(new_id)
        assert found is not None
        return found

    def _replace_tags(self, job_id: int, tags: tuple[str, ...]) -> None:
        self._c.execute(delete(t.job_tags).where(t.job_tags.c.job_id == job_id))
        if tags:
            self._c.execute(
                insert(t.job_tags), [{"job_id": job_id, "tag": tag} for tag in sorted(set(tags))]
            )

    def save(self, job: Job) -> None:
        self._c.execute(update(t.jobs).where(t.jobs.c.id == job.id).values(_job_row(job)))
        self._replace_tags(job.id, job.tags)

    def set_state(self, job_id: int, state: WorkState | None) -> None:
        self._c.execute(
            update(t.jobs).where(t.jobs.c.id == job_id).values(state=state.value if state else None)
        )

    def set_times(self, job_id: int, started: datetime | None, finished: datetime | None) -> None:
        self._c.execute(
            update(t.jobs)
            .where(t.jobs.c.id == job_id)
            .values(time_started=started, time_finished=finished)
        )

    def query(self, query: JobQuery) -> list[Job]:
        conditions = []
        if query.queued:
            conditions.append(t.jobs.c.state.is_(None))
        elif query.state is not None:
            conditions.append(t.jobs.c.state == query.state.value)
        if query.title is not None:
            conditions.append(t.jobs.c.title == query.title)
        return self._select(*conditions, limit=query.limit, offset=query.offset)

    def find_by_title(self, title: str) -> Job | None:
        found = self._select(t.jobs.c.title == title, limit=1)
        return found[0] if found else None

    def existing_ids(self, job_ids: Iterable[int]) -> set[int]:
        wanted = list(job_ids)
        if not wanted:
            return set()
        return set(self._c.execute(select(t.jobs.c.id).where(t.jobs.c.id.in_(wanted))).scalars())

    def delete(self, job_id: int) -> None:
        self._c.execute(delete(t.jobs).where(t.jobs.c.id == job_id))


class SqlJobTypeRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(
        self, name: str, version: int = 1, spec: JobTypeVersion | None = None
    ) -> JobTypeVersion:
        jobtype_id = self._c.execute(
            select(t.jobtypes.c.id).where(t.jobtypes.c.name == name)
        ).scalar()
        description = spec.description if spec else None
        if jobtype_id is None:
            jobtype_id = self._c.execute(
                insert(t.jobtypes).values(name=name, description=description)
            ).inserted_primary_key[0]
        elif spec is not None:
            self._c.execute(
                update(t.jobtypes)
                .where(t.jobtypes.c.id == jobtype_id)
                .values(description=description)
            )
        version_id = self._c.execute(
            insert(t.jobtype_versions).values(
                jobtype_id=jobtype_id,
                version=version,
                classname=spec.classname if spec else None,
                code=spec.code if spec else None,
                max_batch=spec.max_batch if spec else None,
                batch_contiguous=spec.batch_contiguous if spec else True,
            )
        ).inserted_primary_key[0]
        if spec is not None and spec.software_requirements:
            self._c.execute(
                insert(t.jobtype_software_requirements),
                [
                    {
                        "jobtype_version_id": version_id,
                        "software_id": r.software_id,
                        "min_version_id": r.min_version_id,
                        "max_version_id": r.max_version_id,
                    }
                    for r in spec.software_requirements
                ],
            )
        found = self._select(t.jobtype_versions.c.id == version_id)
        return found[0]

    def _select(self, *conditions: Any) -> list[JobTypeVersion]:
        v, j = t.jobtype_versions.c, t.jobtypes.c
        rows = self._c.execute(
            select(t.jobtype_versions, j.name, j.description)
            .join(t.jobtypes, j.id == v.jobtype_id)
            .where(*conditions)
            .order_by(j.name, v.version)
        ).all()
        requirements = _requirements_of(
            self._c, t.jobtype_software_requirements.c.jobtype_version_id, [row.id for row in rows]
        )
        return [
            JobTypeVersion(
                id=row.id,
                jobtype_id=row.jobtype_id,
                name=row.name,
                version=row.version,
                description=row.description,
                classname=row.classname,
                code=row.code,
                max_batch=row.max_batch,
                batch_contiguous=row.batch_contiguous,
                software_requirements=tuple(requirements.get(row.id, ())),
            )
            for row in rows
        ]

    def latest(self, name: str) -> JobTypeVersion | None:
        found = self.versions(name)
        return found[-1] if found else None

    def get_version(self, name: str, version: int) -> JobTypeVersion | None:
        found = self._select(t.jobtypes.c.name == name, t.jobtype_versions.c.version == version)
        return found[0] if found else None

    def name_of(self, jobtype_id: int) -> str | None:
        return self._c.execute(
            select(t.jobtypes.c.name).where(t.jobtypes.c.id == jobtype_id)
        ).scalar()

    def list_latest(self) -> list[JobTypeVersion]:
        v = t.jobtype_versions.c
        newest = (
            select(func.max(v.version))
            .where(v.jobtype_id == t.jobtypes.c.id)
            .correlate(t.jobtypes)
            .scalar_subquery()
        )
        return self._select(v.version == newest)

    def versions(self, name: str) -> list[JobTypeVersion]:
        return self._select(t.jobtypes.c.name == name)

    def in_use(self, name: str) -> bool:
        used = self._c.execute(
            select(t.jobs.c.id)
            .join(t.jobtype_versions, t.jobtype_versions.c.id == t.jobs.c.jobtype_version_id)
            .join(t.jobtypes, t.jobtypes.c.id == t.jobtype_versions.c.jobtype_id)
            .where(t.jobtypes.c.name == name)
            .limit(1)
        ).first()
        return used is not None

    def delete(self, name: str) -> None:
        self._c.execute(delete(t.jobtypes).where(t.jobtypes.c.name == name))


class SqlSoftwareRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def _with_versions(self, rows: list[tuple[int, str]]) -> list[Software]:
        if not rows:
            return []
        versions: dict[int, list[SoftwareVersion]] = {software_id: [] for software_id, _ in rows}
        for r in self._c.execute(
            select(t.software_versions)
            .where(t.software_versions.c.software_id.in_(list(versions)))
            .order_by(t.software_versions.c.rank, t.software_versions.c.id)
        ):
            versions[r.software_id].append(SoftwareVersion(r.id, r.software_id, r.version, r.rank))
        return [Software(i, name, tuple(versions[i])) for i, name in rows]

    def get_by_name(self, name: str) -> Software | None:
        rows = self._c.execute(
            select(t.software.c.id, t.software.c.software).where(t.software.c.software == name)
        ).all()
        found = self._with_versions([tuple(row) for row in rows])
        return found[0] if found else None

    def list_all(self) -> list[Software]:
        rows = self._c.execute(
            select(t.software.c.id, t.software.c.software).order_by(t.software.c.software)
        ).all()
        return self._with_versions([tuple(row) for row in rows])

    def add(self, name: str, versions: Sequence[tuple[str, int]]) -> Software:
        software_id = self._c.execute(
            insert(t.software).values(software=name)
        ).inserted_primary_key[0]
        if versions:
            self._c.execute(
                insert(t.software_versions),
                [{"software_id": software_id, "version": v, "rank": r} for v, r in versions],
            )
        found = self.get_by_name(name)
        assert found is not None
        return found

    def rename(self, software_id: int, name: str) -> None:
        self._c.execute(
            update(t.software).where(t.software.c.id == software_id).values(software=name)
        )

    def delete(self, software_id: int) -> None:
        self._c.execute(delete(t.software).where(t.software.c.id == software_id))

    def add_version(self, software_id: int, version: str, rank: int) -> SoftwareVersion:
        version_id = self._c.execute(
            insert(t.software_versions).values(software_id=software_id, version=version, rank=rank)
        ).inserted_primary_key[0]
        return SoftwareVersion(version_id, software_id, version, rank)

    def set_rank(self, version_id: int, rank: int) -> None:
        self._c.execute(
            update(t.software_versions)
            .where(t.software_versions.c.id == version_id)
            .values(rank=rank)
        )

    def delete_version(self, version_id: int) -> None:
        self._c.execute(delete(t.software_versions).where(t.software_versions.c.id == version_id))


class SqlTaskLogRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    @staticmethod
    def _from(row: Row[Any]) -> TaskLog:
        m = row._mapping
        return TaskLog(
            m["id"],
            m["task_id"],
            m["attempt"],
            m["identifier"],
            m["agent_id"],
            m["created_on"],
            m["size"],
            m["state"],
        )

    def add(self, log: TaskLog) -> TaskLog:
        new_id = self._c.execute(
            insert(t.task_logs).values(
                task_id=log.task_id,
                attempt=log.attempt,
                identifier=log.identifier,
                agent_id=log.agent_id,
                created_on=log.created_on,
                size=log.size,
                state=log.state,
            )
        ).inserted_primary_key[0]
        return attrs.evolve(log, id=new_id)

    def get(self, task_id: int, attempt: int, identifier: str) -> TaskLog | None:
        row = self._c.execute(
            select(t.task_logs).where(
                t.task_logs.c.task_id == task_id,
                t.task_logs.c.attempt == attempt,
                t.task_logs.c.identifier == identifier,
            )
        ).first()
        return None if row is None else self._from(row)

    def of_attempt(self, task_id: int, attempt: int) -> list[TaskLog]:
        rows = self._c.execute(
            select(t.task_logs)
            .where(
                t.task_logs.c.task_id == task_id,
                t.task_logs.c.attempt == attempt,
            )
            .order_by(t.task_logs.c.id)
        )
        return [self._from(row) for row in rows]

    def save(self, log: TaskLog) -> None:
        self._c.execute(
            update(t.task_logs)
            .where(t.task_logs.c.id == log.id)
            .values(size=log.size, state=log.state)
        )


def _upsert(
    connection: Connection,
    table: Any,
    keys: list[str],
    values: dict[str, Any],
    on_conflict: dict[str, Any],
) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(values)
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=on_conflict))


class SqlBlocklistRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record_failure(self, job_id: int, agent_id: uuid.UUID, now: datetime) -> None:
        b = t.job_agent_blocks.c
        _upsert(
            self._c,
            t.job_agent_blocks,
            ["job_id", "agent_id"],
            {"job_id": job_id, "agent_id": agent_id, "failures": 1, "updated_on": now},
            {"failures": b.failures + 1, "updated_on": now},
        )

    def record_rejection(
        self, job_id: int, agent_id: uuid.UUID, fingerprint: str, now: datetime
    ) -> None:
        _upsert(
            self._c,
            t.job_agent_blocks,
            ["job_id", "agent_id"],
            {
                "job_id": job_id,
                "agent_id": agent_id,
                "failures": 0,
                "rejected_fingerprint": fingerprint,
                "updated_on": now,
            },
            {"rejected_fingerprint": fingerprint, "updated_on": now},
        )

    def _select(self, condition: Any) -> list[JobAgentBlock]:
        b = t.job_agent_blocks.c
        rows = self._c.execute(
            select(t.job_agent_blocks).where(condition).order_by(b.job_id, b.agent_id)
        )
        return [
            JobAgentBlock(r.job_id, r.agent_id, r.failures, r.rejected_fingerprint, r.updated_on)
            for r in rows
        ]

    def of_agent(self, agent_id: uuid.UUID) -> list[JobAgentBlock]:
        return self._select(t.job_agent_blocks.c.agent_id == agent_id)

    def of_agents(self, agent_ids: Sequence[uuid.UUID]) -> list[JobAgentBlock]:
        if not agent_ids:
            return []
        return self._select(t.job_agent_blocks.c.agent_id.in_(agent_ids))

    def of_job(self, job_id: int) -> list[JobAgentBlock]:
        return self._select(t.job_agent_blocks.c.job_id == job_id)

    def clear(self, job_id: int, agent_id: uuid.UUID) -> None:
        self._c.execute(
            delete(t.job_agent_blocks).where(
                t.job_agent_blocks.c.job_id == job_id, t.job_agent_blocks.c.agent_id == agent_id
            )
        )


def _rank_ranges(
    connection: Connection, owner: Any, owner_ids: list[int]
) -> dict[int, list[RankRange]]:
    """Software requirements by owner id, as rank ranges (see ``_requirements_of``)."""
    if not owner_ids:
        return {}
    r = owner.table.c
    low = t.software_versions.alias("low")
    high = t.software_versions.alias("high")
    rows = connection.execute(
        select(owner, r.software_id, low.c.rank, high.c.rank)
        .outerjoin(low, low.c.id == r.min_version_id)
        .outerjoin(high, high.c.id == r.max_version_id)
        .where(owner.in_(owner_ids))
    )
    found: dict[int, list[RankRange]] = {}
    for owner_id, software_id, low_rank, high_rank in rows:
        found.setdefault(owner_id, []).append(RankRange(software_id, low_rank, high_rank))
    return found


class SqlSchedulingRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def candidate_jobs(self) -> list[JobProfile]:
        j, tk, v = t.jobs.c, t.tasks.c, t.jobtype_versions.c
        parent = t.jobs.alias("parent")
        queued = exists().where(tk.job_id == j.id, tk.agent_id.is_(None), tk.state.is_(None))
        waiting_for_parent = (
            exists()
            .select_from(t.job_parents.join(parent, parent.c.id == t.job_parents.c.parent_id))
            .where(
                t.job_parents.c.child_id == j.id,
                or_(parent.c.state.is_(None), parent.c.state != "done"),
            )
        )
        rows = self._c.execute(
            select(
                j.id,
                j.priority,
                j.weight,
                j.time_submitted,
                j.ram,
                j.cpus,
                j.minimum_agents,
                j.maximum_agents,
                j.batch,
                j.frame_by,
                j.jobtype_version_id,
                v.max_batch,
                v.batch_contiguous,
            )
            .join(t.jobtype_versions, v.id == j.jobtype_version_id)
            .where(or_(j.state.is_(None), j.state == "running"), queued, ~waiting_for_parent)
        ).all()
        ids = [row.id for row in rows]
        busy = (
            dict(
                self._c.execute(
                    select(tk.job_id, func.count(distinct(tk.agent_id)))
                    .where(tk.job_id.in_(ids), tk.agent_id.is_not(None), t.TASK_IS_ACTIVE)
                    .group_by(tk.job_id)
                ).all()
            )
            if ids
            else {}
        )
        job_ranges = _rank_ranges(self._c, t.job_software_requirements.c.job_id, ids)
        tag_requirements = _tag_requirements_of(self._c, ids)
        type_ranges = _rank_ranges(
            self._c,
            t.jobtype_software_requirements.c.jobtype_version_id,
            sorted({row.jobtype_version_id for row in rows}),
        )
        return [
            JobProfile(
                id=row.id,
                priority=row.priority,
                weight=row.weight,
                time_submitted=row.time_submitted,
                ram=row.ram,
                cpus=row.cpus,
                minimum_agents=row.minimum_agents,
                maximum_agents=row.maximum_agents,
                busy_agents=busy.get(row.id, 0),
                requirements=tuple(
                    type_ranges.get(row.jobtype_version_id, []) + job_ranges.get(row.id, [])
                ),
                tag_requirements=tuple(tag_requirements.get(row.id, ())),
                batch=row.batch,
                max_batch=row.max_batch,
                batch_contiguous=row.batch_contiguous,
                frame_by=row.frame_by,
            )
            for row in rows
        ]

    def agent_profile(self, agent_id: uuid.UUID) -> AgentProfile | None:
        a = t.agents.c
        row = self._c.execute(
            select(a.ram, a.free_ram, a.cpus, a.ram_allocation, a.cpu_allocation).where(
                a.id == agent_id
            )
        ).first()
        if row is None:
            return None
        software, tags = self._software_and_tags([agent_id])
        return AgentProfile(
            agent_id,
            row.ram,
            row.free_ram,
            row.cpus,
            row.ram_allocation,
            row.cpu_allocation,
            frozenset(software.get(agent_id, ())),
            frozenset(tags.get(agent_id, ())),
        )

    def _software_and_tags(
        self, ids: Sequence[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, set[tuple[int, int]]], dict[uuid.UUID, set[str]]]:
        """Each agent's (software id, rank) pairs and tags."""
        software: dict[uuid.UUID, set[tuple[int, int]]] = {}
        for agent_id, software_id, rank in self._c.execute(
            select(
                t.agent_software_versions.c.agent_id,
                t.software_versions.c.software_id,
                t.software_versions.c.rank,
            )
            .join(
                t.software_versions,
                t.agent_software_versions.c.software_version_id == t.software_versions.c.id,
            )
            .where(t.agent_software_versions.c.agent_id.in_(ids))
        ):
            software.setdefault(agent_id, set()).add((software_id, rank))
        tags: dict[uuid.UUID, set[str]] = {}
        for agent_id, tag in self._c.execute(
            select(t.agent_tags.c.agent_id, t.agent_tags.c.tag).where(
                t.agent_tags.c.agent_id.in_(ids)
            )
        ):
            tags.setdefault(agent_id, set()).add(tag)
        return software, tags

    def lock_idle_agents(
        self, agent_ids: Sequence[uuid.UUID]
    ) -> list[tuple[AgentContact, AgentProfile]]:
        if not agent_ids:
            return []
        a, tk = t.agents.c, t.tasks.c
        rows = self._c.execute(
            select(
                a.id,
                a.hostname,
                a.remote_ip,
                a.port,
                a.use_address,
                a.state,
                a.disabled,
                a.last_heard_from,
                a.last_polled,
                a.ram,
                a.free_ram,
                a.cpus,
                a.ram_allocation,
                a.cpu_allocation,
            )
            .where(a.id.in_(agent_ids), a.state.in_(["online", "running"]), a.disabled.is_(False))
            .order_by(a.id)
            .with_for_update(skip_locked=True)
        ).all()
        ids = [row.id for row in rows]
        if not ids:
            return []
        # Read after the locks are held, so a batch committed a moment ago counts.
        busy = set(
            self._c.execute(
                select(tk.agent_id).where(tk.agent_id.in_(ids), t.TASK_IS_ACTIVE).distinct()
            ).scalars()
        )
        software, tags = self._software_and_tags(ids)
        found = {}
        for r in rows:
            if r.id in busy:
                continue
            found[r.id] = (
                AgentContact(
                    r.id,
                    r.hostname,
                    r.remote_ip,
                    r.port,
                    _enum(UseAddress, r.use_address),
                    _enum(AgentState, r.state),
                    r.disabled,
                    r.last_heard_from,
                    r.last_polled,
                    False,
                ),
                AgentProfile(
                    r.id,
                    r.ram,
                    r.free_ram,
                    r.cpus,
                    r.ram_allocation,
                    r.cpu_allocation,
                    frozenset(software.get(r.id, ())),
                    frozenset(tags.get(r.id, ())),
                ),
            )
        return [found[agent_id] for agent_id in agent_ids if agent_id in found]

    def idle_agents(self) -> list[uuid.UUID]:
        a, tk = t.agents.c, t.tasks.c
        busy = exists().where(tk.agent_id == a.id, t.TASK_IS_ACTIVE)
        return list(
            self._c.execute(
                select(a.id)
                .where(a.state.in_(["online", "running"]), a.disabled.is_(False), ~busy)
                .order_by(a.hostname, a.id)
            ).scalars()
        )

    def contacts(self) -> list[AgentContact]:
        a, tk = t.agents.c, t.tasks.c
        busy = exists().where(tk.agent_id == a.id, t.TASK_IS_ACTIVE)
        rows = self._c.execute(
            select(
                a.id,
                a.hostname,
                a.remote_ip,
                a.port,
                a.use_address,
                a.state,
                a.disabled,
                a.last_heard_from,
                a.last_polled,
                busy.label("busy"),
            ).order_by(a.hostname, a.id)
        )
        return [
            AgentContact(
                r.id,
                r.hostname,
                r.remote_ip,
                r.port,
                _enum(UseAddress, r.use_address),
                _enum(AgentState, r.state),
                r.disabled,
                r.last_heard_from,
                r.last_polled,
                bool(r.busy),
            )
            for r in rows
        ]

    def lock_job(self, job_id: int, *, wait: bool = True) -> int | None:
        tk = t.tasks.c
        locked = self._c.execute(
            select(t.jobs.c.id).where(t.jobs.c.id == job_id).with_for_update(skip_locked=not wait)
        ).first()
        if locked is None:
            return None
        return self._c.execute(
            select(func.count(distinct(tk.agent_id))).where(
                tk.job_id == job_id, tk.agent_id.is_not(None), t.TASK_IS_ACTIVE
            )
        ).scalar_one()

    def queued_tasks(self, job_id: int, limit: int) -> list[Task]:
        tk = t.tasks.c
        rows = self._c.execute(
            select(t.tasks)
            .where(tk.job_id == job_id, tk.agent_id.is_(None), tk.state.is_(None))
            .order_by(tk.frame, tk.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_task_from(row._mapping) for row in rows]

    def claim(self, task_ids: Sequence[int], agent_id: uuid.UUID) -> list[int]:
        if not task_ids:
            return []
        tk = t.tasks.c
        claimed = self._c.execute(
            update(t.tasks)
            .where(tk.id.in_(list(task_ids)), tk.agent_id.is_(None), tk.state.is_(None))
            .values(
                agent_id=agent_id,
                attempts=tk.attempts + 1,
                sent_to_agent=False,
                sent_at=None,
                time_finished=None,
            )
            .returning(tk.id)
        ).scalars()
        return sorted(claimed)

    def mark_sent(self, task_id: int, agent_id: uuid.UUID, attempt: int, now: datetime) -> bool:
        tk = t.tasks.c
        result = self._c.execute(
            update(t.tasks)
            .where(
                tk.id == task_id, tk.agent_id == agent_id, tk.attempts == attempt, t.TASK_IS_ACTIVE
            )
            .values(sent_to_agent=True, sent_at=now)
        )
        return result.rowcount == 1


# What "retry shortly" is the honest answer to; anything else stays a bug (500).
_RETRY_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"}
_RETRY_MESSAGES = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "unable to open database",
    "connection",
    "could not connect",
    "server closed",
)


def _raise_if_unavailable(error: BaseException) -> None:
    """A lost or refused connection, a lock not obtained in time, a deadlock or serialization
    failure, a server shutting down: the database is Unavailable for now (503, retry). Other
    errors (a missing table or column, a constraint) are bugs and stay what they are."""
    if not isinstance(error, DBAPIError):
        return
    state = getattr(error.orig, "sqlstate", None)
    if state:
        retry = state.startswith("08") or state in _RETRY_SQLSTATES
    else:  # SQLite, or no connection to have a state on
        text = str(error.orig).lower()
        retry = isinstance(error, OperationalError) and any(m in text for m in _RETRY_MESSAGES)
    if error.connection_invalidated or retry:
        raise Unavailable("the database is unavailable; retry shortly") from error


class SqlUnitOfWork:
    """A connection and a transaction; rolls back on exit unless committed.

    On SQLite, writing units take turns on a SqliteWriterLock before ``BEGIN IMMEDIATE``:
    SQLite's own busy handler sleeps up to 100 ms between retries, which under contention
    costs far more than waiting in line.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        read_only: bool = False,
        writer_lock: SqliteWriterLock | None = None,
    ) -> None:
        self._engine = engine
        self._read_only = read_only
        self._committed = False
        self._writer_lock = None if read_only else writer_lock

    def __enter__(self) -> Self:
        if self._writer_lock is not None:
            self._writer_lock.acquire()
        try:
            return self._begin()
        except BaseException as error:
            if self._writer_lock is not None:
                self._writer_lock.release()
            _raise_if_unavailable(error)
            raise

    def _begin(self) -> SqlUnitOfWork:
        connection = self._engine.connect()
        connection.info[READ_ONLY] = self._read_only
        self._connection = connection
        self._transaction = connection.begin()
        self.agents = SqlAgentRepository(connection)
        self.tasks = SqlTaskRepository(connection)
        self.jobs = SqlJobRepository(connection)
        self.jobtypes = SqlJobTypeRepository(connection)
        self.software = SqlSoftwareRepository(connection)
        self.logs = SqlTaskLogRepository(connection)
        self.blocks = SqlBlocklistRepository(connection)
        self.scheduling = SqlSchedulingRepository(connection)
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        try:
            if not self._committed and self._transaction.is_active:
                self._transaction.rollback()
        except DBAPIError as failed:
            if error is None:  # otherwise the first error is the one to report
                _raise_if_unavailable(failed)
                raise
        finally:
            self._connection.close()
            if self._writer_lock is not None:
                self._writer_lock.release()
        if error is not None:
            _raise_if_unavailable(error)

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            self._transaction.commit()
        except DBAPIError as error:
            _raise_if_unavailable(error)
            raise
        self._committed = True


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer_lock = sqlite_writer_lock(engine)

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only=read_only, writer_lock=self._writer_lock)
