"""The blocklist's fake repository."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import attrs

from farm_domain.scheduling import JobAgentBlock
from tests.support.fakes.store import FakeData


class FakeBlocklistRepository:
    def __init__(self, data: FakeData) -> None:
        self._d = data

    def _get(self, job_id: int, agent_id: uuid.UUID, now: datetime) -> JobAgentBlock:
        if job_id not in self._d.jobs or agent_id not in self._d.agents:
            raise KeyError("no such job or agent")
        return self._d.blocks.get(
            (job_id, agent_id), JobAgentBlock(job_id, agent_id, updated_on=now)
        )

    def record_failure(self, job_id: int, agent_id: uuid.UUID, now: datetime) -> None:
        block = self._get(job_id, agent_id, now)
        self._d.blocks[(job_id, agent_id)] = attrs.evolve(
            block, failures=block.failures + 1, updated_on=now
        )

    def record_rejection(
        self,
        job_id: int,
        agent_id: uuid.UUID,
        fingerprint: str,
        now: datetime,
        refusal: str | None = None,
    ) -> None:
        block = self._get(job_id, agent_id, now)
        self._d.blocks[(job_id, agent_id)] = attrs.evolve(
            block, rejected_fingerprint=fingerprint, refusal=refusal, updated_on=now
        )

    def of_agent(self, agent_id: uuid.UUID) -> list[JobAgentBlock]:
        return sorted(
            (b for b in self._d.blocks.values() if b.agent_id == agent_id),
            key=lambda b: (b.job_id, str(b.agent_id)),
        )

    def of_agents(self, agent_ids: Sequence[uuid.UUID]) -> list[JobAgentBlock]:
        wanted = set(agent_ids)
        return sorted(
            (b for b in self._d.blocks.values() if b.agent_id in wanted),
            key=lambda b: (b.job_id, str(b.agent_id)),
        )

    def of_job(self, job_id: int) -> list[JobAgentBlock]:
        return sorted(
            (b for b in self._d.blocks.values() if b.job_id == job_id),
            key=lambda b: str(b.agent_id),
        )

    def clear(self, job_id: int, agent_id: uuid.UUID) -> None:
        self._d.blocks.pop((job_id, agent_id), None)

    def clear_job(self, job_id: int) -> int:
        gone = [key for key in self._d.blocks if key[0] == job_id]
        for key in gone:
            del self._d.blocks[key]
        return len(gone)
