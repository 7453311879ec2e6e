"""Local mode's transport: the master's app in the CLI's process, acting as the local operator
for every request; and an app that is served, which nothing a request carries makes do so."""

from __future__ import annotations

import getpass
import os

import falcon.testing
import pytest

from farm_adapters.composition import build_runtime
from farm_adapters.settings import Settings
from farm_cli import local
from farm_domain.access import Identity
from farm_http import HttpOptions, create_app
from tests.support.cli import run


def test_the_local_client_acts_as_the_local_operator_whatever_token_it_sends(farm_env) -> None:
    operator = Identity.local_operator(getpass.getuser())
    with local.runtime(Settings.load(os.environ)) as runtime, local.client(runtime, operator) as c:
        created = c.create_software("houdini", ["20.0"])
        assert created.name == "houdini"
        (event,) = c.events(target="software:houdini")
        assert (event.actor, event.role, event.address) == (operator.name, "admin", "local")
        c._http.headers["Authorization"] = "Bearer not-a-token"  # ignored: not asked
        assert [s.name for s in c.software_list()] == ["houdini"]


@pytest.mark.parametrize(
    ("headers", "environ"),
    [
        ({}, {}),
        ({"X-Farm-Local-Operator": "root", "X-Remote-User": "root"}, {}),
        ({}, {"farm.local_operator": "root", "REMOTE_USER": "root"}),
        ({"Authorization": "Local root"}, {}),
    ],
    ids=["nothing", "headers", "environ", "authorization-scheme"],
)
def test_a_served_app_never_acts_as_a_local_operator(farm_env, headers, environ) -> None:
    settings = Settings.load({**os.environ, "FARM_ANONYMOUS_NETWORKS": ""})
    runtime = build_runtime(settings)
    try:
        app = create_app(runtime.farm, HttpOptions.of(settings))  # as farm_http.wsgi builds it
        client = falcon.testing.TestClient(app, headers={"Host": "localhost"})
        answer = client.simulate_get("/api/v1/software", headers=headers, extras=environ)
        assert answer.status_code == 401
        answer = client.simulate_post(
            "/api/v1/software", json={"software": "x"}, headers=headers, extras=environ
        )
        assert answer.status_code == 401
    finally:
        runtime.close()


def test_local_mode_never_creates_a_farm(farm_env, capsys, tmp_path, monkeypatch) -> None:
    """Run from another directory, a command names the database it looked for and creates
    nothing (it once made ./farm-data and "submitted" into an empty farm)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("FARM_DATABASE_URL")
    monkeypatch.delenv("FARM_DATA_DIR")
    argv = ("jobs", "submit", "--title", "t", "--frames", "1", "--command", "true")
    code, out, err = run(capsys, *argv)
    expected = elsewhere / "farm-data" / "farm.db"
    assert (code, out) == (2, "")
    assert f"the database {expected} does not exist" in err and "farm db upgrade" in err
    assert list(elsewhere.iterdir()) == []
    assert run(capsys, "db", "upgrade")[0] == 0  # what does create one
    assert run(capsys, *argv)[1].startswith("submitted job 1 (t)")


def test_local_mode_asks_for_an_upgrade_of_an_old_database(farm_env, capsys, tmp_path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()  # a database at no revision at all
    code, out, err = run(capsys, "jobs", "list", "--database", f"sqlite:///{empty}")
    assert (code, out) == (2, "")
    assert "is not at the newest schema" in err and "run `farm db upgrade`" in err
