"""``farm jobs why`` and ``farm agents why``: the scheduler's explanations, for people."""

from __future__ import annotations

from collections.abc import Sequence

from farm_cli import output
from farm_client import AgentExplanation, Finding, JobExplanation, NamedAgent, NamedJob


def _agents(refs: Sequence[NamedAgent], count: int) -> str:
    names = ", ".join(f"{a.hostname} ({a.id})" for a in refs)
    return names + (f" and {count - len(refs)} more" if count > len(refs) else "")


def _jobs(refs: Sequence[NamedJob], count: int) -> str:
    names = ", ".join(f"{j.id} ({j.title})" for j in refs)
    return names + (f" and {count - len(refs)} more" if count > len(refs) else "")


def _reasons(findings: Sequence[Finding]) -> None:
    for finding in findings:
        print(f"  {finding.reason}: {finding.detail}")


def print_job(explained: JobExplanation, as_json: bool) -> None:
    if as_json:
        output.emit_json(explained.raw)
        return
    job = explained.job
    if explained.can_run_now:
        verdict = f"can run now on {explained.eligible_count} agent(s)"
    else:
        verdict = "cannot run now"
    print(f"job {job.id} ({job.title}), {explained.state}: {verdict}")
    if explained.note:
        print(f"  note: {explained.note}")
    _reasons(explained.reasons)
    if explained.eligible:
        print(f"eligible: {_agents(explained.eligible, explained.eligible_count)}")
    for group in explained.agents:
        print(f"{group.reason} ({group.count} agent(s)): {group.detail}")
        print(f"  {_agents(group.agents, group.count)}")
    if not explained.agents and not explained.eligible:
        print("no agent is registered")


def print_agent(explained: AgentExplanation, as_json: bool) -> None:
    if as_json:
        output.emit_json(explained.raw)
        return
    agent = explained.agent
    if explained.would_get is not None:
        verdict = f"would get job {explained.would_get.id} ({explained.would_get.title})"
    elif explained.reasons:
        verdict = "gets no work now"
    else:
        verdict = "idle: no candidate job it may take"
    print(f"agent {agent.hostname} ({agent.id}), {explained.state}: {verdict}")
    _reasons(explained.reasons)
    if explained.eligible:
        print(f"eligible jobs: {_jobs(explained.eligible, explained.eligible_count)}")
    for group in explained.jobs:
        print(f"{group.reason} ({group.count} job(s)): {group.detail}")
        print(f"  {_jobs(group.jobs, group.count)}")
