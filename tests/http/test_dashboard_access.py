"""Who gets what from every dashboard route: each route and method, for each kind of identity,
with the status written out. A route the dashboard adds without an entry here fails the test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import falcon
import falcon.testing
import pytest

from farm_domain.access import Role
from farm_http.routes import ROUTES
from tests.support.dashboard import (
    FORM,
    PASSWORD,
    Session,
    add_user,
    bearer,
    dashboard_client,
)
from tests.support.http_harness import Harness

IDENTITIES = ("none", "anonymous admin", "viewer", "artist", "wrangler", "admin", "bearer admin")
USERS = {
    "viewer": Role.VIEWER,
    "artist": Role.ARTIST,
    "wrangler": Role.WRANGLER,
    "admin": Role.ADMIN,
}


def _row(
    none: int, anonymous: int, viewer: int, artist: int, wrangler: int, admin: int, bearer: int
) -> dict[str, int]:
    return dict(zip(IDENTITIES, (none, anonymous, viewer, artist, wrangler, admin, bearer)))


PAGE = _row(303, 200, 200, 200, 200, 200, 200)
PUBLIC = _row(200, 200, 200, 200, 200, 200, 200)

ATTEMPT = "/jobs/{job_id}/tasks/{task_id}/attempts/{attempt}"

# (method, route template) -> expected status per identity. Actions post the session's CSRF
# token when the identity has a session; the job acted on is the artist's own.
MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/"): PAGE,
    ("GET", "/agents/{agent_id}"): PAGE,
    ("GET", "/jobs"): PAGE,
    ("GET", "/jobs/{job_id}"): PAGE,
    ("GET", "/jobs/{job_id}/tasks/{task_id}"): PAGE,
    ("GET", "/events"): PAGE,
    ("GET", "/overview"): PAGE,
    ("GET", "/reference"): PAGE,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): _row(303, 303, 303, 303, 303, 303, 303),
    ("POST", "/logout"): _row(403, 403, 303, 303, 303, 303, 303),
    ("GET", "/static/farm.css"): PUBLIC,
    ("GET", "/static/logs.js"): PUBLIC,
    ("GET", f"{ATTEMPT}/log"): PAGE,
    ("GET", f"{ATTEMPT}/log.txt"): PAGE,
    ("GET", "/static/dashboard.js"): PUBLIC,
    ("GET", "/live"): PAGE,
    ("POST", "/ui/agents/{agent_id}/{action}"): _row(403, 403, 403, 403, 303, 303, 303),
    ("POST", "/ui/jobs/{job_id}/{action}"): _row(403, 403, 403, 303, 303, 303, 303),
    ("POST", "/ui/jobs/{job_id}/tasks/{action}"): _row(403, 403, 403, 303, 303, 303, 303),
    ("POST", "/ui/agents/bulk"): _row(403, 403, 403, 403, 303, 303, 303),
    ("POST", "/ui/jobs/bulk"): _row(403, 403, 403, 303, 303, 303, 303),
}
OTHERS_JOB = _row(403, 403, 403, 403, 303, 303, 303)
"""A job action on a job the artist did not submit."""


API_TABLE = frozenset(route.template for route in ROUTES)
"""The API's routes (/healthz, /readyz and /metrics among them): the authorization matrix's."""


def _routes(app: falcon.App[falcon.Request, falcon.Response]) -> Iterator[tuple[str, str]]:
    """(method, template) of every route outside the API table, with a responder of its own."""
    nodes = list(app._router._roots)  # falcon's router tree (no public walk)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        template = node.uri_template
        if node.resource is None or template is None or template in API_TABLE:
            continue
        for method in falcon.constants.COMBINED_METHODS:
            if hasattr(node.resource, f"on_{method.lower()}"):
                yield method, _plain(template)


def _plain(template: str) -> str:
    """The template without its converters: ``/jobs/{job_id:int(...)}`` is ``/jobs/{job_id}``."""
    parts = []
    for segment in template.split("/"):
        if segment.startswith("{") and ":" in segment:
            segment = segment.split(":", 1)[0] + "}"
        parts.append(segment)
    return "/".join(parts)


def test_every_dashboard_route_has_an_entry(farm: Harness) -> None:
    app = dashboard_client(farm).app
    assert set(_routes(app)) == set(MATRIX)


class Caller:
    """Makes one request as one kind of identity."""

    def __init__(self, farm: Harness) -> None:
        self.farm = farm
        self.anonymous = dashboard_client(farm, Role.ADMIN, live_stream_seconds=0.2)
        self.client = dashboard_client(farm, live_stream_seconds=0.2)
        self.admin_token = bearer(farm, Role.ADMIN, "matrix-admin")
        self.artist_token = bearer(farm, Role.ARTIST, "artist")  # the artist user's namesake
        for name, role in USERS.items():
            add_user(farm, name, role)
        add_user(farm, "newcomer", Role.VIEWER)
        self.sessions = {name: Session(self.client, name) for name in USERS}
        self.client.simulate_post(
            "/api/v1/jobtypes", json={"name": "render"}, headers=self.admin_token
        )

    def job(self, token: dict[str, str]) -> int:
        answer = self.client.simulate_post(
            "/api/v1/jobs",
            json={"title": "job", "jobtype": "render", "start": 1, "end": 2},
            headers=token,
        )
        assert answer.status_code == 201, answer.text
        job_id: int = answer.json["id"]
        return job_id

    def agent(self) -> uuid.UUID:
        agent_id = uuid.uuid4()
        body = {
            "id": str(agent_id),
            "hostname": "n",
            "ram": 4096,
            "free_ram": 2048,
            "cpus": 8,
            "port": 50000,
        }
        assert self.client.simulate_post(
            "/api/v1/agents", json=body, headers=self.admin_token
        ).status_code in (200, 201)
        return agent_id

    def attempt(self) -> str:
        """The first attempt of a new job's first task, with a log of two lines."""
        job_id = self.job(self.admin_token)
        tasks = self.client.simulate_get(
            f"/api/v1/jobs/{job_id}/tasks", headers=self.admin_token
        ).json
        attempt = f"/jobs/{job_id}/tasks/{tasks[0]['id']}/attempts/0"
        logs = f"/api/v1{attempt}/logs"
        registered = self.client.simulate_post(
            logs, json={"identifier": "frame.csv"}, headers=self.admin_token
        )
        assert registered.status_code == 201, registered.text
        uploaded = self.client.simulate_put(
            f"{logs}/frame.csv/logfile",
            body="time,stream,line\n2026-01-01T00:00:00.000+00:00,stdout,hello\n",
            headers={**self.admin_token, "Content-Type": "text/csv"},
        )
        assert uploaded.status_code == 201, uploaded.text
        return attempt

    def task_page(self) -> str:
        """The page of the first task of a new job."""
        job_id = self.job(self.admin_token)
        tasks = self.client.simulate_get(
            f"/api/v1/jobs/{job_id}/tasks", headers=self.admin_token
        ).json
        return f"/jobs/{job_id}/tasks/{tasks[0]['id']}"

    def skip(self, token: dict[str, str]) -> tuple[str, str]:
        """The dashboard's post skipping the first task of a new job of ``token``'s."""
        job_id = self.job(token)
        tasks = self.client.simulate_get(f"/api/v1/jobs/{job_id}/tasks", headers=token).json
        return f"/ui/jobs/{job_id}/tasks/skip", f"only={tasks[0]['id']}"

    def call(self, identity: str, method: str, path: str, body: str = "") -> int:
        if identity in USERS:
            session = self.sessions[identity]
            if path == "/logout":  # ends the session: another one does it
                session = Session(self.client, identity)
            answer = session.get(path) if method == "GET" else session.post(path, body)
        else:
            client = self.anonymous if identity == "anonymous admin" else self.client
            headers = self.admin_token if identity == "bearer admin" else {}
            answer = client.simulate_request(
                method, path, body=body or None, headers={**FORM, **headers}
            )
        return answer.status_code


@pytest.fixture
def caller(farm: Harness) -> Caller:
    return Caller(farm)


def _paths(caller: Caller) -> dict[tuple[str, str], Callable[[], tuple[str, str]]]:
    """For each entry, a function giving a fresh (path, body) to request."""
    return {
        ("GET", "/"): lambda: ("/", ""),
        ("GET", "/agents/{agent_id}"): lambda: (f"/agents/{caller.agent()}", ""),
        ("GET", "/jobs"): lambda: ("/jobs", ""),
        ("GET", "/jobs/{job_id}"): lambda: (f"/jobs/{caller.job(caller.admin_token)}", ""),
        ("GET", "/jobs/{job_id}/tasks/{task_id}"): lambda: (caller.task_page(), ""),
        ("GET", "/events"): lambda: ("/events", ""),
        ("GET", "/overview"): lambda: ("/overview", ""),
        ("GET", "/reference"): lambda: ("/reference", ""),
        ("GET", "/login"): lambda: ("/login", ""),
        ("POST", "/login"): lambda: ("/login", f"name=newcomer&password={PASSWORD}"),
        ("POST", "/logout"): lambda: ("/logout", ""),
        ("GET", "/static/farm.css"): lambda: ("/static/farm.css", ""),
        ("GET", "/static/logs.js"): lambda: ("/static/logs.js", ""),
        ("GET", f"{ATTEMPT}/log"): lambda: (f"{caller.attempt()}/log", ""),
        ("GET", f"{ATTEMPT}/log.txt"): lambda: (f"{caller.attempt()}/log.txt", ""),
        ("GET", "/static/dashboard.js"): lambda: ("/static/dashboard.js", ""),
        ("GET", "/live"): lambda: ("/live", ""),
        ("POST", "/ui/agents/{agent_id}/{action}"): lambda: (
            f"/ui/agents/{caller.agent()}/disable",
            "",
        ),
        ("POST", "/ui/jobs/{job_id}/{action}"): lambda: (
            f"/ui/jobs/{caller.job(caller.artist_token)}/pause",
            "",
        ),
        ("POST", "/ui/jobs/{job_id}/tasks/{action}"): lambda: caller.skip(caller.artist_token),
        ("POST", "/ui/agents/bulk"): lambda: (
            "/ui/agents/bulk",
            f"action=disable&agent-{caller.agent()}=on",
        ),
        ("POST", "/ui/jobs/bulk"): lambda: (
            "/ui/jobs/bulk",
            f"action=pause&job-{caller.job(caller.artist_token)}=on",
        ),
    }


def test_each_identity_gets_what_the_matrix_says(caller: Caller) -> None:
    paths = _paths(caller)
    assert set(paths) == set(MATRIX)
    wrong: list[str] = []
    for (method, template), expected in MATRIX.items():
        for identity in IDENTITIES:
            path, body = paths[method, template]()
            status = caller.call(identity, method, path, body.replace(" ", "+"))
            if status != expected[identity]:
                wrong.append(
                    f"{method} {template} as {identity}: {status}, not {expected[identity]}"
                )
    for identity in IDENTITIES:
        path = f"/ui/jobs/{caller.job(caller.admin_token)}/pause"
        status = caller.call(identity, "POST", path)
        if status != OTHERS_JOB[identity]:
            wrong.append(f"POST another's job as {identity}: {status}, not {OTHERS_JOB[identity]}")
        path, body = caller.skip(caller.admin_token)
        status = caller.call(identity, "POST", path, body)
        if status != OTHERS_JOB[identity]:
            wrong.append(f"skip another's task as {identity}: {status}, not {OTHERS_JOB[identity]}")
    assert not wrong, "\n".join(wrong)
