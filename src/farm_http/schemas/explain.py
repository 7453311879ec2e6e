"""The explanations' JSON: whether a job can run now and why not, why an agent is idle."""

from __future__ import annotations

from typing import Any

from farm_domain.explain import (
    AgentExplanation,
    AgentRef,
    Finding,
    JobExplanation,
    JobRef,
)


def _agent(ref: AgentRef) -> dict[str, Any]:
    return {"id": str(ref.id), "hostname": ref.hostname, "port": ref.port}


def _job(ref: JobRef) -> dict[str, Any]:
    return {"id": ref.id, "title": ref.title}


def _finding(finding: Finding) -> dict[str, Any]:
    return {"reason": finding.reason.value, "detail": finding.detail}


def job_explanation_json(explained: JobExplanation) -> dict[str, Any]:
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


def agent_explanation_json(explained: AgentExplanation) -> dict[str, Any]:
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
