"""Who may do what: identities, roles, and the access policy the services apply.

A frontend turns a credential into an ``Identity`` (the HTTP layer: a bearer token, a dashboard
session, or a request from a network admitted anonymously; the CLI: the local operator) and hands
it to the services, which decide with ``AccessPolicy`` before they change or show anything.
"""

from __future__ import annotations

import enum
import uuid

import attrs

from farm_domain.errors import Forbidden


class Role(enum.Enum):
    VIEWER = "viewer"
    ARTIST = "artist"
    WRANGLER = "wrangler"
    ADMIN = "admin"
    AGENT = "agent"
    """A render node: announces, updates and deletes itself, reports on its own tasks."""
    AGENT_JOIN = "agent-join"
    """May enroll new agents (their first announce), nothing else."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named ``value``; ValueError naming the roles otherwise."""
        for role in cls:
            if role.value == value:
                return role
        names = ", ".join(role.value for role in cls)
        raise ValueError(f"`{value}` is not a role (one of {names})")


PEOPLE = (Role.VIEWER, Role.ARTIST, Role.WRANGLER, Role.ADMIN)
"""The roles of people, from least to most trusted."""


class Permission(enum.Enum):
    READ = "read"
    """Agents, jobs, tasks, logs, events, the catalogue."""
    SUBMIT_JOBS = "submit jobs"
    CHANGE_JOBS = "change jobs"
    """Pause, resume, priority, requeue, delete: an artist's own jobs, a wrangler's any job."""
    MANAGE_AGENTS = "manage agents"
    """Disable, enable, tag and delete agents; an agent may also delete itself."""
    MANAGE_BLOCKLISTS = "manage blocklists"
    ADMINISTER = "administer"
    """Tokens, users, the software catalogue, job types, agent update archives."""
    ENROLL_AGENTS = "enroll agents"
    ACT_AS_AGENT = "act as agent"
    """Announce, heartbeat, report on tasks and upload logs as an agent."""

    def __str__(self) -> str:
        return self.value


_ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.ARTIST: frozenset({Permission.READ, Permission.SUBMIT_JOBS, Permission.CHANGE_JOBS}),
    Role.WRANGLER: frozenset(
        {
            Permission.READ,
            Permission.SUBMIT_JOBS,
            Permission.CHANGE_JOBS,
            Permission.MANAGE_AGENTS,
            Permission.MANAGE_BLOCKLISTS,
        }
    ),
    # An admin may do everything, agents' calls included (a PyFarm agent admitted by network
    # with the admin role, or an operator repairing an agent's record).
    Role.ADMIN: frozenset(Permission),
    Role.AGENT: frozenset({Permission.READ, Permission.ACT_AS_AGENT}),
    Role.AGENT_JOIN: frozenset({Permission.ENROLL_AGENTS}),
}


@attrs.frozen
class Identity:
    """Someone or something acting on the farm."""

    name: str
    role: Role
    agent_id: uuid.UUID | None = None
    """The one agent an agent's own credential may act as. None for the agent role admitted by
    network (PyFarm agents, which carry no credential): it may act as any agent."""
    address: str | None = None
    """Where the request came from, for the audit trail."""
    anonymous: bool = False
    """Admitted by its network, without a credential: ``address`` is all that tells it."""

    @classmethod
    def local_operator(cls, name: str) -> Identity:
        """Whoever runs the operator CLI on the master's machine: it opens the database
        directly, so it holds every right already."""
        return cls(name=name, role=Role.ADMIN, address="local")

    @classmethod
    def master(cls) -> Identity:
        """The master itself, acting on its own (the dispatcher taking a silent agent
        offline, the reconciler failing a task an agent lost): how the audit trail names it."""
        return cls(name="master", role=Role.ADMIN)

    def may(self, permission: Permission) -> bool:
        return permission in _ROLE_PERMISSIONS[self.role]

    @property
    def label(self) -> str:
        """How events and messages name this identity."""
        return f"{self.name} ({self.role})"


@attrs.frozen
class AccessPolicy:
    """The farm's rules of access. Every method raises Forbidden (nothing has changed yet)
    when ``actor`` may not; frontends raise Unauthenticated before a service is reached."""

    def require(self, actor: Identity, permission: Permission) -> None:
        if not actor.may(permission):
            raise Forbidden(f"{actor.label} may not {permission}")

    def require_job(
        self, actor: Identity, permission: Permission, submitted_by: str | None
    ) -> None:
        """``permission`` (CHANGE_JOBS) over one job: artists only over the jobs they
        submitted, wranglers and admins over any."""
        self.require(actor, permission)
        if actor.role is Role.ARTIST and submitted_by != actor.name:
            raise Forbidden(f"{actor.label} may only change the jobs it submitted")

    def require_agent(self, actor: Identity, agent_id: uuid.UUID) -> None:
        """Acting as this agent (announce again, heartbeat, report on its tasks, upload its
        logs): an agent's own credential only for its own id."""
        self.require(actor, Permission.ACT_AS_AGENT)
        if actor.role is Role.AGENT and actor.agent_id is not None and actor.agent_id != agent_id:
            raise Forbidden(f"{actor.label} may act only as agent {actor.agent_id}")

    def require_agent_or(
        self, actor: Identity, agent_id: uuid.UUID, permission: Permission
    ) -> None:
        """Either act as this agent or hold ``permission`` (deleting an agent: the agent
        itself or a wrangler)."""
        if actor.may(permission):
            return
        self.require_agent(actor, agent_id)
