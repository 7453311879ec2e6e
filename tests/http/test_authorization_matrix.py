"""The authorization matrix: every API route and method, called by every kind of caller.

Each row of ``EXPECTED`` is written out by hand (not computed from the policy, which it checks):
one character per caller, in the order of ``CALLERS``: ``2`` a 2xx answer, ``1`` 401, ``3`` 403.
Every refusal leaves the stored state as it was (every table, every stored file). The callers
use real tokens made by ``farm.identities``; the target of every call exists, so an allowed call
succeeds. ``test_every_api_route_and_method_has_a_row`` fails when a route or a method is added
to the app without a row here.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import falcon.testing
import pytest
import sqlalchemy as sa

from farm_adapters.sql.tables import metadata
from farm_domain.access import Identity, Role
from farm_domain.controls import JobAction, TaskAction
from farm_domain.credentials import Token, digest
from farm_http.routes import ID, ROUTES, responders
from tests.support.databases import migrate
from tests.support.http_harness import Harness, make_harness

CALLERS = (
    "no token",
    "malformed header",
    "unknown token",
    "revoked token",
    "expired token",
    "viewer",
    "artist, own job",
    "artist, another's job",
    "wrangler",
    "admin",
    "agent-join",
    "agent A on A",
    "agent B on A",
)
TASK = f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}"
LOGS = f"{TASK}/attempts/{{attempt:{ID}}}/logs"

READ = "11111" + "22222" + "3" + "22"
ADMIN_ONLY = "11111" + "33332" + "3" + "33"
AGENT_A = "11111" + "33332" + "3" + "23"
AGENT_A_OR_MANAGER = "11111" + "33322" + "3" + "23"
WRANGLER = "11111" + "33322" + "3" + "33"
OWN_JOB = "11111" + "32322" + "3" + "33"

EXPECTED: dict[tuple[str, str, str], str] = {
    ("/api/v1/agents", "GET", ""): READ,
    ("/api/v1/agents", "POST", "A announces again"): AGENT_A,
    ("/api/v1/agents", "POST", "a new agent"): "11111" + "33332" + "2" + "33",
    # The same static description for everyone: any credential reads it.
    ("/api/v1/agents/schema", "GET", ""): "11111" + "22222" + "2" + "22",
    ("/api/v1/agents/{agent_id:uuid}", "GET", ""): READ,
    ("/api/v1/agents/{agent_id:uuid}", "POST", "heartbeat"): AGENT_A,
    ("/api/v1/agents/{agent_id:uuid}", "POST", "disable"): AGENT_A_OR_MANAGER,
    ("/api/v1/agents/{agent_id:uuid}", "POST", "upgrade"): WRANGLER,
    ("/api/v1/agents/{agent_id:uuid}", "DELETE", ""): AGENT_A_OR_MANAGER,
    ("/api/v1/agents/{agent_id:uuid}/tasks", "GET", ""): READ,
    ("/api/v1/agents/{agent_id:uuid}/history", "GET", ""): READ,
    ("/api/v1/agents/{agent_id:uuid}/tasks", "POST", ""): AGENT_A,
    ("/api/v1/agents/{agent_id:uuid}/tags", "GET", ""): READ,
    ("/api/v1/agents/{agent_id:uuid}/explain", "GET", ""): READ,
    ("/api/v1/agents/{agent_id:uuid}/tags", "PUT", ""): WRANGLER,
    ("/api/v1/software", "GET", ""): READ,
    ("/api/v1/software", "POST", ""): ADMIN_ONLY,
    ("/api/v1/software/{name}", "GET", ""): READ,
    ("/api/v1/software/{name}", "PUT", ""): ADMIN_ONLY,
    ("/api/v1/software/{name}", "DELETE", ""): ADMIN_ONLY,
    ("/api/v1/software/{name}/versions", "GET", ""): READ,
    ("/api/v1/software/{name}/versions", "POST", ""): ADMIN_ONLY,
    ("/api/v1/software/{name}/versions/{version}", "GET", ""): READ,
    ("/api/v1/software/{name}/versions/{version}", "DELETE", ""): ADMIN_ONLY,
    ("/api/v1/agents/{agent_id:uuid}/software", "GET", ""): READ,
    ("/api/v1/agents/{agent_id:uuid}/software", "POST", ""): AGENT_A_OR_MANAGER,
    (
        "/api/v1/agents/{agent_id:uuid}/software/{name}/versions/{version}",
        "DELETE",
        "",
    ): AGENT_A_OR_MANAGER,
    ("/api/v1/jobtypes", "GET", ""): READ,
    ("/api/v1/jobtypes", "POST", ""): ADMIN_ONLY,
    ("/api/v1/jobtypes/{name}", "GET", ""): READ,
    ("/api/v1/jobtypes/{name}", "PUT", ""): ADMIN_ONLY,
    ("/api/v1/jobtypes/{name}", "DELETE", ""): ADMIN_ONLY,
    ("/api/v1/jobtypes/{name}/versions", "GET", ""): READ,
    (f"/api/v1/jobtypes/{{name}}/versions/{{version:{ID}}}", "GET", ""): READ,
    ("/api/v1/jobs", "GET", ""): READ,
    ("/api/v1/jobs", "POST", ""): "11111" + "32222" + "3" + "33",
    ("/api/v1/jobs/{job}", "GET", ""): READ,
    ("/api/v1/jobs/{job}", "POST", ""): "11111" + "32322" + "3" + "33",
    ("/api/v1/jobs/{job}", "DELETE", ""): "11111" + "32322" + "3" + "33",
    ("/api/v1/jobs/{job}/tasks", "GET", ""): READ,
    ("/api/v1/jobs/{job}/blocklist", "GET", ""): READ,
    # Artists explain any job they may read, not only their own.
    ("/api/v1/jobs/{job}/explain", "GET", ""): READ,
    ("/api/v1/jobs/{job}/blocklist", "DELETE", ""): WRANGLER,
    ("/api/v1/jobs/{job}/blocklist/{agent_id:uuid}", "DELETE", ""): WRANGLER,
    (TASK, "GET", ""): READ,
    (TASK, "POST", ""): AGENT_A,
    (f"{TASK}/failures", "GET", ""): READ,
    (f"{TASK}/history", "GET", ""): READ,
    (LOGS, "GET", ""): READ,
    (LOGS, "POST", ""): AGENT_A,
    (f"{LOGS}/{{identifier}}", "POST", ""): (AGENT_A),
    (
        f"{LOGS}/{{identifier}}/logfile",
        "GET",
        "",
    ): READ,
    (
        f"{LOGS}/{{identifier}}/logfile",
        "PUT",
        "",
    ): AGENT_A,
    (f"{LOGS}/{{identifier}}/chunks", "POST", ""): AGENT_A,
    ("/api/v1/agents/updates/{version}", "GET", ""): READ,
    ("/api/v1/agents/updates/{version}", "PUT", ""): ADMIN_ONLY,
    ("/api/v1/events", "GET", ""): READ,
    # The API's description, the same for everyone: any credential reads it.
    ("/api/v1/openapi.json", "GET", ""): "11111" + "22222" + "2" + "22",
    **{(f"{TASK}/{action}", "POST", ""): OWN_JOB for action in TaskAction},
    **{(f"/api/v1/jobs/{{job}}/tasks/{action}", "POST", ""): OWN_JOB for action in TaskAction},
    **{(f"/api/v1/jobs/{{job}}/{action}", "POST", ""): OWN_JOB for action in JobAction},
    # Any artist's request is taken; each job another submitted is answered 403 in the results.
    **{
        (f"/api/v1/bulk/jobs/{action}", "POST", ""): "11111" + "32222" + "3" + "33"
        for action in JobAction
    },
    # For load balancers and orchestrators: anyone (a bad credential is still refused).
    ("/healthz", "GET", ""): "21111" + "22222" + "2" + "22",
    ("/readyz", "GET", ""): "21111" + "22222" + "2" + "22",
    # The matrix's master has no FARM_METRICS_NETWORKS: a credential that may read.
    ("/metrics", "GET", ""): READ,
}
OUTSIDE_API = ("/healthz", "/readyz", "/metrics")
"""The routes of the table that are not under /api/."""


@attrs.frozen
class Scene:
    """What the calls act on: agents A and B, each with its own credential; a job of the
    artist ``ana`` with a task running on A (its log uploaded) and a queued one; A blocked from
    the job; software, a job type and an agent update archive."""

    agent_a: uuid.UUID
    agent_b: uuid.UUID
    credential_a: str
    credential_b: str
    job: int
    task: int
    queued_task: int
    tag: str
    paused_job: int
    """Another job of ``ana``'s, paused."""


@attrs.frozen
class Call:
    path: str
    json: Any = None
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = attrs.Factory(dict)


def _announce_body(agent_id: uuid.UUID, hostname: str) -> dict[str, Any]:
    return {
        "id": str(agent_id),
        "hostname": hostname,
        "ram": 4096,
        "free_ram": 2048,
        "cpus": 8,
        "port": 50000,
    }


def _controlled(s: Scene, action: JobAction) -> int:
    """The job a job control acts on: a paused one to resume."""
    return s.paused_job if action is JobAction.RESUME else s.job


def _control_call(prefix: str, action: TaskAction | JobAction) -> Callable[[Scene], Call]:
    """A control's call: ``prefix`` of the path after /api/v1/jobs/ (or /api/v1/ for bulk)."""

    def call(s: Scene) -> Call:
        job = _controlled(s, action) if isinstance(action, JobAction) else s.job
        path = prefix.format(job=job, task=s.task) + str(action)
        if prefix.startswith("bulk/"):
            return Call(f"/api/v1/{path}", json={"jobs": [job]})
        body: dict[str, Any] = {}
        if prefix.endswith("tasks/"):
            body = {"tasks": [s.task]}
        elif action is JobAction.PAUSE:
            body = {"running": "stop"}
        return Call(f"/api/v1/jobs/{path}", json=body)

    return call


def _attempt(s: Scene) -> str:
    return f"/api/v1/jobs/{s.job}/tasks/{s.task}/attempts/1"


CALLS: dict[tuple[str, str, str], Callable[[Scene], Call]] = {
    ("/api/v1/agents", "GET", ""): lambda s: Call("/api/v1/agents"),
    ("/api/v1/agents", "POST", "A announces again"): lambda s: Call(
        "/api/v1/agents", json=_announce_body(s.agent_a, "node-a")
    ),
    ("/api/v1/agents", "POST", "a new agent"): lambda s: Call(
        "/api/v1/agents", json=_announce_body(uuid.uuid4(), "node-new")
    ),
    ("/api/v1/agents/schema", "GET", ""): lambda s: Call("/api/v1/agents/schema"),
    ("/api/v1/agents/{agent_id:uuid}", "GET", ""): lambda s: Call(f"/api/v1/agents/{s.agent_a}"),
    ("/api/v1/agents/{agent_id:uuid}", "POST", "heartbeat"): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}", json={"free_ram": 1000}
    ),
    ("/api/v1/agents/{agent_id:uuid}", "POST", "disable"): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}", json={"state": "disabled"}
    ),
    ("/api/v1/agents/{agent_id:uuid}", "POST", "upgrade"): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}", json={"upgrade_to": "1.0"}
    ),
    ("/api/v1/agents/{agent_id:uuid}", "DELETE", ""): lambda s: Call(f"/api/v1/agents/{s.agent_a}"),
    ("/api/v1/agents/{agent_id:uuid}/tasks", "GET", ""): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}/tasks"
    ),
    ("/api/v1/agents/{agent_id:uuid}/history", "GET", ""): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}/history"
    ),
    ("/api/v1/agents/{agent_id:uuid}/tasks", "POST", ""): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}/tasks", json={"id": s.queued_task}
    ),
    ("/api/v1/agents/{agent_id:uuid}/tags", "GET", ""): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}/tags"
    ),
    ("/api/v1/agents/{agent_id:uuid}/explain", "GET", ""): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}/explain"
    ),
    ("/api/v1/agents/{agent_id:uuid}/tags", "PUT", ""): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}/tags", json=["gpu"]
    ),
    ("/api/v1/software", "GET", ""): lambda s: Call("/api/v1/software"),
    ("/api/v1/software", "POST", ""): lambda s: Call(
        "/api/v1/software", json={"software": f"houdini-{s.tag}"}
    ),
    ("/api/v1/software/{name}", "GET", ""): lambda s: Call(f"/api/v1/software/blender-{s.tag}"),
    ("/api/v1/software/{name}", "PUT", ""): lambda s: Call(
        f"/api/v1/software/spare-{s.tag}", json={"versions": [{"version": "2"}]}
    ),
    ("/api/v1/software/{name}", "DELETE", ""): lambda s: Call(f"/api/v1/software/spare-{s.tag}"),
    ("/api/v1/software/{name}/versions", "GET", ""): lambda s: Call(
        f"/api/v1/software/blender-{s.tag}/versions"
    ),
    ("/api/v1/software/{name}/versions", "POST", ""): lambda s: Call(
        f"/api/v1/software/blender-{s.tag}/versions", json={"version": "3.0"}
    ),
    ("/api/v1/software/{name}/versions/{version}", "GET", ""): lambda s: Call(
        f"/api/v1/software/blender-{s.tag}/versions/2.79"
    ),
    ("/api/v1/software/{name}/versions/{version}", "DELETE", ""): lambda s: Call(
        f"/api/v1/software/spare-{s.tag}/versions/1"
    ),
    ("/api/v1/agents/{agent_id:uuid}/software", "GET", ""): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}/software"
    ),
    ("/api/v1/agents/{agent_id:uuid}/software", "POST", ""): lambda s: Call(
        f"/api/v1/agents/{s.agent_a}/software",
        json={"software": f"spare-{s.tag}", "version": "1"},
    ),
    (
        "/api/v1/agents/{agent_id:uuid}/software/{name}/versions/{version}",
        "DELETE",
        "",
    ): lambda s: Call(f"/api/v1/agents/{s.agent_a}/software/blender-{s.tag}/versions/2.79"),
    ("/api/v1/jobtypes", "GET", ""): lambda s: Call("/api/v1/jobtypes"),
    ("/api/v1/jobtypes", "POST", ""): lambda s: Call(
        "/api/v1/jobtypes", json={"name": f"new-{s.tag}"}
    ),
    ("/api/v1/jobtypes/{name}", "GET", ""): lambda s: Call(f"/api/v1/jobtypes/command-{s.tag}"),
    ("/api/v1/jobtypes/{name}", "PUT", ""): lambda s: Call(
        f"/api/v1/jobtypes/spare-{s.tag}", json={"name": f"spare-{s.tag}"}
    ),
    ("/api/v1/jobtypes/{name}", "DELETE", ""): lambda s: Call(f"/api/v1/jobtypes/spare-{s.tag}"),
    ("/api/v1/jobtypes/{name}/versions", "GET", ""): lambda s: Call(
        f"/api/v1/jobtypes/command-{s.tag}/versions"
    ),
    (f"/api/v1/jobtypes/{{name}}/versions/{{version:{ID}}}", "GET", ""): (
        lambda s: Call(f"/api/v1/jobtypes/command-{s.tag}/versions/1")
    ),
    ("/api/v1/jobs", "GET", ""): lambda s: Call("/api/v1/jobs"),
    ("/api/v1/jobs", "POST", ""): lambda s: Call(
        "/api/v1/jobs",
        json={
            "title": f"submitted-{uuid.uuid4().hex[:8]}",
            "jobtype": f"command-{s.tag}",
            "start": 1,
        },
    ),
    ("/api/v1/jobs/{job}", "GET", ""): lambda s: Call(f"/api/v1/jobs/{s.job}"),
    ("/api/v1/jobs/{job}", "POST", ""): lambda s: Call(
        f"/api/v1/jobs/{s.job}", json={"priority": 7}
    ),
    ("/api/v1/jobs/{job}", "DELETE", ""): lambda s: Call(f"/api/v1/jobs/{s.job}"),
    ("/api/v1/jobs/{job}/tasks", "GET", ""): lambda s: Call(f"/api/v1/jobs/{s.job}/tasks"),
    ("/api/v1/jobs/{job}/blocklist", "GET", ""): lambda s: Call(f"/api/v1/jobs/{s.job}/blocklist"),
    ("/api/v1/jobs/{job}/explain", "GET", ""): lambda s: Call(f"/api/v1/jobs/{s.job}/explain"),
    ("/api/v1/jobs/{job}/blocklist", "DELETE", ""): lambda s: Call(
        f"/api/v1/jobs/{s.job}/blocklist"
    ),
    ("/api/v1/jobs/{job}/blocklist/{agent_id:uuid}", "DELETE", ""): lambda s: Call(
        f"/api/v1/jobs/{s.job}/blocklist/{s.agent_a}"
    ),
    (TASK, "GET", ""): lambda s: Call(f"/api/v1/jobs/{s.job}/tasks/{s.task}"),
    (TASK, "POST", ""): lambda s: Call(
        f"/api/v1/jobs/{s.job}/tasks/{s.task}", json={"progress": 0.5}
    ),
    (f"{TASK}/failures", "GET", ""): lambda s: Call(
        f"/api/v1/jobs/{s.job}/tasks/{s.task}/failures"
    ),
    (f"{TASK}/history", "GET", ""): lambda s: Call(f"/api/v1/jobs/{s.job}/tasks/{s.task}/history"),
    (LOGS, "GET", ""): lambda s: Call(f"{_attempt(s)}/logs"),
    (LOGS, "POST", ""): lambda s: Call(
        f"{_attempt(s)}/logs", json={"identifier": "second.csv", "agent_id": str(s.agent_a)}
    ),
    (f"{LOGS}/{{identifier}}", "POST", ""): (
        lambda s: Call(f"{_attempt(s)}/logs/render.csv", json={"state": "done"})
    ),
    (
        f"{LOGS}/{{identifier}}/logfile",
        "GET",
        "",
    ): lambda s: Call(f"{_attempt(s)}/logs/render.csv/logfile"),
    (
        f"{LOGS}/{{identifier}}/logfile",
        "PUT",
        "",
    ): lambda s: Call(
        f"{_attempt(s)}/logs/render.csv/logfile", body=b"a,b\n1,2\n", content_type="text/csv"
    ),
    (f"{LOGS}/{{identifier}}/chunks", "POST", ""): lambda s: Call(
        f"{_attempt(s)}/logs/render.csv/chunks?offset=2", body=b"y\n", content_type="text/csv"
    ),
    ("/api/v1/agents/updates/{version}", "GET", ""): lambda s: Call(
        f"/api/v1/agents/updates/1.{s.tag}"
    ),
    ("/api/v1/agents/updates/{version}", "PUT", ""): lambda s: Call(
        f"/api/v1/agents/updates/2.{s.tag}",
        body=b"PK\x05\x06" + bytes(18),
        content_type="application/zip",
    ),
    ("/api/v1/events", "GET", ""): lambda s: Call("/api/v1/events"),
    ("/api/v1/openapi.json", "GET", ""): lambda s: Call("/api/v1/openapi.json"),
    **{(f"{TASK}/{a}", "POST", ""): _control_call("{job}/tasks/{task}/", a) for a in TaskAction},
    **{
        (f"/api/v1/jobs/{{job}}/tasks/{a}", "POST", ""): _control_call("{job}/tasks/", a)
        for a in TaskAction
    },
    **{(f"/api/v1/jobs/{{job}}/{a}", "POST", ""): _control_call("{job}/", a) for a in JobAction},
    **{(f"/api/v1/bulk/jobs/{a}", "POST", ""): _control_call("bulk/jobs/", a) for a in JobAction},
    ("/healthz", "GET", ""): lambda s: Call("/healthz"),
    ("/readyz", "GET", ""): lambda s: Call("/readyz"),
    ("/metrics", "GET", ""): lambda s: Call("/metrics"),
}


class Matrix:
    """A master with no anonymous access, the people's tokens, and scenes to act on."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.farm = harness.runtime.farm
        identities = self.farm.identities
        operator = Identity.local_operator("test")
        self.tokens: dict[str, str] = {}
        for name, role in (
            ("vic", Role.VIEWER),
            ("ana", Role.ARTIST),
            ("bob", Role.ARTIST),
            ("wendy", Role.WRANGLER),
            ("root", Role.ADMIN),
            ("joiner", Role.AGENT_JOIN),
            ("gone", Role.ADMIN),
        ):
            _, self.tokens[name] = identities.create_token(operator, role, name)
        identities.revoke_token(operator, "gone")
        self.tokens["expired"] = "farm_expired-" + uuid.uuid4().hex
        now = harness.clock.now()
        with harness.uow() as uow:
            uow.tokens.add(
                Token(
                    name="expired",
                    role=Role.ADMIN,
                    created=now - timedelta(days=3),
                    expires=now - timedelta(days=1),
                ),
                digest(self.tokens["expired"]),
            )
            uow.commit()
        self._scenes = itertools.count()

    def send(self, method: str, call: Call, authorization: str | None) -> falcon.testing.Result:
        headers = dict(call.headers)
        if authorization is not None:
            headers["Authorization"] = authorization
        if call.json is not None:
            return self.harness.client.simulate_request(
                method, call.path, json=call.json, headers=headers
            )
        if call.content_type is not None:
            headers["Content-Type"] = call.content_type
        return self.harness.client.simulate_request(
            method, call.path, body=call.body, headers=headers
        )

    def admin(self, method: str, path: str, **kwargs: Any) -> falcon.testing.Result:
        call = Call(path, **kwargs)
        result = self.send(method, call, f"Bearer {self.tokens['root']}")
        assert 200 <= result.status_code < 300, (method, path, result.text)
        return result

    def scene(self) -> Scene:
        tag = str(next(self._scenes))
        admin = self.admin
        admin(
            "POST",
            "/api/v1/software",
            json={"software": f"blender-{tag}", "versions": [{"version": "2.79"}]},
        )
        admin(
            "POST",
            "/api/v1/software",
            json={"software": f"spare-{tag}", "versions": [{"version": "1"}]},
        )
        admin("POST", "/api/v1/jobtypes", json={"name": f"command-{tag}"})
        admin("POST", "/api/v1/jobtypes", json={"name": f"spare-{tag}"})
        agent_a, agent_b = uuid.uuid4(), uuid.uuid4()
        admin("POST", "/api/v1/agents", json=_announce_body(agent_a, f"a-{tag}"))
        admin("POST", "/api/v1/agents", json=_announce_body(agent_b, f"b-{tag}"))
        admin(
            "POST",
            f"/api/v1/agents/{agent_a}/software",
            json={"software": f"blender-{tag}", "version": "2.79"},
        )
        submitted = self.send(
            "POST",
            Call(
                "/api/v1/jobs",
                json={"title": f"ana-{tag}", "jobtype": f"command-{tag}", "start": 1, "end": 2},
            ),
            f"Bearer {self.tokens['ana']}",
        )
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json["id"]
        task, queued = (t["id"] for t in admin("GET", f"/api/v1/jobs/{job_id}/tasks").json)
        paused = self.send(
            "POST",
            Call(
                "/api/v1/jobs",
                json={"title": f"ana-paused-{tag}", "jobtype": f"command-{tag}", "start": 1},
            ),
            f"Bearer {self.tokens['ana']}",
        ).json["id"]
        admin("POST", f"/api/v1/jobs/{paused}", json={"state": "paused"})
        admin("POST", f"/api/v1/agents/{agent_a}/tasks", json={"id": task})
        attempt = f"/api/v1/jobs/{job_id}/tasks/{task}/attempts/1"
        admin(
            "POST", f"{attempt}/logs", json={"identifier": "render.csv", "agent_id": str(agent_a)}
        )
        admin("PUT", f"{attempt}/logs/render.csv/logfile", body=b"x\n", content_type="text/csv")
        admin(
            "PUT",
            f"/api/v1/agents/updates/1.{tag}",
            body=b"PK\x05\x06" + bytes(18),
            content_type="application/zip",
        )
        now = self.harness.clock.now()
        with self.harness.uow() as uow:
            for _ in range(3):
                uow.blocks.record_failure(job_id, agent_a, now)
            credential_a = self.farm.identities.issue_agent_credential(uow, agent_a, now)
            credential_b = self.farm.identities.issue_agent_credential(uow, agent_b, now)
            uow.commit()
        return Scene(
            agent_a, agent_b, credential_a, credential_b, job_id, task, queued, tag, paused
        )

    def authorization(self, caller: str, scene: Scene) -> str | None:
        return {
            "no token": None,
            "malformed header": "Basic dXNlcjpwYXNzd29yZA==",
            "unknown token": "Bearer farm_" + "x" * 43,
            "revoked token": f"Bearer {self.tokens['gone']}",
            "expired token": f"Bearer {self.tokens['expired']}",
            "viewer": f"Bearer {self.tokens['vic']}",
            "artist, own job": f"Bearer {self.tokens['ana']}",
            "artist, another's job": f"Bearer {self.tokens['bob']}",
            "wrangler": f"Bearer {self.tokens['wendy']}",
            "admin": f"Bearer {self.tokens['root']}",
            "agent-join": f"Bearer {self.tokens['joiner']}",
            "agent A on A": f"Bearer {scene.credential_a}",
            "agent B on A": f"Bearer {scene.credential_b}",
        }[caller]

    def stored(self) -> dict[str, Any]:
        """Every row of every table, and every stored file with its content."""
        state: dict[str, Any] = {}
        with self.harness.runtime.engine.connect() as connection:
            for table in metadata.sorted_tables:
                rows = connection.execute(sa.select(table)).all()
                state[table.name] = sorted(repr(tuple(row)) for row in rows)
        files = Path(self.harness.runtime.settings.data_dir) / "files"
        state["files"] = sorted(
            (str(path), path.read_bytes()) for path in files.rglob("*") if path.is_file()
        )
        return state


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    path = tmp_path_factory.mktemp("matrix")
    url = f"sqlite:///{path / 'farm.db'}"
    migrate(url)
    for harness in make_harness(url, path, FARM_ANONYMOUS_NETWORKS="", FARM_METRICS_NETWORKS=""):
        yield Matrix(harness)


def _status_class(status: int) -> str:
    if 200 <= status < 300:
        return "2"
    return {401: "1", 403: "3"}.get(status, str(status))


@pytest.mark.parametrize(
    "key", list(EXPECTED), ids=[" ".join(p for p in key if p) for key in EXPECTED]
)
def test_every_caller_gets_its_answer_and_refusals_change_nothing(
    matrix: Matrix, key: tuple[str, str, str]
) -> None:
    _, method, _ = key
    expected = EXPECTED[key]
    assert len(expected) == len(CALLERS)
    scene = matrix.scene()
    # What is stored before each call: read once, and again only after a call that was let
    # through (a refused one changed nothing, which its own check proves).
    before: dict[str, Any] | None = None
    answers: dict[str, str] = {}
    for caller, wanted in zip(CALLERS, expected, strict=True):
        call = CALLS[key](scene)
        if before is None:
            before = matrix.stored()
        result = matrix.send(method, call, matrix.authorization(caller, scene))
        answers[caller] = _status_class(result.status_code)
        if answers[caller] != "2":
            assert matrix.stored() == before, f"{caller} was refused but something changed"
            assert "error" in result.json, result.text
            if result.status_code == 401:
                assert result.headers["WWW-Authenticate"].startswith("Bearer")
        else:
            before = None
            if method != "GET":
                scene = matrix.scene()  # it may have changed what the next caller acts on
        if answers[caller] != wanted:
            answers[caller] += f" ({result.status_code} {result.text[:200]})"
    assert answers == dict(zip(CALLERS, expected, strict=True))


def test_every_api_route_and_method_has_a_row(matrix: Matrix) -> None:
    app = matrix.harness.client.app
    routed: set[tuple[str, str]] = set()

    def walk(nodes: Any) -> None:
        for node in nodes:
            if node.resource is not None and (
                node.uri_template.startswith("/api/") or node.uri_template in OUTSIDE_API
            ):
                for method in responders(node.resource):
                    routed.add((node.uri_template, method))
            walk(node.children)

    walk(app._router._roots)
    in_table = {(route.template, method) for route in ROUTES for method in route.needs}
    in_matrix = {(template, method) for template, method, _ in EXPECTED}
    assert routed == in_table
    assert in_matrix == in_table
    assert set(CALLS) == set(EXPECTED)
