"""What only remote mode has: the master's address and token as flags or settings, a master
that does not answer, commands with no API, and output cut short by a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.cli.conftest import RemoteFarm
from tests.support.cli import run
from tests.support.processes import farm_command, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_farm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in os.environ if key.startswith("FARM_")]:
        monkeypatch.delenv(key)


def test_the_url_and_token_as_flags_before_or_after_the_action(
    remote_farm: RemoteFarm, no_farm_env, capsys
) -> None:
    url, token = remote_farm.master.url, remote_farm.token
    code, out, err = run(capsys, "--url", url, "--token", token, "software", "add", "nuke", "15")
    assert (code, out) == (0, "added nuke with 1 version(s)\n"), err
    code, out, err = run(capsys, "software", "list", "--url", url, "--token", token)
    assert code == 0 and "nuke" in out, err
    code, out, err = run(capsys, "software", "--token", token, "list", "--json", "--url", url)
    assert code == 0 and "nuke" in {s["software"] for s in json.loads(out)}


def test_settings_from_the_environment_and_a_missing_token(
    remote_farm: RemoteFarm, no_farm_env, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("FARM_URL", remote_farm.master.url)
    code, out, err = run(capsys, "jobs", "list")
    assert (code, out) == (1, "") and "a credential is required" in err
    monkeypatch.setenv("FARM_TOKEN", remote_farm.token)
    code, out, err = run(capsys, "jobs", "list")
    assert code == 0 and out.split()[:3] == ["ID", "TITLE", "STATE"], err
    code, out, err = run(capsys, "jobs", "list", "--token", "farm_wrong")
    assert (code, out) == (1, "") and err.startswith("farm: ")


@pytest.mark.parametrize(
    "argv",
    [
        ("tokens", "list"),
        ("users", "add", "someone", "--role", "viewer", "--password-stdin"),
        ("agents", "revoke-token", "5f0c6d1e-0000-4000-8000-000000000000"),
    ],
    ids=["tokens", "users", "revoke-token"],
)
def test_commands_without_an_api_refuse_remote_mode(
    remote_farm: RemoteFarm, no_farm_env, capsys, argv
) -> None:
    code, out, err = run(capsys, *argv, "--url", remote_farm.master.url)
    assert (code, out) == (2, "")
    assert "has no API: run it on the master's machine, without --url or FARM_URL" in err


def test_storage_flags_are_for_local_mode(remote_farm: RemoteFarm, no_farm_env, capsys) -> None:
    argv = ("jobs", "list", "--url", remote_farm.master.url, "--database", "sqlite:///x.db")
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "") and "--database: for local mode" in err


def test_a_master_that_does_not_answer_is_one_clear_line(no_farm_env, capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "--url", url, "jobs", "list")
    assert (code, out) == (1, "") and err.startswith(f"farm: no answer from the master at {url}")
    assert len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "--url", "ftp://farm", "jobs", "list")
    assert (code, out) == (2, "") and "the farm URL must be http(s)://host[:port]" in err


def test_flags_of_the_operator_commands_are_refused_elsewhere(no_farm_env, capsys) -> None:
    code, _, err = run(capsys, "--url", "http://127.0.0.1:1", "db", "upgrade")
    assert code == 2 and "--url: for the operator commands only" in err


def test_a_closed_pipe_ends_the_output_without_a_traceback(
    remote_farm: RemoteFarm, tmp_path
) -> None:
    """`farm jobs list | head -1`: the reader is gone before the command writes."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FARM_")}
    env.update(FARM_URL=remote_farm.master.url, FARM_TOKEN=remote_farm.token)
    read, write = os.pipe()
    os.close(read)  # every write to the pipe fails (EPIPE) from the start
    try:
        done = subprocess.run(
            farm_command("events", "--limit", "1000"),
            env=env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 1
    assert done.stderr == ""


def test_flags_before_the_agent_program_are_refused(no_farm_env, capsys, tmp_path) -> None:
    code, _, err = run(capsys, "--data-dir", str(tmp_path), "agent")
    assert code == 2 and "`farm agent` is its own program" in err
    assert list(tmp_path.iterdir()) == []  # nothing migrated
