"""The database schema, mapped explicitly to the domain's entities by the repositories."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    literal_column,
    or_,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

agents = Table(
    "agents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("remote_ip", String(45)),
    Column("use_address", String(16), nullable=False),
    Column("os_class", String(16)),
    Column("os_fullname", String(128)),
    Column("cpu_name", String(128)),
    Column("ram", Integer, nullable=False),
    Column("free_ram", Integer, nullable=False),
    Column("cpus", Integer, nullable=False),
    Column("port", Integer, nullable=False),
    Column("time_offset", Integer, nullable=False),
    Column("version", String(16)),
    Column("upgrade_to", String(16)),
    Column("ram_allocation", Float, nullable=False),
    Column("cpu_allocation", Float, nullable=False),
    Column("restart_requested", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("last_heard_from", UtcDateTime),
    Column("last_polled", UtcDateTime),
    Index("ix_agents_hostname_id", "hostname", "id"),
    Index("ix_agents_ram", "ram"),
    Index("ix_agents_cpus", "cpus"),
    Index("ix_agents_remote_ip", "remote_ip"),
    Index("ix_agents_port", "port"),
    Index("ix_agents_state", "state", "disabled"),
)

agent_mac_addresses = Table(
    "agent_mac_addresses",
    metadata,
    Column("agent_id", Uuid, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("mac_address", String(17), primary_key=True),
)

agent_tags = Table(
    "agent_tags",
    metadata,
    Column("agent_id", Uuid, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
)

gpus = Table(
    "gpus",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fullname", String(128), nullable=False, unique=True),
    sqlite_autoincrement=True,
)

agent_gpus = Table(
    "agent_gpus",
    metadata,
    Column("agent_id", Uuid, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("gpu_id", Integer, ForeignKey("gpus.id", ondelete="CASCADE"), primary_key=True),
)

software = Table(
    "software",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("software", String(64), nullable=False, unique=True),
    sqlite_autoincrement=True,
)

software_versions = Table(
    "software_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("software_id", Integer, ForeignKey("software.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(64), nullable=False),
    Column("rank", Integer, nullable=False),
    UniqueConstraint("software_id", "version"),
    sqlite_autoincrement=True,
)

agent_software_versions = Table(
    "agent_software_versions",
    metadata,
    Column("agent_id", Uuid, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "software_version_id",
        Integer,
        ForeignKey("software_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

jobtypes = Table(
    "jobtypes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", Text),
    sqlite_autoincrement=True,
)

jobtype_versions = Table(
    "jobtype_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("jobtype_id", Integer, ForeignKey("jobtypes.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("classname", String(64)),
    Column("code", Text),
    Column("max_batch", Integer),
    Column("batch_contiguous", Boolean, nullable=False, default=True),
    UniqueConstraint("jobtype_id", "version"),
    sqlite_autoincrement=True,
)

jobtype_software_requirements = Table(
    "jobtype_software_requirements",
    metadata,
    Column(
        "jobtype_version_id",
        Integer,
        ForeignKey("jobtype_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("software_id", Integer, ForeignKey("software.id", ondelete="CASCADE"), primary_key=True),
    # A bound whose version is deleted from the catalogue falls away (the requirement loosens).
    Column("min_version_id", Integer, ForeignKey("software_versions.id", ondelete="SET NULL")),
    Column("max_version_id", Integer, ForeignKey("software_versions.id", ondelete="SET NULL")),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(255), nullable=False),
    Column("jobtype_version_id", Integer, ForeignKey("jobtype_versions.id"), nullable=False),
    Column("state", String(16)),
    Column("priority", Integer, nullable=False),
    Column("requeue", Integer, nullable=False),
    Column("time_submitted", UtcDateTime, nullable=False),
    Column("weight", Integer, nullable=False, server_default="10"),
    Column("frame_start", Float, nullable=False, server_default="1"),
    Column("frame_end", Float, nullable=False, server_default="1"),
    Column("frame_by", Float, nullable=False, server_default="1"),
    Column("batch", Integer, nullable=False, server_default="1"),
    Column("ram", Integer, nullable=False, server_default="32"),
    Column("ram_warning", Integer),
    Column("ram_max", Integer),
    Column("cpus", Integer, nullable=False, server_default="1"),
    Column("minimum_agents", Integer),
    Column("maximum_agents", Integer),
    Column("data", JSON, nullable=False, server_default="{}"),
    Column("environ", JSON, nullable=False, server_default="{}"),
    Column("user", String(255)),
    Column("submitted_by", String(255)),
    Column("time_started", UtcDateTime),
    Column("time_finished", UtcDateTime),
    # Failure policies (None: the settings' defaults) and why the master failed or flagged it.
    Column("max_run_seconds", Integer),
    Column("stall_seconds", Integer),
    Column("reason", Text),
    Index("ix_jobs_title", "title"),
    Index("ix_jobs_state", "state"),
    sqlite_autoincrement=True,
)

job_tags = Table(
    "job_tags",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index("ix_job_tags_tag", "tag"),
)

job_tag_requirements = Table(
    "job_tag_requirements",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("negate", Boolean, nullable=False),
)

job_parents = Table(
    "job_parents",
    metadata,
    Column("child_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("parent_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_job_parents_parent_id", "parent_id"),
)

job_software_requirements = Table(
    "job_software_requirements",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("software_id", Integer, ForeignKey("software.id", ondelete="CASCADE"), primary_key=True),
    Column("min_version_id", Integer, ForeignKey("software_versions.id", ondelete="SET NULL")),
    Column("max_version_id", Integer, ForeignKey("software_versions.id", ondelete="SET NULL")),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("frame", Float, nullable=False),
    Column("state", String(16)),
    Column("priority", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("agent_id", Uuid, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("sent_to_agent", Boolean, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("last_error", Text),
    Column("hidden", Boolean, nullable=False),
    Column("progress", Float),
    Column("time_submitted", UtcDateTime),
    Column("time_started", UtcDateTime),
    Column("time_finished", UtcDateTime),
    # Not offered to agents before this (retry back-off); the last failure's (or stop's) reason
    # code and the agent of the last failed attempt; done without running.
    Column("not_before", UtcDateTime),
    Column("reason", String(32)),
    Column("failed_on", Uuid),
    Column("skipped", Boolean, nullable=False, server_default=false()),
    # The files its last done attempt wrote: [{"path": ..., "size": ...}, ...]; null: none.
    Column("outputs", JSON(none_as_null=True)),
    Index("ix_tasks_job_id_state", "job_id", "state"),
    sqlite_autoincrement=True,
)

job_agent_blocks = Table(
    "job_agent_blocks",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("agent_id", Uuid, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    # The agent's resources when it refused the job's work; the block lifts when they change.
    Column("rejected_fingerprint", String(255)),
    # What the agent answered when it refused (its 400 body, shortened).
    Column("refusal", Text),
    Column("updated_on", UtcDateTime, nullable=False),
    Index("ix_job_agent_blocks_agent_id", "agent_id"),
)

task_logs = Table(
    "task_logs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("identifier", String(255), nullable=False),
    Column("agent_id", Uuid),
    Column("created_on", UtcDateTime, nullable=False),
    Column("size", Integer),
    Column("state", String(16)),
    UniqueConstraint("task_id", "attempt", "identifier"),
    sqlite_autoincrement=True,
)

# One row per failed attempt at a task: which agent, when, why (a reason code) and what it said.
task_failures = Table(
    "task_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("agent_id", Uuid),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("message", Text),
    Index("ix_task_failures_task_id", "task_id"),
    Index("ix_task_failures_at", "at"),
    sqlite_autoincrement=True,
)

tokens = Table(
    "tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    # SHA-256 of the secret, hex: every authenticated request looks its token up by it.
    Column("digest", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # No foreign key: a deleted agent's revoked credential stays listed.
    Column("agent_id", Uuid),
    Column("created", UtcDateTime, nullable=False),
    Column("expires", UtcDateTime),
    Column("revoked", UtcDateTime),
    Index("ix_tokens_agent_id", "agent_id"),
)

users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created", UtcDateTime, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column(
        "user_name",
        String(64),
        ForeignKey("users.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("expires", UtcDateTime, nullable=False),
    Index("ix_sessions_user_name", "user_name"),
    Index("ix_sessions_expires", "expires"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("address", String(255)),
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Index("ix_events_at", "at"),
    Index("ix_events_target_at", "target", "at"),
    Index("ix_events_actor_at", "actor", "at"),
    sqlite_autoincrement=True,
)

# A task's and an agent's changes of state (``farm_domain.history``): machine transitions at the
# rate tasks run, bounded per task and per agent, gone with their task or agent. Not the audit
# trail's ``events``: those are people's changes, kept whole, and read by actor or target.
task_history = Table(
    "task_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", Integer, nullable=False),
    Column("agent_id", Uuid),
    Column("at", UtcDateTime, nullable=False),
    Column("before", String(16)),
    Column("after", String(16), nullable=False),
    Column("reason", String(255), nullable=False),
    Index("ix_task_history_task_id_id", "task_id", "id"),
    sqlite_autoincrement=True,
)

agent_history = Table(
    "agent_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("agent_id", Uuid, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("before", String(16)),
    Column("after", String(16), nullable=False),
    Column("reason", String(255), nullable=False),
    Index("ix_agent_history_agent_id_id", "agent_id", "id"),
    sqlite_autoincrement=True,
)

# A job is stored hidden while its tasks are stored (``creating``) and while they are deleted
# (``deleting``): states no client or scheduler knows, seen by no query but the ones that name
# them.
JOB_CREATING = "creating"
JOB_DELETING = "deleting"
JOB_IS_VISIBLE = or_(
    jobs.c.state.is_(None),
    jobs.c.state.notin_([literal_column("'creating'"), literal_column("'deleting'")]),
)

# "The tasks of agent X that are neither done nor failed": the reconciler's and the heartbeat's
# query. Partial, so it stays small however many finished tasks the farm keeps.
# Literal values, not bound parameters: SQLite uses a partial index only when it can see that
# the query's WHERE implies the index's.
TASK_IS_ACTIVE = or_(
    tasks.c.state.is_(None),
    tasks.c.state.notin_([literal_column("'done'"), literal_column("'failed'")]),
)
Index(
    "ix_tasks_agent_active",
    tasks.c.agent_id,
    sqlite_where=TASK_IS_ACTIVE,
    postgresql_where=TASK_IS_ACTIVE,
)

# The running tasks (the change marker reads their progress) and the frames done by when they
# ended (the overview's frames per hour): partial, so each stays as small as what it finds.
TASK_IS_RUNNING = tasks.c.state == literal_column("'running'")
TASK_IS_DONE = tasks.c.state == literal_column("'done'")
Index(
    "ix_tasks_running", tasks.c.id, sqlite_where=TASK_IS_RUNNING, postgresql_where=TASK_IS_RUNNING
)
Index(
    "ix_tasks_done_time_finished",
    tasks.c.time_finished,
    sqlite_where=TASK_IS_DONE,
    postgresql_where=TASK_IS_DONE,
)
