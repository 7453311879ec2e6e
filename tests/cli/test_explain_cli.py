"""``farm jobs why`` and ``farm agents why`` through the entry point, in local mode (SQLite,
PostgreSQL) and in remote mode (``cli_farm``)."""

from __future__ import annotations

import json
import os
import uuid

from farm_adapters.composition import build_runtime
from farm_adapters.settings import Settings
from farm_domain.agents import AgentChanges
from tests.support.cli import run
from tests.support.fakes.collaborators import RecordingQueue
from tests.support.identities import ADMIN


def announce(hostname: str, free_ram: int, **fields: object) -> uuid.UUID:
    """An agent at 127.0.0.1:1025, which nothing answers: announced through a recording queue,
    so that no work is sent to it (which would take it offline)."""
    runtime = build_runtime(Settings.load(os.environ), queue=RecordingQueue())
    agent_id = uuid.uuid4()
    changes = {"hostname": hostname, "ram": 8192, "free_ram": free_ram, "cpus": 8, "port": 1025}
    changes.update(fields)
    runtime.farm.agents.announce(
        ADMIN,
        AgentChanges(id=str(agent_id), **changes),  # type: ignore[arg-type]  # any AgentChanges fields
        "127.0.0.1",
    )
    runtime.close()
    return agent_id


def submit(capsys, *extra: str) -> int:
    code, out, err = run(
        capsys,
        *("jobs", "submit", "--title", "shot", "--frames", "1-3", "--command", "true"),
        *extra,
        "--json",
    )
    assert code == 0, err
    job_id: int = json.loads(out)["id"]
    return job_id


def test_jobs_why_says_which_agents_could_take_the_job_and_why_the_others_not(
    cli_farm, capsys
) -> None:
    job_id = submit(capsys, "--ram", "1024")
    big = announce("big", 8000)
    small = announce("small", 100)
    quiet = announce("quiet", 8000, use_address="passive")
    code, out, _ = run(capsys, "jobs", "why", str(job_id))
    assert code == 0
    assert out.splitlines() == [
        f"job {job_id} (shot), queued: can run now on 1 agent(s)",
        f"eligible: big ({big})",
        "agent_uncallable (1 agent(s)): the master does not call the agent: passive agents"
        + " are never called",
        f"  quiet ({quiet})",
        "ram (1 agent(s)): the job needs 1024 MB of RAM free",
        f"  small ({small})",
    ]
    code, out, _ = run(capsys, "jobs", "why", str(job_id), "--json")
    answer = json.loads(out)
    assert (answer["can_run_now"], answer["eligible_count"]) == (True, 1)
    assert [(g["reason"], g["count"]) for g in answer["agents"]] == [
        ("agent_uncallable", 1),
        ("ram", 1),
    ]
    code, out, _ = run(capsys, "agents", "why", str(big))
    assert (
        code == 0
        and out.splitlines()[0] == f"agent big ({big}), online: would get job {job_id} (shot)"
    )
    code, out, _ = run(capsys, "agents", "why", str(small), "--json")
    answer = json.loads(out)
    assert answer["would_get"] is None
    assert [(g["reason"], g["count"]) for g in answer["jobs"]] == [("ram", 1)]


def test_a_paused_job_cannot_run_and_unknown_ones_are_one_clear_line(cli_farm, capsys) -> None:
    job_id = submit(capsys)
    announce("big", 8000)
    assert run(capsys, "jobs", "pause", str(job_id))[0] == 0
    code, out, _ = run(capsys, "jobs", "why", str(job_id))
    assert code == 0
    assert out.splitlines()[:2] == [
        f"job {job_id} (shot), paused: cannot run now",
        "  paused: the job is paused",
    ]
    code, out, err = run(capsys, "jobs", "why", "999999")
    assert (code, out, err.strip()) == (1, "", "farm: Job 999999 not found")
    code, _, err = run(capsys, "agents", "why", str(uuid.uuid4()))
    assert code == 1 and "not found" in err
