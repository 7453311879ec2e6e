"""One real ``farm serve`` per test module, serving only callers with tokens, and farm clients
for it: an admin (the token ``farm serve`` leaves) and two artists."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from farm_client import FarmClient
from tests.support.processes import Master, Process, base_env, farm_command


@attrs.frozen
class Farm:
    master: Master
    tokens: dict[str, str]
    """Token by name: ``admin``, and each artist's."""
    client: Callable[..., FarmClient]
    """A client of this master with a named token (``None``: without one, whatever FARM_TOKEN
    says)."""


def make_token(master: Master, role: str, name: str) -> str:
    """`farm tokens create`, run as the operator on the master's machine."""
    made = subprocess.run(
        farm_command("tokens", "create", "--role", role, "--name", name),
        env=master.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    tmp_path: Path = tmp_path_factory.mktemp("client")
    processes: list[Process] = []
    clients: list[FarmClient] = []
    try:
        # Nothing admitted without a token: every call shows what a token lets it do.
        master = Master(tmp_path, processes, base_env(tmp_path, FARM_ANONYMOUS_NETWORKS=""), ())
        tokens = {
            "admin": (master.data_dir / "admin-token").read_text().strip(),
            "alice": make_token(master, "artist", "alice"),
            "bob": make_token(master, "artist", "bob"),
            "viewer": make_token(master, "viewer", "watcher"),
        }

        def client(name: str | None, **options: Any) -> FarmClient:
            made = FarmClient(master.url, token="" if name is None else tokens[name], **options)
            clients.append(made)
            return made

        yield Farm(master, tokens, client)
    finally:
        for made in clients:
            made.close()
        for process in reversed(processes):
            process.stop()


@pytest.fixture(scope="module")
def admin(farm: Farm) -> FarmClient:
    return farm.client("admin")


@pytest.fixture(scope="module")
def alice(farm: Farm) -> FarmClient:
    return farm.client("alice")


@pytest.fixture(scope="module")
def bob(farm: Farm) -> FarmClient:
    return farm.client("bob")


@pytest.fixture(scope="module")
def command_jobtype(admin: FarmClient) -> str:
    admin.create_jobtype("command", description="runs a command per frame")
    return "command"
