"""A ``farm serve`` on the default trust settings: nobody without a token gets in, the admin
token it leaves does, and a page that rebinds a foreign name to it is refused."""

from __future__ import annotations

import httpx
import pytest

from tests.support.processes import StartMaster

pytestmark = pytest.mark.e2e

JOB = {"title": "owned", "jobtype": "command", "start": 1, "data": {"command": ["id"]}}


def test_a_fresh_master_refuses_anonymous_writes_and_takes_its_admin_token(
    start_master: StartMaster,
) -> None:
    # Blank: the defaults (no anonymous networks, the bind address and loopback names).
    master = start_master(FARM_ANONYMOUS_NETWORKS="", FARM_ANONYMOUS_ROLE="")
    with master.api() as api:
        for method, path, body in (
            ("POST", "/jobs/", JOB),
            ("POST", "/jobtypes/", {"name": "command"}),
            ("GET", "/agents/", None),
        ):
            answer = api.request(method, path, json=body)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        blob = api.post("/jobs/", content=b'{"title": "x"}')  # a cross-site no-cors body
        assert blob.status_code == 401
        token = (master.data_dir / "admin-token").read_text().strip()
        api.headers["Authorization"] = f"Bearer {token}"
        assert api.post("/jobtypes/", json={"name": "command"}).status_code == 201
        assert api.post("/jobs/", content=b'{"title": "x"}').status_code == 415
        assert api.get("/jobs/").json() == []
        rebound = api.get("/jobs/", headers={"Host": "attacker.example"})
        assert rebound.status_code == 400
        assert api.get("/jobs/", headers={"Host": "localhost"}).status_code == 200
    assert httpx.get(f"{master.url}/api/v1/jobs/").status_code == 401
