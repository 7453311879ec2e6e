"""An agent's report, field by field: which fields are soft state (written late, in batches),
which changes are recorded in the audit trail, and who may make which change."""

from __future__ import annotations

import operator
import uuid
from typing import Any

import attrs

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.agents import UNSET, Agent, AgentChanges, SoftReport
from farm_domain.enums import AgentState

RECORDED_FIELDS = (
    "hostname",
    "remote_ip",
    "use_address",
    "os_class",
    "os_fullname",
    "cpu_name",
    "ram",
    "cpus",
    "port",
    "version",
    "upgrade_to",
    "ram_allocation",
    "cpu_allocation",
    "restart_requested",
    "mac_addresses",
    "gpus",
)
"""The agent's fields whose changes are ``agent.update`` events. ``state`` and ``disabled``
have events of their own; ``free_ram``, ``time_offset`` and the contact times change with
every heartbeat and are not events."""


SOFT_FIELDS = frozenset({"free_ram", "time_offset", "last_heard_from"})
"""An agent's soft state: what moves with every heartbeat, that nothing else hangs on. It may be
written late and in batches (``SoftState``); every other change is written in the request's own
transaction, as is any heartbeat that reconciles, requeues or fails a task."""


# Compared on every heartbeat: one C call per agent (attrs.evolve cost five times as much).
_HARD_STATE = operator.attrgetter(
    *(field.name for field in attrs.fields(Agent) if field.name not in SOFT_FIELDS)
)


def soft_report(before: Agent, after: Agent) -> SoftReport | None:
    """``after`` as a soft report when it differs from ``before`` in soft state alone; None when
    anything else changed (a state, the operator's flag, a set, an audited field): those are
    never deferred."""
    if after.last_heard_from is None:
        return None
    if _HARD_STATE(after) != _HARD_STATE(before):
        return None
    return SoftReport(after.id, after.last_heard_from, after.free_ram, after.time_offset)


_DECIDED_FIELDS = frozenset({"state", "upgrade_to", "restart_requested"})
"""The fields ``authorize_report`` decides one by one; the others are the agent's own reports."""


@attrs.frozen
class ReportedSets:
    """The validated MAC addresses and GPUs of a request; None where not sent."""

    macs: frozenset[str] | None
    gpus: frozenset[str] | None


def authorize_report(
    policy: AccessPolicy,
    actor: Identity,
    agent_id: uuid.UUID,
    before: Agent | None,
    values: dict[str, Any],
    sets: ReportedSets,
    changes: AgentChanges,
    *,
    from_agent: bool,
    enrolling: bool = False,
) -> None:
    """Decide, field by field, whether ``actor`` may make these changes (Forbidden, before
    anything is written; ``before`` is the agent as stored, None for a new one):

    - the operator's decisions need MANAGE_AGENTS: ``state`` online/running when not the
      agent speaking (an enable, clearing the operator's disable), ``upgrade_to`` changed,
      ``restart_requested`` changed to true;
    - ``state`` disabled: the agent itself or MANAGE_AGENTS (stopping work is always safe);
    - everything else is what the agent reports about itself and needs acting as the agent:
      ``state`` offline (or online/running from the agent, which never re-enables),
      ``restart_requested`` back to false, ``current_assignments``, and every other field;
      so does a request that sends nothing (a bare heartbeat).
    Fields sent unchanged (an agent echoing its record) need nothing. ``enrolling``: the
    actor may enroll this new agent, which stands for acting as it.
    """
    manage = as_agent = agent_or_manage = False
    state = values.get("state")
    if state is AgentState.DISABLED:
        agent_or_manage = True
    elif state is AgentState.OFFLINE or (state is not None and from_agent):
        as_agent = True
    elif state is not None:
        manage = True
    stored = {name: getattr(before, name) if before else None for name in values}
    if "upgrade_to" in values and values["upgrade_to"] != stored["upgrade_to"]:
        manage = True
    if "restart_requested" in values and values["restart_requested"] != bool(
        stored["restart_requested"]
    ):
        if values["restart_requested"]:
            manage = True
        else:
            as_agent = True
    reported = [name for name in values if name not in _DECIDED_FIELDS]
    if (
        reported
        or sets.macs is not None
        or sets.gpus is not None
        or changes.reported_task_ids is not UNSET
        or not (manage or as_agent or agent_or_manage or set(values) & _DECIDED_FIELDS)
    ):
        as_agent = True
    if manage:
        policy.require(actor, Permission.MANAGE_AGENTS)
    if as_agent and not enrolling:
        policy.require_agent(actor, agent_id)
    if agent_or_manage and not (manage or as_agent):
        policy.require_agent_or(actor, agent_id, Permission.MANAGE_AGENTS)
