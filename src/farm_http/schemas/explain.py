"""The explanations' JSON: whether a job can run now and why not, why an agent is idle."""

from __future__ import annotations

from typing import Annotated, TypedDict

from farm_domain.enums import AgentState
from farm_domain.explain import (
    AgentExplanation,
    AgentRef,
    Finding,
    JobExplanation,
    JobRef,
)
from farm_domain.scheduling import Reason
from farm_http.conversion import UuidText, values_of

ReasonCode = Annotated[str, values_of(Reason)]


class AgentRefJson(TypedDict):
    id: UuidText
    hostname: str
    port: int


class JobRefJson(TypedDict):
    id: int
    title: str


class FindingJson(TypedDict):
    reason: ReasonCode
    detail: str


class AgentGroupJson(TypedDict):
    """Agents that do not get the job for the same reason: ``count`` of them, the first few
    listed."""

    reason: ReasonCode
    detail: str
    count: int
    agents: list[AgentRefJson]


class JobGroupJson(TypedDict):
    """Jobs the agent does not get for the same reason: ``count`` of them, the first few
    listed."""

    reason: ReasonCode
    detail: str
    count: int
    jobs: list[JobRefJson]


class JobExplanationJson(TypedDict):
    """Whether the job can run now and, agent by agent, why not."""

    job: JobRefJson
    state: str
    can_run_now: bool
    reasons: list[FindingJson]
    agents: list[AgentGroupJson]
    eligible: list[AgentRefJson]
    eligible_count: int
    note: str | None


class AgentExplanationJson(TypedDict):
    """Why the agent is idle: what it would get next, and why it does not get other jobs."""

    agent: AgentRefJson
    state: Annotated[str, values_of(AgentState)]
    reasons: list[FindingJson]
    would_get: JobRefJson | None
    jobs: list[JobGroupJson]
    eligible: list[JobRefJson]
    eligible_count: int


def _agent(ref: AgentRef) -> AgentRefJson:
    return {"id": str(ref.id), "hostname": ref.hostname, "port": ref.port}


def _job(ref: JobRef) -> JobRefJson:
    return {"id": ref.id, "title": ref.title}


def _finding(finding: Finding) -> FindingJson:
    return {"reason": finding.reason.value, "detail": finding.detail}


def job_explanation_json(explained: JobExplanation) -> JobExplanationJson:
    return {
        "job": _job(explained.job),
        "state": explained.state.value if explained.state else "queued",
        "can_run_now": explained.can_run_now,
        "reasons": [_finding(f) for f in explained.reasons],
        "agents": [
            {
                "reason": group.reason.value,
                "detail": group.detail,
                "count": group.count,
                "agents": [_agent(a) for a in group.agents],
            }
            for group in explained.agents
        ],
        "eligible": [_agent(a) for a in explained.eligible],
        "eligible_count": explained.eligible_count,
        "note": explained.note,
    }


def agent_explanation_json(explained: AgentExplanation) -> AgentExplanationJson:
    return {
        "agent": _agent(explained.agent),
        "state": explained.state.label,
        "reasons": [_finding(f) for f in explained.reasons],
        "would_get": None if explained.would_get is None else _job(explained.would_get),
        "jobs": [
            {
                "reason": group.reason.value,
                "detail": group.detail,
                "count": group.count,
                "jobs": [_job(j) for j in group.jobs],
            }
            for group in explained.jobs
        ],
        "eligible": [_job(j) for j in explained.eligible],
        "eligible_count": explained.eligible_count,
    }
