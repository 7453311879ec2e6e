"""Schemathesis against a real ``farm serve``: requests generated from the OpenAPI document the
master serves (the boundaries of every declared type, then random valid and invalid requests),
every answer checked against that document.

No answer may be a server error (a 500 is a bug), and every answer must be one the document
names for the operation, with the declared content type and a body matching its schema. Two
runs: one on an empty farm (mostly refusals: 400, 404), one on a farm with a job, its tasks, an
agent, software, a job type, a log and an update archive, with the path parameters naming them
(real answers; deletions left out so that every operation finds them). Bounded: a few examples
per operation, from a fixed seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Master, Process, base_env

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
MAX_EXAMPLES = 5
ROOT = Path(__file__).resolve().parents[2]
AGENT = uuid.UUID("00000000-0000-4000-8000-00000000a9e7")


@pytest.fixture
def master(tmp_path: Path) -> Iterator[Master]:
    """A master that admits no one without a token."""
    processes: list[Process] = []
    try:
        env = base_env(tmp_path, FARM_ANONYMOUS_NETWORKS="", FARM_ACCESS_LOG="all")
        yield Master(tmp_path, processes, env, ())
    finally:
        for process in reversed(processes):
            process.stop()


def _token(master: Master) -> str:
    return (master.data_dir / "admin-token").read_text().strip()


def _answered(master: Master) -> Counter[tuple[str, str, int]]:
    """(method, path, status) of every request the master's access log shows."""
    answered: Counter[tuple[str, str, int]] = Counter()
    for line in master.process.log.read_text(errors="replace").splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("logger") == "farm.http.access":
            answered[entry["method"], entry["path"], entry["status"]] += 1
    return answered


def _schemathesis(master: Master, workdir: Path, *args: str) -> None:
    """``schemathesis run`` on the master's own document; fails the test on any failure."""
    workdir.mkdir(exist_ok=True)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{master.url}/api/v1/openapi.json",
            "--url",
            master.url,
            "--header",
            f"Authorization: Bearer {_token(master)}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "16",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--warnings",
            "off",
            "--no-color",
            *args,
        ],
        cwd=workdir,  # reads workdir's schemathesis.toml, if any
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    server = master.process.log.read_text(errors="replace")
    errors = "\n".join(line for line in server.splitlines() if '"level":"error"' in line)
    assert run.returncode == 0, f"{run.stdout[-30000:]}\n{run.stderr[-3000:]}\n{errors[-5000:]}"


def _scene(master: Master) -> dict[str, str]:
    """What the second run acts on; returns its path parameters."""
    with httpx.Client(
        base_url=f"{master.url}/api/v1",
        headers={"Authorization": f"Bearer {_token(master)}"},
        timeout=10,
    ) as api:

        def ok(answer: httpx.Response) -> httpx.Response:
            assert answer.is_success, answer.text
            return answer

        ok(api.post("/software", json={"software": "render", "versions": [{"version": "4.2"}]}))
        ok(api.post("/jobtypes", json={"name": "render"}))
        announce = {
            "id": str(AGENT),
            "hostname": "node-a",
            "ram": 4096,
            "free_ram": 2048,
            "cpus": 8,
            "port": 50000,
        }
        ok(api.post("/agents", json=announce))
        ok(api.post(f"/agents/{AGENT}/software", json={"software": "render", "version": "4.2"}))
        job = ok(
            api.post("/jobs", json={"title": "shot", "jobtype": "render", "start": 1, "end": 4})
        ).json()["id"]
        task = ok(api.get(f"/jobs/{job}/tasks")).json()[0]["id"]
        ok(api.post(f"/agents/{AGENT}/tasks", json={"id": task}))
        logs = f"/jobs/{job}/tasks/{task}/attempts/1/logs"
        ok(api.post(logs, json={"identifier": "render.log", "agent_id": str(AGENT)}))
        ok(
            api.put(
                f"{logs}/render.log/logfile",
                content=b"frame 1\n",
                headers={"Content-Type": "text/plain"},
            )
        )
        ok(
            api.put(
                "/agents/updates/4.2",
                content=b"PK\x05\x06" + bytes(18),
                headers={"Content-Type": "application/zip"},
            )
        )
    return {
        "job": str(job),
        "agent_id": str(AGENT),
        "name": "render",
        "version": "4.2",
        "task_id": str(task),
        "attempt": "1",
        "identifier": "render.log",
    }


def test_no_answer_on_an_empty_farm_is_a_server_error_or_contradicts_the_document(
    master: Master, tmp_path: Path
) -> None:
    _schemathesis(master, tmp_path / "empty")


def test_no_answer_on_a_farm_at_work_is_a_server_error_or_contradicts_the_document(
    master: Master, tmp_path: Path
) -> None:
    parameters = _scene(master)
    workdir = tmp_path / "at-work"
    workdir.mkdir()
    lines = ["[parameters]"]
    lines += [f'"path.{name}" = "{value}"' for name, value in parameters.items()]
    # A job type's versions are numbered.
    lines += [
        "",
        "[[operations]]",
        'include-path-regex = "^/api/v1/jobtypes/"',
        'parameters = { "path.version" = 1 }',
    ]
    (workdir / "schemathesis.toml").write_text("\n".join(lines) + "\n")
    before = _answered(master)
    _schemathesis(master, workdir, "--exclude-method", "DELETE")
    # The run reached real objects: these answered with what they hold, not only refusals.
    succeeded = {
        (method, path)
        for (method, path, status), count in (_answered(master) - before).items()
        if 200 <= status < 300
    }
    job, task, agent = parameters["job"], parameters["task_id"], parameters["agent_id"]
    logs = f"/api/v1/jobs/{job}/tasks/{task}/attempts/1/logs"
    for reached in (
        ("GET", f"/api/v1/jobs/{job}"),
        ("GET", f"/api/v1/jobs/{job}/tasks"),
        ("GET", f"/api/v1/jobs/{job}/tasks/{task}"),
        ("GET", f"/api/v1/jobs/{job}/explain"),
        ("GET", f"/api/v1/agents/{agent}"),
        ("GET", f"/api/v1/agents/{agent}/tasks"),
        ("GET", f"/api/v1/agents/{agent}/explain"),
        ("GET", "/api/v1/software/render"),
        ("GET", "/api/v1/jobtypes/render/versions/1"),
        ("GET", logs),
        ("GET", f"{logs}/render.log/logfile"),
        ("GET", "/api/v1/agents/updates/4.2"),
        ("GET", "/api/v1/events"),
    ):
        assert reached in succeeded, reached
