"""Real processes on loopback: the ``farm`` command as a child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def wait_until_serving(base_url: str, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"farm serve exited early:\n{process.output()}")
        try:
            if httpx.get(f"{base_url}/api/v1/agents/schema", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"farm serve did not answer within {timeout}s:\n{process.output()}")
