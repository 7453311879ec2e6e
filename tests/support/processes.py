"""Real processes on loopback: the ``farm`` command as a child process, and a master to run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def farm_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "farm_cli.main", *args]


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without its FARM_ settings, plus a data dir under ``tmp_path``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FARM_")}
    env.update(
        {
            "FARM_DATA_DIR": str(tmp_path / "data"),
            "FARM_AGENT_NETWORKS": "127.0.0.0/8",
            "FARM_LOG_FORMAT": "json",
            "FARM_AGENT_RETRY_DELAY": "0.05",
            # The existing tests act as PyFarm agents and clients without tokens.
            "FARM_ANONYMOUS_NETWORKS": "127.0.0.0/8",
            "FARM_ANONYMOUS_ROLE": "admin",
        }
    )
    env.update(extra)
    return env


class Process:
    """A child process whose output goes to a file the test can read."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self._file, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not exited within 20 s; returns the exit status."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._file.close()
        return self.popen.returncode


def wait_until_serving(base_url: str, process: Process, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"farm serve exited early:\n{process.output()}")
        try:
            # 401: serving, to nobody without a credential.
            status = httpx.get(f"{base_url}/api/v1/agents/schema", timeout=1).status_code
            if status in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"farm serve did not answer within {timeout}s:\n{process.output()}")


class Master:
    """``farm serve`` on a free loopback port, answering once built. Every process it starts
    joins ``processes``, which the test stops at its end."""

    def __init__(
        self, tmp_path: Path, processes: list[Process], env: dict[str, str], args: tuple[str, ...]
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.data_dir = Path(env["FARM_DATA_DIR"])
        self._tmp_path = tmp_path
        self._processes = processes
        self._args = args
        self.process = self._serve()

    def _serve(self) -> Process:
        process = Process(
            farm_command("serve", "--port", str(self.port), *self._args),
            self.env,
            self._tmp_path / f"serve-{len(self._processes)}.log",
        )
        self._processes.append(process)
        wait_until_serving(self.url, process)
        return process

    def stop(self) -> int:
        return self.process.stop()

    def start_again(self) -> None:
        """After ``stop``: ``farm serve`` again, on the same port with the same settings."""
        self.process = self._serve()

    def api(self) -> httpx.Client:
        """A client on the master's API, as a user or operator would call it."""
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=10)


class StartMaster(Protocol):
    """What the ``start_master`` fixture hands a test: extra ``farm serve`` arguments and FARM_
    settings in, a master that answers out."""

    def __call__(self, *args: str, **env: str) -> Master: ...
