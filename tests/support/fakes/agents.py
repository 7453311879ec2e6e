"""The agents' fake repository."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from farm_domain.agents import (
    Agent,
    AgentOverview,
    AgentQuery,
    AgentSort,
    AgentSummary,
    SoftReport,
    SoftwareRef,
)
from farm_domain.errors import AlreadyExists
from farm_domain.history import agent_change, agent_created
from tests.support.fakes.history import record_agent_change
from tests.support.fakes.store import FakeData, FakeStore


class FakeAgentRepository:
    def __init__(self, data: FakeData, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def _with_software(self, agent: Agent) -> Agent:
        versions = {v.id: (s.name, v) for s in self._d.software.values() for v in s.versions}
        refs = sorted(
            (versions[v] for v in self._d.agent_software.get(agent.id, ()) if v in versions),
            key=lambda item: (item[0], item[1].rank),
        )
        return attrs.evolve(agent, software=tuple(SoftwareRef(n, v.version) for n, v in refs))

    def get(self, agent_id: uuid.UUID, *, for_update: bool = False) -> Agent | None:
        agent = self._d.agents.get(agent_id)
        return None if agent is None else self._with_software(agent)

    def get_with_active(
        self, agent_id: uuid.UUID, *, for_update: bool = True
    ) -> tuple[Agent, dict[int, int]] | None:
        agent = self.get(agent_id, for_update=for_update)
        if agent is None:
            return None
        return agent, {
            t.id: t.attempts
            for t in self._d.tasks.values()
            if t.agent_id == agent_id and not t.is_finished
        }

    def get_as_heard(
        self, agent_id: uuid.UUID, now: datetime
    ) -> tuple[Agent, dict[int, int], bool] | None:
        found = self.get_with_active(agent_id, for_update=False)
        if found is None:
            return None
        enrolled = any(
            token.agent_id == agent_id and token.usable(now) for token, _ in self._d.tokens.values()
        )
        return found[0], found[1], enrolled

    def add(self, agent: Agent) -> None:
        if agent.id in self._d.agents:
            raise AlreadyExists(f"Agent {agent.id} already exists")
        self._d.agents[agent.id] = attrs.evolve(agent, software=())
        self._d.gpu_catalogue |= agent.gpus
        record_agent_change(self._d, self._store, agent_created(agent))

    def save(self, agent: Agent, previous: Agent, *, reason: str, at: datetime) -> None:
        old = self._d.agents[agent.id]
        self._d.agents[agent.id] = attrs.evolve(
            agent, mac_addresses=old.mac_addresses, gpus=old.gpus, software=()
        )
        record_agent_change(self._d, self._store, agent_change(previous, agent, reason, at))

    def replace_mac_addresses(self, agent_id: uuid.UUID, macs: frozenset[str]) -> None:
        self._d.agents[agent_id] = attrs.evolve(self._d.agents[agent_id], mac_addresses=macs)

    def replace_gpus(self, agent_id: uuid.UUID, names: frozenset[str]) -> None:
        self._d.gpu_catalogue |= names
        self._d.agents[agent_id] = attrs.evolve(self._d.agents[agent_id], gpus=names)

    def attach_software(self, agent_id: uuid.UUID, version_ids: Iterable[int]) -> None:
        self._d.agent_software.setdefault(agent_id, set()).update(version_ids)

    def tags(self, agent_id: uuid.UUID) -> frozenset[str]:
        return frozenset(self._d.agent_tags.get(agent_id, ()))

    def replace_tags(self, agent_id: uuid.UUID, tags: frozenset[str]) -> None:
        self._d.agent_tags[agent_id] = set(tags)

    def detach_software(self, agent_id: uuid.UUID, version_id: int) -> None:
        self._d.agent_software.get(agent_id, set()).discard(version_id)

    def record_heard(self, reports: Sequence[SoftReport]) -> int:
        written = 0
        for report in reports:
            agent = self._d.agents.get(report.agent_id)
            if agent is None or (
                agent.last_heard_from is not None and agent.last_heard_from > report.heard
            ):
                continue
            self._d.agents[report.agent_id] = attrs.evolve(
                agent,
                last_heard_from=report.heard,
                free_ram=report.free_ram,
                time_offset=report.time_offset,
            )
            written += 1
        return written

    def delete(self, agent_id: uuid.UUID) -> bool:
        if self._d.agents.pop(agent_id, None) is None:
            return False
        self._d.agent_software.pop(agent_id, None)
        self._d.agent_tags.pop(agent_id, None)
        for key in [k for k in self._d.blocks if k[1] == agent_id]:
            del self._d.blocks[key]
        for task_id, task in list(self._d.tasks.items()):
            if task.agent_id == agent_id:  # ON DELETE SET NULL
                self._d.tasks[task_id] = attrs.evolve(task, agent_id=None)
        return True

    def overview(self, query: AgentQuery) -> list[AgentOverview]:
        found = []
        for summary in self.query(query):
            agent = self.get(summary.id)
            assert agent is not None
            active = sum(
                1 for t in self._d.tasks.values() if t.agent_id == agent.id and not t.is_finished
            )
            found.append(
                AgentOverview(
                    agent.id,
                    agent.hostname,
                    agent.remote_ip,
                    agent.port,
                    agent.shown_state,
                    agent.ram,
                    agent.free_ram,
                    agent.cpus,
                    agent.last_heard_from,
                    active,
                    agent.software,
                )
            )
        return found

    def hostnames(self, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        return {
            agent_id: self._d.agents[agent_id].hostname
            for agent_id in set(agent_ids)
            if agent_id in self._d.agents
        }

    def summaries(self, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AgentSummary]:
        found = (self._d.agents[i] for i in set(agent_ids) if i in self._d.agents)
        return {a.id: AgentSummary(a.id, a.hostname, a.port, a.remote_ip) for a in found}

    def query(self, query: AgentQuery) -> list[AgentSummary]:
        def keep(a: Agent) -> bool:
            checks = [
                query.min_ram is None or a.ram >= query.min_ram,
                query.max_ram is None or a.ram <= query.max_ram,
                query.min_cpus is None or a.cpus >= query.min_cpus,
                query.max_cpus is None or a.cpus <= query.max_cpus,
                query.hostname is None or a.hostname == query.hostname,
                query.remote_ip is None or a.remote_ip == query.remote_ip,
                query.port is None or a.port == query.port,
                query.state is None or a.shown_state is query.state,
                query.text is None
                or query.text.lower() in a.hostname.lower()
                or query.text.lower() in (a.remote_ip or ""),
                query.tag is None or query.tag in self._d.agent_tags.get(a.id, ()),
            ]
            return all(checks)

        def key(a: Agent) -> tuple[Any, ...]:
            ties = (a.hostname, str(a.id))
            match query.sort:
                case AgentSort.HOSTNAME:
                    return ties
                case AgentSort.STATE:
                    return (a.shown_state.label, *ties)
                case AgentSort.RAM:
                    return (a.ram, *ties)
                case AgentSort.CPUS:
                    return (a.cpus, *ties)
                case AgentSort.LAST_HEARD:
                    heard = a.last_heard_from
                    return (heard is not None, heard or datetime.min.replace(tzinfo=UTC), *ties)

        found = sorted(
            (a for a in self._d.agents.values() if keep(a)), key=key, reverse=query.descending
        )
        found = found[query.offset :]
        if query.limit is not None:
            found = found[: query.limit]
        return [AgentSummary(a.id, a.hostname, a.port, a.remote_ip) for a in found]
