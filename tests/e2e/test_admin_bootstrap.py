"""``farm serve`` on a farm without an admin leaves an admin token, readable by its owner only,
and says where in its log (never the token); a second start leaves it be."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from farm_adapters.composition import build_runtime
from farm_adapters.settings import Settings
from farm_domain.access import Identity, Role
from tests.support.processes import StartMaster, farm_command

pytestmark = pytest.mark.e2e


def test_the_first_start_leaves_an_admin_token_and_the_next_does_not(
    start_master: StartMaster,
) -> None:
    master = start_master()
    path = master.data_dir / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert secret.startswith("farm_")
    logged = [json.loads(line) for line in master.process.output().splitlines() if "{" in line]
    told = [entry for entry in logged if entry.get("path") == str(path)]
    assert len(told) == 1 and told[0]["level"] == "warning"
    assert secret not in master.process.output()

    listing = subprocess.run(
        farm_command("tokens", "list", "--json"),
        env=master.env,
        capture_output=True,
        text=True,
        check=True,
    )
    tokens = json.loads(listing.stdout)
    assert [(t["name"], t["role"], t["state"]) for t in tokens] == [("admin", "admin", "active")]
    assert secret not in listing.stdout
    runtime = build_runtime(Settings.load(master.env))
    try:
        assert runtime.farm.identities.authenticate(secret) == Identity("admin", Role.ADMIN)
    finally:
        runtime.close()

    master.stop()
    first = path.stat()
    master.start_again()
    assert path.read_text().strip() == secret
    assert path.stat().st_mtime_ns == first.st_mtime_ns
    assert "admin-token" not in master.process.output()
    again = subprocess.run(
        farm_command("tokens", "list", "--json"),
        env=master.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(json.loads(again.stdout)) == 1
    assert os.listdir(master.data_dir).count("admin-token") == 1
