"""The agents' repository: an agent's row with its MAC addresses, GPUs, software and tags."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVarTuple

import orjson
from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Executable,
    FromClause,
    Label,
    Select,
    Uuid,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Row
from sqlalchemy.types import TypeEngine

from farm_adapters.sql import tables as t
from farm_adapters.sql.history import record_agent_change
from farm_adapters.sql.rows import AGENT_ID, by_label, insert_ignoring_duplicates
from farm_domain.agents import (
    Agent,
    AgentOverview,
    AgentQuery,
    AgentSort,
    AgentSummary,
    SoftReport,
    SoftwareRef,
)
from farm_domain.enums import AgentState, OsClass, UseAddress
from farm_domain.errors import AlreadyExists
from farm_domain.history import agent_change, agent_created


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


# The heartbeat's statements, built once: building a statement and its cache key cost more
# than running it on SQLite (profiled: about half of a heartbeat).
def _agent_statement(
    dialect: str, *, for_update: bool, with_active: bool = False, with_enrolled: bool = False
) -> Select[*tuple[Any, ...]]:
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
    columns: list[FromClause | Label[Any]] = [
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
    if with_enrolled:
        # ``Token.usable`` in SQL: the heartbeat of an agent without a credential of its own
        # checks that this agent has none, in the same statement (a second one cost more than
        # the agent's read).
        tok = t.tokens.c
        columns.append(
            exists()
            .where(
                tok.agent_id == t.agents.c.id,
                tok.revoked.is_(None),
                or_(tok.expires.is_(None), tok.expires > bindparam("now", type_=t.UtcDateTime)),
            )
            .label("enrolled")
        )
    statement = select(*columns).where(t.agents.c.id == AGENT_ID)
    # SKIP LOCKED: the subqueries read the statement's snapshot, taken before any wait for the
    # row lock, so a read that had to wait would pair the current row with the sets and tasks
    # as they were before the lock holder committed. A locked row reads as no row instead, and
    # the repository waits for the lock with a statement of its own, then reads again.
    # NO KEY UPDATE (see _LOCK_AGENT): not the stronger FOR UPDATE.
    return (
        statement.with_for_update(of=t.agents, skip_locked=True, key_share=True)
        if for_update
        else statement
    )


_GET_AGENT = {
    (dialect, for_update): _agent_statement(dialect, for_update=for_update)
    for dialect in ("sqlite", "postgresql")
    for for_update in (False, True)
}
_GET_AGENT_WITH_ACTIVE = {
    (dialect, for_update): _agent_statement(dialect, for_update=for_update, with_active=True)
    for dialect in ("sqlite", "postgresql")
    for for_update in (False, True)
}
_GET_AGENT_AS_HEARD = {
    dialect: _agent_statement(dialect, for_update=False, with_active=True, with_enrolled=True)
    for dialect in ("sqlite", "postgresql")
}
# FOR NO KEY UPDATE, what an UPDATE of the row takes anyway: a report that refers to the agent
# (its blocklist entry's foreign key) holds a task and takes KEY SHARE on the agent, while a
# heartbeat holds the agent and waits for that task; FOR UPDATE would make them wait on each
# other (a deadlock on PostgreSQL). Deleting the agent still waits for both.
_LOCK_AGENT = select(t.agents.c.id).where(t.agents.c.id == AGENT_ID).with_for_update(key_share=True)


def _stored(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """How a column's type writes a value on this database."""
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else lambda value: value


def _json_list(value: Any) -> list[Any]:
    """An aggregated set: a list from psycopg, JSON text from SQLite, NULL for none."""
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, str | bytes) else list(value)


_SAVE_AGENT = update(t.agents).where(t.agents.c.id == bindparam("agent_key", type_=Uuid()))

# A batch of soft reports is one statement for many agents (executemany cost ~0.1 ms an agent
# on PostgreSQL, holding the worker's GIL for 100 ms a batch): an UPDATE never creates a deleted
# agent, and the guard keeps a later contact (a transaction's, another worker's batch).
_RECORD_HEARD = {
    "sqlite": text(
        "UPDATE agents SET free_ram = v.free_ram, time_offset = v.time_offset, "
        "last_heard_from = v.heard "
        "FROM (SELECT value ->> 0 AS id, value ->> 1 AS free_ram, value ->> 2 AS time_offset, "
        "value ->> 3 AS heard FROM json_each(:batch)) AS v "
        "WHERE agents.id = v.id "
        "AND (agents.last_heard_from IS NULL OR agents.last_heard_from <= v.heard)"
    ),
    "postgresql": text(
        "UPDATE agents SET free_ram = v.free_ram, time_offset = v.time_offset, "
        "last_heard_from = v.heard "
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:free AS integer[]), "
        "CAST(:offsets AS integer[]), CAST(:heard AS timestamptz[])) "
        "AS v(id, free_ram, time_offset, heard) "
        "WHERE agents.id = v.id "
        "AND (agents.last_heard_from IS NULL OR agents.last_heard_from <= v.heard)"
    ),
}
# Two workers' batches lock their shared agents in one order, so never deadlock on each other.
_LOCK_HEARD = text(
    "SELECT id FROM agents WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE"
)


class SqlAgentRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, agent_id: uuid.UUID, *, for_update: bool = False) -> Agent | None:
        statement = _GET_AGENT[self._c.dialect.name, for_update]
        row = self._read(statement, agent_id, locking=for_update)
        return None if row is None else self._agent_of(row)

    def get_with_active(
        self, agent_id: uuid.UUID, *, for_update: bool = True
    ) -> tuple[Agent, dict[int, int]] | None:
        statement = _GET_AGENT_WITH_ACTIVE[self._c.dialect.name, for_update]
        row = self._read(statement, agent_id, locking=for_update)
        if row is None:
            return None
        active = {
            task_id: attempts for task_id, attempts in _json_list(row._mapping["active_attempts"])
        }
        return self._agent_of(row), active

    def get_as_heard(
        self, agent_id: uuid.UUID, now: datetime
    ) -> tuple[Agent, dict[int, int], bool] | None:
        row = self._c.execute(
            _GET_AGENT_AS_HEARD[self._c.dialect.name], {"agent_id": agent_id, "now": now}
        ).first()
        if row is None:
            return None
        m = row._mapping
        active = {task_id: attempts for task_id, attempts in _json_list(m["active_attempts"])}
        return self._agent_of(row), active, bool(m["enrolled"])

    def _read(
        self, statement: Executable, agent_id: uuid.UUID, *, locking: bool
    ) -> Row[Any] | None:
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
        added = self._c.execute(
            insert_ignoring_duplicates(self._c, t.agents)
            .values(_agent_row(agent))
            .returning(t.agents.c.id)
        ).first()
        if added is None:  # announced by a concurrent request a moment before
            raise AlreadyExists(f"Agent {agent.id} already exists")
        if agent.mac_addresses:
            self.replace_mac_addresses(agent.id, agent.mac_addresses)
        if agent.gpus:
            self.replace_gpus(agent.id, agent.gpus)
        created = agent_created(agent)
        if created is not None:
            record_agent_change(self._c, created)

    def save(self, agent: Agent, previous: Agent, *, reason: str, at: datetime) -> None:
        row = _agent_row(agent)
        del row["id"]
        # Only what changed: SQLite rewrites the entries of every index on a column in the SET
        # clause, changed or not (a heartbeat touched all six of the agents').
        before = _agent_row(previous)
        row = {key: value for key, value in row.items() if value != before[key]}
        if not row:
            return
        row["agent_key"] = agent.id
        self._c.execute(_SAVE_AGENT, row)
        change = agent_change(previous, agent, reason, at)
        if change is not None:
            record_agent_change(self._c, change)

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
            insert_ignoring_duplicates(self._c, t.gpus),
            [{"fullname": name} for name in sorted(names)],
        )
        ids = self._c.execute(select(t.gpus.c.id).where(t.gpus.c.fullname.in_(names))).scalars()
        self._c.execute(
            insert(t.agent_gpus), [{"agent_id": agent_id, "gpu_id": gpu_id} for gpu_id in ids]
        )

    def attach_software(self, agent_id: uuid.UUID, version_ids: Iterable[int]) -> None:
        rows = [{"agent_id": agent_id, "software_version_id": v} for v in version_ids]
        if rows:
            self._c.execute(insert_ignoring_duplicates(self._c, t.agent_software_versions), rows)

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

    def record_heard(self, reports: Sequence[SoftReport]) -> int:
        if not reports:
            return 0
        dialect = self._c.dialect
        if dialect.name == "postgresql":
            ids = sorted(r.agent_id for r in reports)
            self._c.execute(_LOCK_HEARD, {"ids": ids})
            params: dict[str, Any] = {
                "ids": [r.agent_id for r in reports],
                "free": [r.free_ram for r in reports],
                "offsets": [r.time_offset for r in reports],
                "heard": [r.heard for r in reports],
            }
        else:
            # One JSON parameter, each value as the columns' types store it.
            key = _stored(t.agents.c.id.type, dialect)
            heard = _stored(t.agents.c.last_heard_from.type, dialect)
            params = {
                "batch": orjson.dumps(
                    [[key(r.agent_id), r.free_ram, r.time_offset, heard(r.heard)] for r in reports]
                ).decode()
            }
        result = self._c.execute(_RECORD_HEARD[dialect.name], params)
        return max(result.rowcount, 0)

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

    def summaries(self, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AgentSummary]:
        wanted = list(set(agent_ids))
        if not wanted:
            return {}
        a = t.agents.c
        rows = self._c.execute(
            select(a.id, a.hostname, a.port, a.remote_ip).where(a.id.in_(wanted))
        )
        return {row.id: AgentSummary(*row) for row in rows}

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
            state = by_label(AgentState, row.state)
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


Columns = TypeVarTuple("Columns")

_RANGE_FILTERS = ("min_ram", "max_ram", "min_cpus", "max_cpus")
# SQLite's planner, without histograms, guesses a range keeps a quarter of the rows and walks
# the whole (hostname, id) index to avoid a sort; unary + hides that index from ORDER BY, so
# the range's index finds the rows and they are sorted (100k agents, 4,686 matching:
# 18.5 -> 3 ms). Not for paged queries, where walking in order stops early.
_SQLITE_SORTED: tuple[ColumnClause[Any], ...] = (
    literal_column("+agents.hostname"),
    literal_column("+agents.id"),
)


def _filtered(statement: Select[*Columns], query: AgentQuery, dialect: str) -> Select[*Columns]:
    """The AgentQuery's filters, order (hostname, id) and paging applied to a statement over
    the agents table."""
    a = t.agents.c
    if query.sort is not AgentSort.HOSTNAME or query.descending:
        statement = statement.order_by(*_sort_keys(query))
    elif (
        dialect == "sqlite"
        and query.limit is None
        and any(getattr(query, name) is not None for name in _RANGE_FILTERS)
    ):
        statement = statement.order_by(*_SQLITE_SORTED)
    else:
        statement = statement.order_by(a.hostname, a.id)
    conditions: list[ColumnElement[bool]] = []
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
    if query.text is not None:
        conditions.append(
            or_(
                a.hostname.icontains(query.text, autoescape=True),
                func.coalesce(a.remote_ip, "").icontains(query.text, autoescape=True),
            )
        )
    if query.tag is not None:
        conditions.append(
            exists().where(t.agent_tags.c.agent_id == a.id, t.agent_tags.c.tag == query.tag)
        )
    if conditions:
        statement = statement.where(and_(*conditions))
    if query.limit is not None:
        statement = statement.limit(query.limit)
    if query.offset:
        statement = statement.offset(query.offset)
    return statement


def _sort_keys(query: AgentQuery) -> list[ColumnElement[Any]]:
    """The ORDER BY of the query's sort, ties by hostname then id (all reversed when
    descending)."""
    a = t.agents.c
    keys: list[ColumnElement[Any]]
    match query.sort:
        case AgentSort.HOSTNAME:
            keys = []
        case AgentSort.STATE:
            shown = case(
                (and_(a.disabled.is_(True), a.state != "offline"), "disabled"), else_=a.state
            )
            keys = [shown]
        case AgentSort.RAM:
            keys = [a.ram]
        case AgentSort.CPUS:
            keys = [a.cpus]
        case AgentSort.LAST_HEARD:
            keys = [case((a.last_heard_from.is_(None), 0), else_=1), a.last_heard_from]
    keys += [a.hostname, a.id]
    return [key.desc() for key in keys] if query.descending else keys


def _agent_from(
    row: Row[Any], macs: frozenset[str], gpus: frozenset[str], software: tuple[SoftwareRef, ...]
) -> Agent:
    m = row._mapping
    return Agent(
        id=m["id"],
        hostname=m["hostname"],
        remote_ip=m["remote_ip"],
        use_address=by_label(UseAddress, m["use_address"]),
        os_class=by_label(OsClass, m["os_class"]) if m["os_class"] else None,
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
        state=by_label(AgentState, m["state"]),
        disabled=m["disabled"],
        last_heard_from=m["last_heard_from"],
        last_polled=m["last_polled"],
        mac_addresses=macs,
        gpus=gpus,
        software=software,
    )
