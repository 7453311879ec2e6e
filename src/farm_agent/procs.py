"""A frame's processes, read from /proc (Linux): who belongs to a frame's session, how much
memory they hold, and ending them all.

Every frame starts in a new session (``start_new_session``): its first process leads both the
session and the process group, whose ids are its pid. Whatever it starts stays in that session
unless it calls ``setsid`` itself, so the session is the frame's process tree, even for the
children a shell with job control moves to groups of their own.

Where there is no /proc (not Linux), the members cannot be listed: ending a frame then signals
its process group only, and memory is not measured (``session_rss_mb`` answers None).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import attrs

PROC = Path("/proc")


@attrs.frozen
class ProcStat:
    """The fields of /proc/<pid>/stat the agent needs."""

    pid: int
    state: str
    pgid: int
    sid: int
    start: int
    """Start time in clock ticks since boot: with the boot id, it tells a process from a later
    one that was given the same pid."""


def stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """The process's stat fields, or None when there is no such process (or no /proc)."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (2nd field) is in parentheses and may itself hold spaces and ")".
    _, close, rest = text.rpartition(")")
    fields = rest.split()
    if not close or len(fields) < 20:
        return None
    try:
        return ProcStat(
            pid=pid, state=fields[0], pgid=int(fields[2]), sid=int(fields[3]), start=int(fields[19])
        )
    except ValueError:
        return None


def boot_id(proc: Path = PROC) -> str | None:
    """This boot's id: process start times count from boot, so they compare within one boot."""
    try:
        return (proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip() or None
    except OSError:
        return None


def has_proc(proc: Path = PROC) -> bool:
    return (proc / "self" / "stat").exists()


def _pids(proc: Path) -> list[int]:
    try:
        return [int(entry.name) for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def own(pid: int, proc: Path = PROC) -> bool:
    """Whether the process runs as this agent's user (the only ones it could signal anyway)."""
    try:
        return (proc / str(pid)).stat().st_uid == os.getuid()
    except OSError:
        return False


def session_members(sid: int, proc: Path = PROC) -> list[ProcStat]:
    """The live processes (zombies left out) of session ``sid``."""
    members = []
    for pid in _pids(proc):
        found = stat(pid, proc)
        if found is not None and found.sid == sid and found.state not in ("Z", "X"):
            members.append(found)
    return members


def session_rss_mb(sid: int, proc: Path = PROC) -> float | None:
    """The resident memory of session ``sid``'s processes, summed, in MB (pages two of them
    share count twice, as in PyFarm and ``ps``); None where it cannot be measured."""
    if not has_proc(proc):
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for member in session_members(sid, proc):
        try:
            resident = int((proc / str(member.pid) / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        total += resident * page
    return total / 2**20


def _signal_session(sid: int, signum: int) -> bool:
    """Signal the process group ``sid`` and every other process of session ``sid``; whether
    any was found."""
    found = False
    try:
        os.killpg(sid, signum)
        found = True
    except ProcessLookupError:
        pass
    except PermissionError:
        found = True
    for member in session_members(sid):
        if member.pgid != sid:
            try:
                os.kill(member.pid, signum)
                found = True
            except (ProcessLookupError, PermissionError):
                pass
    return found


def end_session(sid: int, grace: float, sleep: float = 0.05) -> None:
    """SIGTERM the frame's processes (group and session ``sid``), SIGKILL what is left after
    ``grace`` seconds.

    Call it while the session leader has not been reaped yet (a zombie still holds its pid), or
    while members remain: then ``sid`` cannot name anyone else's processes.
    """
    if not _signal_session(sid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(sid):
            return
        time.sleep(sleep)  # polling the processes' exit: they are not all our children
    _signal_session(sid, signal.SIGKILL)


def _alive(sid: int) -> bool:
    """Whether any process of the session is still running (zombies are not)."""
    if has_proc():
        return bool(session_members(sid))
    try:
        os.killpg(sid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
