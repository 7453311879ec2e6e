"""``farm_client`` stands alone: importing it loads nothing of the master, and the
``farm-client`` distribution (clients/python) builds a wheel of farm_client and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from farm_client import FarmClient

ROOT = Path(__file__).resolve().parents[2]
MASTER = ("farm_domain", "farm_adapters", "farm_http", "farm_cli", "farm_agent")
HEAVY = ("sqlalchemy", "falcon", "huey", "cattrs", "orjson", "alembic", "redis", "psycopg")


def test_importing_the_client_loads_nothing_of_the_master() -> None:
    probe = (
        "import sys, farm_client; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({(*MASTER, *HEAVY)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.e2e
def test_the_standalone_distribution_holds_only_the_client(tmp_path: Path) -> None:
    # A copy of the two directories it builds from, so the build leaves nothing in the tree.
    shutil.copytree(ROOT / "src" / "farm_client", tmp_path / "src" / "farm_client")
    shutil.copytree(
        ROOT / "clients" / "python",
        tmp_path / "clients" / "python",
        ignore=shutil.ignore_patterns("build", "*.egg-info"),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist")]
        + [str(tmp_path / "clients" / "python")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("farm_client-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "farm_client",
        "farm_client-0.1.0.dist-info",
    }
    assert "farm_client/py.typed" in names
    metadata = zipfile.ZipFile(wheel).read("farm_client-0.1.0.dist-info/METADATA").decode()
    requires = sorted(
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    )
    assert requires == ["attrs>=25.1", "httpx>=0.27"]


def test_every_call_of_the_client_is_made_against_a_real_master() -> None:
    """A method added to FarmClient without a call in test_client.py fails here."""
    tests = (Path(__file__).parent / "test_client.py").read_text()
    public = [name for name in vars(FarmClient) if not name.startswith("_")]
    untested = [
        name
        for name in public
        if callable(getattr(FarmClient, name)) and f".{name}(" not in tests and name != "close"
    ]
    assert untested == []
