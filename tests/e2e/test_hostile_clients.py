"""Clients and operators that would stall or confuse a real ``farm serve``, on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.processes import Process, StartMaster, base_env, farm_command, free_port

pytestmark = pytest.mark.e2e


def second_serve(tmp_path: Path, env: dict[str, str], port: int, name: str) -> Process:
    """Another ``farm serve``, expected to refuse to start."""
    process = Process(farm_command("serve", "--port", str(port)), env, tmp_path / f"{name}.log")
    try:
        process.popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.stop()
        raise AssertionError(f"a second farm serve started:\n{process.output()}") from None
    process.stop()
    return process


def test_a_second_master_on_the_same_data_directory_refuses_to_start(
    tmp_path: Path, start_master: StartMaster
) -> None:
    first = start_master()
    second = second_serve(tmp_path, first.env, free_port(), "second")
    assert second.popen.returncode != 0
    assert "already served" in second.output()
    assert first.api().get("/agents/").status_code == 200


def test_a_second_master_on_the_same_port_refuses_to_start(
    tmp_path: Path, start_master: StartMaster
) -> None:
    first = start_master()
    elsewhere = base_env(tmp_path, FARM_DATA_DIR=str(tmp_path / "other-data"))
    second = second_serve(tmp_path, elsewhere, first.port, "second")
    assert second.popen.returncode != 0
    assert f"port {first.port}" in second.output() and "already in use" in second.output()
    # Every request still reaches the first master (none answers from an empty second one).
    api = first.api()
    assert api.post("/jobtypes/", json={"name": "command"}).status_code == 201
    assert all(len(api.get("/jobtypes/").json()) == 1 for _ in range(20))
