"""The frames' sessions this agent started, kept on disk so that a later run can end what an
earlier one left running (a SIGKILLed or crashed agent does not end its frames).

Each entry is a session id (the pid of the frame's first process, which leads its session and
its process group) with that process's start time and the boot id. A process of the recorded
session is killed at the next start only when it is this user's, the boot is the same, and it
started no earlier than the recorded leader (the leader itself: at exactly that time). A pid
reused by an unrelated process fails these checks: while any process of the old session lives,
its id is not handed out again, and a newer holder of the number started later and leads a
session of its own only if the old one is gone. So only what the agent really started is
killed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from farm_agent import procs

log = logging.getLogger("farm_agent.orphans")

RECORD_NAME = "frame_sessions.json"
"""The record's file name in the agent's data directory."""

MAX_ENTRIES = 4096
"""At most this many sessions are read back (a record larger than that is not the agent's)."""


class SessionRecord:
    """The file of live frame sessions, rewritten whole (atomically) on every change."""

    def __init__(self, path: Path, proc: Path = procs.PROC) -> None:
        self.path = path
        self._proc = proc
        self._lock = threading.Lock()
        self._entries: dict[int, dict[str, Any]] = {}

    def add(self, sid: int) -> None:
        """Record the frame session ``sid`` (right after its first process started)."""
        found = procs.stat(sid, self._proc)
        entry = {"sid": sid, "start": found.start if found else None, "boot": procs.boot_id()}
        with self._lock:
            self._entries[sid] = entry
            self._write()

    def remove(self, sid: int) -> None:
        """Forget ``sid``, once none of its processes is left."""
        with self._lock:
            if self._entries.pop(sid, None) is not None:
                self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(sorted(self._entries.values(), key=lambda e: e["sid"])))
        os.replace(temporary, self.path)

    def _read(self) -> list[dict[str, Any]]:
        try:
            entries = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            log.warning("frame record unreadable", extra={"file": str(self.path), "error": error})
            return []
        if not isinstance(entries, list):
            return []
        return [
            e
            for e in entries[:MAX_ENTRIES]
            if isinstance(e, dict)
            and type(e.get("sid")) is int
            and e["sid"] > 1
            and type(e.get("start")) is int
        ]

    def end_leftovers(self, wait: float = 5.0) -> list[int]:
        """Kill what the sessions an earlier run recorded still run, then clear the record.
        Returns the pids signalled. Call before starting any frame."""
        boot = procs.boot_id(self._proc)
        killed: list[int] = []
        for entry in self._read():
            if boot is None or entry.get("boot") != boot:
                continue  # another boot: its processes are gone
            killed += self._kill_session(entry["sid"], entry["start"])
        deadline = time.monotonic() + wait
        while killed and time.monotonic() < deadline:
            left = [pid for pid in killed if _running(procs.stat(pid, self._proc))]
            if not left:
                break
            time.sleep(0.05)  # polling: the killed processes are not our children
        with self._lock:
            self._entries.clear()
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        if killed:
            log.warning(
                "ended frames an earlier run left running",
                extra={"pids": killed, "file": str(self.path)},
            )
        return killed

    def _kill_session(self, sid: int, start: int) -> list[int]:
        leader = procs.stat(sid, self._proc)
        if leader is not None and (leader.start != start or leader.sid != sid):
            return []  # the pid is someone else's now, so the old session is gone
        killed = []
        for member in procs.session_members(sid, self._proc):
            if member.start < start or not procs.own(member.pid, self._proc):
                continue
            try:
                os.kill(member.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            killed.append(member.pid)
        return killed


def _running(found: procs.ProcStat | None) -> bool:
    return found is not None and found.state not in ("Z", "X")
