"""AgentRegistry: announces, heartbeats, queries and removals of agents."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

import attrs

from farm_domain import validation
from farm_domain.access import AccessPolicy, Identity, Permission, Role
from farm_domain.agent_reports import (
    RECORDED_FIELDS,
    ReportedSets,
    authorize_report,
    soft_report,
)
from farm_domain.agents import (
    REQUIRED_ON_CREATE,
    UNSET,
    Agent,
    AgentChanges,
    AgentOverview,
    AgentQuery,
    AgentSummary,
    agent_address,
    parse_agent_id,
    state_changes,
    validated_values,
)
from farm_domain.assignments import (
    AssignmentReconciler,
    recompute_job_states,
    release_agent_tasks,
)
from farm_domain.audit import agent_target, changes, job_target, record
from farm_domain.defaults import SoftwareDefaults
from farm_domain.enums import AgentState, WorkState
from farm_domain.errors import AlreadyExists, Conflict, NotFound, ValidationError, WrongFarm
from farm_domain.identities import refuse_unbound_for_enrolled, refused_unbound, speaks_unbound
from farm_domain.networks import AgentNetworks
from farm_domain.ports import (
    AgentKeys,
    Clock,
    Counters,
    NoCounters,
    SoftState,
    TaskQueue,
    UnitOfWork,
    UnitOfWorkFactory,
)
from farm_domain.validation import INT32_MAX
from farm_domain.work import JobSummary, Task

log = logging.getLogger("farm.agents")


class AgentCredentials(Protocol):
    """What the registry needs of the identity store (IdentityService has it): an enrolled
    agent's own credential, issued and withdrawn inside the registry's unit of work."""

    def issue_agent_credential(
        self, uow: UnitOfWork, agent_id: uuid.UUID, now: datetime
    ) -> str: ...

    def withdraw_agent_credentials(
        self, uow: UnitOfWork, agent_id: uuid.UUID, now: datetime
    ) -> int: ...


@attrs.frozen
class Announcement:
    """An announce's outcome, with what the agent needs to trust the master and be trusted:
    its signing key and, when a join token enrolled it, its own credential (shown once)."""

    agent: Agent
    created: bool
    signing_key: str
    credential: str | None = None


@attrs.define
class _AfterCommit:
    """Queue requests gathered during a transaction, sent once it has committed."""

    assign_to_agent: uuid.UUID | None = None
    assign_all: bool = False
    send_to_agent: uuid.UUID | None = None
    update_agent: uuid.UUID | None = None
    stops: list[tuple[uuid.UUID, str, int, list[int]]] = attrs.Factory(list)
    busy: bool = False
    """The agent reported tasks it still runs: it gets no new work (no need to ask)."""


class AgentRegistry:
    """The agents of the farm, as the agents themselves and operators see them."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        queue: TaskQueue,
        clock: Clock,
        reconciler: AssignmentReconciler,
        defaults: SoftwareDefaults | None = None,
        *,
        farm_name: str | None = None,
        allow_loopback: bool,
        networks: AgentNetworks | None = None,
        policy: AccessPolicy,
        credentials: AgentCredentials,
        keys: AgentKeys,
        soft_state: SoftState | None = None,
        counters: Counters | None = None,
    ) -> None:
        self._soft_state = soft_state
        self._counters = counters or NoCounters()
        self._credentials = credentials
        self._keys = keys
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._reconciler = reconciler
        self._defaults = defaults or SoftwareDefaults()
        self._farm_name = farm_name
        self._allow_loopback = allow_loopback
        self._networks = networks
        self._policy = policy

    def call_refusal(self, agent: Agent) -> str | None:
        """Why the master will not call this agent (None: it will), for display."""
        return None if self._networks is None else self._networks.refusal(agent)

    # -- agents speaking --------------------------------------------------------------------

    def announce(
        self, actor: Identity, changes: AgentChanges, peer_address: str | None = None
    ) -> tuple[Agent, bool]:
        """Create the agent, or update it if its id is known; returns (agent, created). See
        ``join`` for the errors."""
        announced = self.join(actor, changes, peer_address)
        return announced.agent, announced.created

    def join(
        self, actor: Identity, changes: AgentChanges, peer_address: str | None = None
    ) -> Announcement:
        """Create the agent, or update it if its id is known; a new agent announced with a join
        token is enrolled: it gets a credential of its own (any earlier one is replaced).

        ``actor`` acts as the agent; a new id may also be enrolled by an identity that may
        enroll agents (a join token), an id already known may not. Raises Forbidden,
        ValidationError (missing or bad fields), WrongFarm, MisconfiguredDefaults.
        """
        if changes.id is UNSET:
            raise ValidationError("`id` not provided", field="id")
        agent_id = parse_agent_id(changes.id)
        if not actor.may(Permission.ENROLL_AGENTS):
            self._policy.require_agent(actor, agent_id)
        self._check_farm(changes)
        values = validated_values(changes, allow_loopback=self._allow_loopback)
        sets = self._sets(changes)
        if "remote_ip" not in values:
            peer = self._peer_ip(peer_address)
            if peer is not None:
                values["remote_ip"] = peer
        after = _AfterCommit()
        credential = None
        with self._uow() as uow:
            found = uow.agents.get_with_active(agent_id)
            created = False
            if found is None:
                enrolling = actor.may(Permission.ENROLL_AGENTS)
                authorize_report(
                    self._policy,
                    actor,
                    agent_id,
                    None,
                    values,
                    sets,
                    changes,
                    from_agent=True,
                    enrolling=enrolling,
                )
                try:
                    agent = self._create(uow, actor, agent_id, dict(values), sets)
                    created = True
                except AlreadyExists:
                    # A concurrent announce of the same id created it first (nothing is
                    # written yet): this one is an update of that agent, as if it came second.
                    found = uow.agents.get_with_active(agent_id)
                    if found is None:
                        raise
                if created and enrolling and actor.role is Role.AGENT_JOIN:
                    credential = self._credentials.issue_agent_credential(
                        uow, agent_id, self._clock.now()
                    )
            if not created:
                assert found is not None
                refuse_unbound_for_enrolled(uow, actor, agent_id, self._clock.now())
                self._policy.require_agent(actor, agent_id)
                agent = self._apply(
                    uow,
                    actor,
                    found[0],
                    values,
                    sets,
                    changes,
                    after,
                    from_agent=True,
                    active=found[1],
                )
            uow.commit()
        if agent.is_available and not after.busy:
            after.assign_to_agent = agent.id
        self._enqueue(after)
        return Announcement(agent, created, self._keys.key_for(agent.id), credential)

    def update(self, actor: Identity, agent_id: uuid.UUID, changes: AgentChanges) -> Agent:
        """Change some of an agent's fields; also the agent's heartbeat and shutdown call.

        What the agent reports needs ``actor`` to act as the agent, what an operator decides
        needs MANAGE_AGENTS (see ``authorize_report``). Raises Forbidden, NotFound, ValidationError,
        WrongFarm.
        """
        # The agent itself or an operator; which fields either may send is decided once the
        # agent is read (``authorize_report``).
        self._policy.require_agent_or(actor, agent_id, Permission.MANAGE_AGENTS)
        if changes.id is not UNSET and parse_agent_id(changes.id) != agent_id:
            raise ValidationError(
                "`id` in the request body does not match the agent id in the URL", field="id"
            )
        self._check_farm(changes)
        values = validated_values(changes, allow_loopback=self._allow_loopback)
        sets = self._sets(changes)
        # An agent's own identity always speaks as the agent: its "online" never re-enables.
        from_agent = changes.reported_task_ids is not UNSET or actor.role is Role.AGENT
        if self._soft_state is not None:
            heard = self._heard(actor, agent_id, values, sets, changes, from_agent=from_agent)
            if heard is not None:
                return heard
        after = _AfterCommit()
        with self._uow() as uow:
            found = uow.agents.get_with_active(agent_id)
            if found is None:
                raise NotFound(f"Agent {agent_id} not found")
            refuse_unbound_for_enrolled(uow, actor, agent_id, self._clock.now())
            agent = self._apply(
                uow,
                actor,
                found[0],
                values,
                sets,
                changes,
                after,
                from_agent=from_agent,
                active=found[1],
            )
            uow.commit()
        if agent.is_available and not after.busy:
            after.assign_to_agent = agent.id
        self._enqueue(after)
        return agent

    def _heard(
        self,
        actor: Identity,
        agent_id: uuid.UUID,
        values: dict[str, Any],
        sets: ReportedSets,
        changes: AgentChanges,
        *,
        from_agent: bool,
    ) -> Agent | None:
        """The usual heartbeat, read without a lock: when it moves soft state alone (and its
        ``current_assignments`` match what the agent holds), its report is handed to the soft
        state and the agent is returned as heard. None: anything else changes, and the caller
        applies the update in a transaction (which reads the agent again, locked).

        A request that changes nothing but soft state writes nothing that the transaction
        would not write, so racing it is safe: a report never creates an agent, and never
        overwrites one heard from later. Raises what ``update`` raises."""
        with self._uow(read_only=True) as uow:
            found = uow.agents.get_as_heard(agent_id, self._clock.now())
        if found is None:
            raise NotFound(f"Agent {agent_id} not found")
        before, active, enrolled = found
        if enrolled and speaks_unbound(actor):
            raise refused_unbound(agent_id)
        authorize_report(
            self._policy, actor, agent_id, before, values, sets, changes, from_agent=from_agent
        )
        agent = self._changed(before, values, sets, self._clock.now(), from_agent=from_agent)
        if changes.reported_task_ids is not UNSET and not self._reconciler.settled(
            agent, changes.reported_task_ids, changes.reported_attempts, active
        ):
            return None
        report = soft_report(before, agent)
        if report is None or self._soft_state is None:
            return None
        self._soft_state.report(report)
        # An agent that holds unfinished tasks gets no new work: no need to ask.
        if agent.is_available and not active:
            self._queue.assign_tasks_to_agent(agent.id)
        return agent

    @staticmethod
    def _changed(
        agent: Agent, values: dict[str, Any], sets: ReportedSets, now: datetime, *, from_agent: bool
    ) -> Agent:
        """The agent with a request's changes applied, as heard from at ``now``."""
        fields = dict(values, last_heard_from=now)
        state = fields.pop("state", None)
        if state is not None:
            fields.update(state_changes(agent, state, from_agent=from_agent))
        if sets.macs is not None:
            fields["mac_addresses"] = sets.macs
        if sets.gpus is not None:
            fields["gpus"] = sets.gpus
        return attrs.evolve(agent, **fields)

    # -- operators and frontends ---------------------------------------------------------------

    def get(self, actor: Identity, agent_id: uuid.UUID) -> Agent:
        """Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            agent = uow.agents.get(agent_id)
        if agent is None:
            raise NotFound(f"Agent {agent_id} not found")
        return agent

    def query(self, actor: Identity, query: AgentQuery = AgentQuery()) -> list[AgentSummary]:
        """Agents matching every filter, by hostname then id. Raises Forbidden."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return uow.agents.query(query)

    def overview(self, actor: Identity, query: AgentQuery = AgentQuery()) -> list[AgentOverview]:
        """Agents as a monitor lists them. Raises Forbidden."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return uow.agents.overview(query)

    def hostnames(self, actor: Identity, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Hostnames of those of these agents that exist (for frontends naming agents).
        Raises Forbidden."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return uow.agents.hostnames(agent_ids)

    def summaries(
        self, actor: Identity, agent_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, AgentSummary]:
        """Hostname and port of those of these agents that exist (agents on one host told
        apart). Raises Forbidden."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return uow.agents.summaries(agent_ids)

    def delete(self, actor: Identity, agent_id: uuid.UUID) -> bool:
        """Remove the agent (the agent itself or a wrangler), requeue its unfinished tasks and
        ask it to stop them.

        Returns whether it existed; deleting an unknown agent is not an error. Raises Forbidden.
        """
        self._policy.require_agent_or(actor, agent_id, Permission.MANAGE_AGENTS)
        after = _AfterCommit()
        now = self._clock.now()
        with self._uow() as uow:
            agent = uow.agents.get(agent_id, for_update=True)
            if agent is None:
                return False
            refuse_unbound_for_enrolled(uow, actor, agent_id, now)
            released = release_agent_tasks(uow, agent_id, "agent deleted", now, actor=actor)
            self._counters.requeued("agent_deleted", len(released))
            uow.agents.delete(agent_id)
            self._credentials.withdraw_agent_credentials(uow, agent_id, now)
            record(
                uow,
                actor,
                now,
                "agent.delete",
                agent_target(agent_id),
                before={
                    "hostname": agent.hostname,
                    "remote_ip": agent.remote_ip,
                    "port": agent.port,
                },
            )
            uow.commit()
        log.info("agent deleted", extra={"agent_id": str(agent_id), "hostname": agent.hostname})
        address = agent_address(agent)
        if released:
            after.assign_all = True
            if address is not None:
                after.stops.append((agent.id, address, agent.port, [t.id for t in released]))
        self._enqueue(after)
        return True

    def tags(self, actor: Identity, agent_id: uuid.UUID) -> frozenset[str]:
        """The operator's tags of an agent, which jobs' tag requirements match. Raises
        Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            if uow.agents.get(agent_id) is None:
                raise NotFound(f"Agent {agent_id} not found")
            return uow.agents.tags(agent_id)

    def set_tags(self, actor: Identity, agent_id: uuid.UUID, tags: Iterable[str]) -> frozenset[str]:
        """Replace the agent's tags. Raises Forbidden, NotFound, ValidationError."""
        self._policy.require(actor, Permission.MANAGE_AGENTS)
        wanted = frozenset(tags)
        validation.at_most("tags", wanted, validation.MAX_TAGS)
        for tag in wanted:
            if not 1 <= len(tag) <= 64 or not tag.isprintable():
                raise ValidationError(
                    f"tag {tag!r} must be 1 to 64 printable characters", field="tags"
                )
        with self._uow() as uow:
            agent = uow.agents.get(agent_id, for_update=True)
            if agent is None:
                raise NotFound(f"Agent {agent_id} not found")
            current = uow.agents.tags(agent_id)
            uow.agents.replace_tags(agent_id, wanted)
            if current != wanted:
                record(
                    uow,
                    actor,
                    self._clock.now(),
                    "agent.tags",
                    agent_target(agent_id),
                    {"tags": current},
                    {"tags": wanted},
                )
            uow.commit()
        log.info("agent tags set", extra={"agent_id": str(agent_id), "tags": sorted(wanted)})
        if agent.is_available:
            self._queue.assign_tasks_to_agent(agent_id)
        return wanted

    def tasks(self, actor: Identity, agent_id: uuid.UUID) -> list[tuple[Task, JobSummary]]:
        """The agent's tasks with a summary of each one's job. Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            if uow.agents.get(agent_id) is None:
                raise NotFound(f"Agent {agent_id} not found")
            return uow.tasks.of_agent(agent_id)

    def assign_task(self, actor: Identity, agent_id: uuid.UUID, task_id: int) -> Task:
        """Hand a task to an agent by hand: a new attempt, not yet sent. ``actor`` acts as the
        agent taking it.

        The previous agent, if another, is asked to stop it. Raises Forbidden, NotFound (agent
        or task) and Conflict (the task is already done, or canceled).
        """
        self._policy.require_agent(actor, agent_id)
        now = self._clock.now()
        after = _AfterCommit(send_to_agent=agent_id)
        with self._uow() as uow:
            agent = uow.agents.get(agent_id)
            if agent is None:
                raise NotFound(f"Agent {agent_id} not found")
            task = (
                None if not 0 <= task_id <= INT32_MAX else uow.tasks.get(task_id, for_update=True)
            )
            if task is None:
                raise NotFound("Task not found")
            if task.state is WorkState.DONE:
                raise Conflict(f"Task {task_id} is already done")
            if task.state is WorkState.CANCELED:
                raise Conflict(f"Task {task_id} is canceled: requeue its job first")
            assigned = task.assigned_to(agent_id)
            uow.tasks.save(assigned, task, reason=f"assigned by {actor.name}", at=now)
            record(
                uow,
                actor,
                now,
                "task.assign",
                job_target(task.job_id),
                {"task": task_id, "agent": task.agent_id},
                {"task": task_id, "agent": agent_id, "attempt": assigned.attempts},
            )
            recompute_job_states(uow, [task.job_id], now, actor=actor)
            previous = None
            if task.agent_id is not None and task.agent_id != agent_id:
                previous = uow.agents.get(task.agent_id)
            uow.commit()
        log.info(
            "task assigned by hand",
            extra={
                "task_id": task_id,
                "job_id": task.job_id,
                "agent_id": str(agent_id),
                "attempt": assigned.attempts,
            },
        )
        if previous is not None and (address := agent_address(previous)) is not None:
            after.stops.append((previous.id, address, previous.port, [task_id]))
        self._enqueue(after)
        return assigned

    # -- rules -----------------------------------------------------------------------------

    def _check_farm(self, changes: AgentChanges) -> None:
        sent = changes.farm_name
        if self._farm_name and sent not in (UNSET, None) and sent != self._farm_name:
            raise WrongFarm("Wrong farm name", field="farm_name")

    def _peer_ip(self, peer_address: str | None) -> str | None:
        """The peer's address when it is acceptable as remote_ip; never fails the request."""
        if not peer_address:
            return None
        try:
            return validation.ip_address(peer_address, allow_loopback=self._allow_loopback)
        except ValidationError:
            return None

    def _create(
        self,
        uow: UnitOfWork,
        actor: Identity,
        agent_id: uuid.UUID,
        values: dict[str, Any],
        sets: ReportedSets,
    ) -> Agent:
        missing = [name for name in REQUIRED_ON_CREATE if name not in values]
        if missing:
            raise ValidationError(f"request is missing field(s): {', '.join(missing)}")
        state = values.pop("state", AgentState.ONLINE)
        agent = Agent(
            id=agent_id,
            last_heard_from=self._clock.now(),
            mac_addresses=sets.macs or frozenset(),
            gpus=sets.gpus or frozenset(),
            remote_ip=values.pop("remote_ip", None),
            **values,
        )
        agent = attrs.evolve(agent, **state_changes(agent, state, from_agent=False))
        version_ids = self._defaults.resolve(uow.software)
        uow.agents.add(agent)
        uow.agents.attach_software(agent_id, version_ids)
        record(
            uow,
            actor,
            agent.last_heard_from or self._clock.now(),
            "agent.enroll",
            agent_target(agent_id),
            after={
                "hostname": agent.hostname,
                "remote_ip": agent.remote_ip,
                "port": agent.port,
                "state": agent.shown_state,
                "version": agent.version,
            },
        )
        log.info(
            "agent created",
            extra={
                "agent_id": str(agent_id),
                "hostname": agent.hostname,
                "state": str(agent.shown_state),
            },
        )
        return uow.agents.get(agent_id) or agent

    def _apply(
        self,
        uow: UnitOfWork,
        actor: Identity,
        agent: Agent,
        values: dict[str, Any],
        sets: ReportedSets,
        changes: AgentChanges,
        after: _AfterCommit,
        *,
        from_agent: bool,
        active: dict[int, int] | None = None,
    ) -> Agent:
        before = agent
        authorize_report(
            self._policy, actor, agent.id, before, values, sets, changes, from_agent=from_agent
        )
        now = self._clock.now()
        agent = self._changed(agent, values, sets, now, from_agent=from_agent)
        macs, gpus = sets.macs, sets.gpus
        why = "reported by the agent" if from_agent else f"set by {actor.name}"
        uow.agents.save(agent, before, reason=why, at=now)
        if macs is not None and macs != before.mac_addresses:
            uow.agents.replace_mac_addresses(agent.id, macs)
        if gpus is not None and gpus != before.gpus:
            uow.agents.replace_gpus(agent.id, gpus)
        self._record_changes(uow, actor, now, before, agent)
        if before.shown_state is not agent.shown_state:
            log.info(
                "agent state changed",
                extra={
                    "agent_id": str(agent.id),
                    "from": str(before.shown_state),
                    "to": str(agent.shown_state),
                    "reason": "reported by agent" if from_agent else "set by request",
                },
            )
        if agent.state is AgentState.OFFLINE and before.state is not AgentState.OFFLINE:
            released = release_agent_tasks(uow, agent.id, "agent went offline", now, actor=actor)
            if released:
                self._counters.requeued("agent_offline", len(released))
                after.assign_all = True
        elif changes.reported_task_ids is not UNSET:
            outcome = self._reconciler.reconcile(
                uow, agent, changes.reported_task_ids, changes.reported_attempts, active=active
            )
            after.busy = outcome.still_held > 0
            address = agent_address(agent)
            if outcome.strays and address is not None:
                log.warning(
                    "agent runs tasks it does not hold",
                    extra={"agent_id": str(agent.id), "task_ids": list(outcome.strays)},
                )
                after.stops.append((agent.id, address, agent.port, list(outcome.strays)))
            if outcome.unsent:
                after.send_to_agent = agent.id
            if outcome.freed_work:
                after.assign_all = True
        if agent.upgrade_to is not None and agent.upgrade_to != before.upgrade_to:
            after.update_agent = agent.id
        return agent

    @staticmethod
    def _record_changes(
        uow: UnitOfWork, actor: Identity, now: datetime, before: Agent, agent: Agent
    ) -> None:
        """The events of an agent's changes; a heartbeat that changes nothing records none."""
        target = agent_target(agent.id)
        if before.disabled != agent.disabled:
            action = "agent.disable" if agent.disabled else "agent.enable"
            record(
                uow,
                actor,
                now,
                action,
                target,
                {"disabled": before.disabled},
                {"disabled": agent.disabled},
            )
        if before.state is not agent.state:
            record(
                uow,
                actor,
                now,
                "agent.state",
                target,
                {"state": before.state},
                {"state": agent.state},
            )
        old, new = changes(before, agent, RECORDED_FIELDS)
        if new:
            record(uow, actor, now, "agent.update", target, old, new)

    @staticmethod
    def _sets(changes: AgentChanges) -> ReportedSets:
        return ReportedSets(
            macs=None
            if changes.mac_addresses is UNSET
            else validation.mac_addresses(changes.mac_addresses),
            gpus=None if changes.gpus is UNSET else validation.gpu_names(changes.gpus),
        )

    def _enqueue(self, after: _AfterCommit) -> None:
        if after.update_agent is not None:
            self._queue.update_agent(after.update_agent)
        if after.send_to_agent is not None:
            self._queue.send_tasks_to_agent(after.send_to_agent)
        for agent_id, host, port, task_ids in after.stops:
            self._queue.stop_tasks(agent_id, host, port, task_ids)
        if after.assign_all:
            self._queue.assign_tasks()
        elif after.assign_to_agent is not None:
            self._queue.assign_tasks_to_agent(after.assign_to_agent)
