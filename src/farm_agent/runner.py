"""Running the built-in ``command`` job type: one subprocess per frame, logs as CSV.

Each frame runs in a session of its own, under the job's limits (``farm_agent.limits``): a
frame that breaks one is killed with everything it started and reported failed with the
reason. Whatever a frame leaves running when its first process exits is ended too.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from farm_agent import blender, limits, procs
from farm_agent.limits import Limits
from farm_agent.orphans import SessionRecord
from farm_agent.paths import inside

log = logging.getLogger("farm_agent.runner")


def frame_text(frame: float) -> str:
    return str(int(frame)) if float(frame).is_integer() else repr(float(frame))


def command_for(template: list[str], frame: float, start: float, end: float) -> list[str]:
    """The argv with ``{frame}``, ``{start}`` and ``{end}`` substituted."""
    values = {"{frame}": frame_text(frame), "{start}": frame_text(start), "{end}": frame_text(end)}
    argv = []
    for part in template:
        for key, value in values.items():
            part = part.replace(key, value)
        argv.append(part)
    return argv


class Frames:
    """How an assignment's job type runs a frame: the built-in ``command`` job type's way.

    ``argv`` is the frame's command; ``watch`` reads each line it writes (both streams), returning
    a new progress (0..1) when the line tells one; ``precheck`` names a failure found before
    starting; ``succeeded`` is the final report of a frame that exited 0.
    """

    failure_reason = limits.EXIT
    tail_of_stdout = False
    """Whether the failure message's tail takes stdout lines too (Blender writes errors there)."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.template: list[str] = job["data"]["command"]

    def argv(self, task: TaskRun, start: float, end: float) -> list[str]:
        return command_for(self.template, task.frame, start, end)

    def precheck(self) -> str | None:
        return None

    def watch(self, line: str) -> float | None:
        return None

    def succeeded(self, tail: list[str]) -> dict[str, Any]:
        return {"state": "done"}


NO_BLENDER = (
    "this agent has no Blender: neither a binary (FARM_AGENT_BLENDER, blender on PATH) nor a "
    "Python with the bpy module"
)


class BlenderFrames(Frames):
    """The ``blender`` job type: a Blender render per frame (``farm_agent.blender``)."""

    failure_reason = blender.BLENDER_ERROR
    tail_of_stdout = True

    def __init__(
        self, job: dict[str, Any], renderer: blender.Renderer | blender.RendererLookup
    ) -> None:
        """``renderer``: this agent's Blender, or the lookup that finds it (asked in the
        runner's thread before the first frame, so an assignment is accepted at once while the
        agent is still looking)."""
        self.data: dict[str, Any] = job["data"]
        self._lookup: blender.RendererLookup | None = None
        self.renderer: blender.Renderer | None = None
        if isinstance(renderer, blender.RendererLookup):
            self._lookup = renderer
        else:
            self.renderer = renderer
        self._watch = blender.FrameWatch()

    def argv(self, task: TaskRun, start: float, end: float) -> list[str]:
        self._watch = blender.FrameWatch()
        assert self.renderer is not None, "precheck found the renderer"
        return blender.argv_for(self.renderer, self.data, int(task.frame))

    def precheck(self) -> str | None:
        if self.renderer is None and self._lookup is not None:
            self.renderer = self._lookup.get()
        if self.renderer is None:
            return NO_BLENDER
        if not Path(self.data["file"]).is_file():
            return f"no such .blend file: {self.data['file']}"
        return None

    def watch(self, line: str) -> float | None:
        return self._watch.line(line)

    def succeeded(self, tail: list[str]) -> dict[str, Any]:
        outputs = blender.outputs_of(self._watch.saved)
        if not outputs:
            message = "Blender exited 0 but saved no file" + (
                ": " + "\n".join(tail) if tail else ""
            )
            return {
                "state": "failed",
                "last_error": message[-2000:],
                "reason": blender.BLENDER_ERROR,
            }
        return {"state": "done", "outputs": outputs}


PROGRESS_EVERY = 1.0
"""Seconds between a frame's progress reports at most."""


class TaskRun:
    """One task of an assignment, with its process while it runs."""

    def __init__(self, job_id: int, task: dict[str, Any]) -> None:
        self.job_id = job_id
        self.id: int = task["id"]
        self.frame: float = task["frame"]
        self.attempt: int = task.get("attempt") or 1
        self.process: subprocess.Popen[bytes] | None = None
        self.exited = threading.Event()
        """Set once the process has exited (it may not have been reaped yet)."""
        self.last_output = time.monotonic()
        self.stopped = False
        self.finished = False
        self.log: tuple[str, Path] | None = None
        """The frame's log (identifier, file) once registered."""

    def heard(self) -> None:
        """The frame wrote something."""
        self.last_output = time.monotonic()


class Assignment:
    """A batch of one job's tasks, run one after the other in a thread."""

    def __init__(self, body: dict[str, Any], frames: Frames | None = None) -> None:
        self.id = str(uuid.uuid4())
        self.body = body
        self.job: dict[str, Any] = body["job"]
        self.frames = frames if frames is not None else Frames(self.job)
        self.limits = Limits.of(self.job)
        self.tasks = [TaskRun(self.job["id"], task) for task in body["tasks"]]
        numbers = [task.frame for task in self.tasks]
        self.start, self.end = min(numbers), max(numbers)
        self.lock = threading.Lock()

    def unfinished(self) -> list[TaskRun]:
        with self.lock:
            return [t for t in self.tasks if not t.finished]

    def as_reported(self, keep: set[int]) -> dict[str, Any]:
        """This assignment as current_assignments carries it: its tasks not finished, or whose
        final report the master has not received yet."""
        with self.lock:
            tasks = [
                {"id": t.id, "frame": t.frame, "attempt": t.attempt}
                for t in self.tasks
                if not t.finished or t.id in keep
            ]
        return {**self.body, "id": self.id, "tasks": tasks}


Report = Callable[[TaskRun, dict[str, Any], bool], None]


class Runner:
    """Runs assignments; reports through ``report(task, body, final)`` and uploads logs through
    ``upload(task, identifier, path)``. Records each frame's session in ``sessions`` while it
    may have processes, so that a later run can end them if this one dies."""

    def __init__(
        self,
        logs_dir: Path,
        report: Report,
        register_log: Callable[[TaskRun, str], None],
        upload_log: Callable[[TaskRun, str, Path], None],
        on_change: Callable[[], None],
        kill_grace: float = 5.0,
        sessions: SessionRecord | None = None,
        check_interval: float = 0.25,
        log_chunk: Callable[[TaskRun, str, Path], None] | None = None,
        log_every: float = 5.0,
    ) -> None:
        """``log_chunk(task, identifier, path)`` is called every ``log_every`` seconds while a
        frame runs, its log flushed to ``path``: to send what is new of it (``upload_log``
        is called once the frame has ended)."""
        self._logs_dir = logs_dir
        self._report = report
        self._register_log = register_log
        self._upload_log = upload_log
        self._on_change = on_change
        self._kill_grace = kill_grace
        self._sessions = sessions
        self._check_interval = check_interval
        self._log_chunk = log_chunk
        self._log_every = log_every
        self.assignments: dict[str, Assignment] = {}
        self._lock = threading.Lock()

    def repeated(self, body: dict[str, Any]) -> Assignment | None:
        """The assignment ``body`` repeats (the same job, tasks and attempts), if any: a
        master's call retried after its answer was lost."""
        wanted = [(t.get("id"), t.get("attempt")) for t in body["tasks"]]
        with self._lock:
            for assignment in self.assignments.values():
                if assignment.job["id"] == body["job"]["id"] and wanted == [
                    (t["id"], t.get("attempt")) for t in assignment.body["tasks"]
                ]:
                    return assignment
        return None

    def running_task_ids(self) -> set[int]:
        with self._lock:
            return {t.id for a in self.assignments.values() for t in a.unfinished()}

    def start(self, assignment: Assignment) -> None:
        with self._lock:
            self.assignments[assignment.id] = assignment
        threading.Thread(
            target=self._run,
            args=(assignment,),
            daemon=True,
            name=f"assignment-{assignment.id[:8]}",
        ).start()
        self._on_change()

    def find(self, task_id: int) -> TaskRun | None:
        with self._lock:
            for assignment in self.assignments.values():
                for task in assignment.tasks:
                    if task.id == task_id and not task.finished:
                        return task
        return None

    def stop(self, task_id: int) -> bool:
        """Stop a task the master took back: kill its processes (its whole session), report it
        queued with no agent. Returns whether the task was known."""
        task = self.find(task_id)
        if task is None:
            return False
        task.stopped = True
        process = task.process
        if process is not None and not task.exited.is_set():
            procs.end_session(process.pid, self._kill_grace)
        elif process is None:
            self._finish(task, {"state": "queued", "agent_id": None})
        return True

    def stop_all(self) -> None:
        for task_id in sorted(self.running_task_ids()):
            self.stop(task_id)

    def _finish(self, task: TaskRun, report: dict[str, Any]) -> None:
        if task.finished:
            return
        task.finished = True
        self._report(task, report, True)

    def _run(self, assignment: Assignment) -> None:
        try:
            environ = {
                **os.environ,
                **{str(k): str(v) for k, v in (assignment.job.get("environ") or {}).items()},
            }
            for task in assignment.tasks:
                if task.stopped:
                    self._finish(task, {"state": "queued", "agent_id": None})
                    continue
                try:
                    self._run_task(assignment, task, environ)
                except Exception as error:  # noqa: BLE001  # the task fails, not the batch thread
                    self._could_not_run(task, error)
        finally:
            with self._lock:
                self.assignments.pop(assignment.id, None)
            self._on_change()

    def _could_not_run(self, task: TaskRun, error: Exception) -> None:
        log.error(
            "task could not run",
            exc_info=error,
            extra={"job_id": task.job_id, "task_id": task.id, "attempt": task.attempt},
        )
        process = task.process
        if process is not None:
            procs.end_session(process.pid, self._kill_grace)
            process.wait()
            if self._sessions is not None:
                self._sessions.remove(process.pid)
        if task.log is not None:  # what the frame wrote, and that it ends here
            try:
                self._upload_log(task, *task.log)
            except OSError as lost:
                log.error("log file lost", extra={"task_id": task.id, "error": str(lost)})
        message = f"could not run: {type(error).__name__}: {error}"
        self._finish(
            task, {"state": "failed", "last_error": message[:2000], "reason": limits.AGENT_ERROR}
        )

    def _run_task(self, assignment: Assignment, task: TaskRun, environ: dict[str, str]) -> None:
        frames = assignment.frames
        problem = frames.precheck()
        argv = frames.argv(task, assignment.start, assignment.end) if problem is None else []
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        identifier = f"{stamp}_job{task.job_id}_task{task.id}_attempt{task.attempt}.csv"
        self._logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = inside(self._logs_dir, identifier)
        self._register_log(task, identifier)
        task.log = (identifier, log_path)
        self._report(task, {"state": "running", "time_started": "now"}, False)
        tail: deque[str] = deque(maxlen=20)
        started = time.monotonic()
        with log_path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["time", "stream", "line"])
            if problem is None:
                writer.writerow([_now(), "agent", f"running {argv!r}"])
            else:
                writer.writerow([_now(), "agent", problem])
                handle.flush()
                self._upload_log(task, identifier, log_path)
                self._finish(
                    task,
                    {
                        "state": "failed",
                        "last_error": problem[:2000],
                        "reason": frames.failure_reason,
                    },
                )
                return
            try:
                process = subprocess.Popen(
                    argv,
                    env=environ,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except (OSError, ValueError, TypeError, subprocess.SubprocessError) as error:
                # ValueError: a NUL byte in the environment or argv, or "=" in a variable's name
                writer.writerow([_now(), "agent", f"could not start: {error}"])
                handle.flush()
                self._upload_log(task, identifier, log_path)
                failure = f"could not start: {error}"
                self._finish(
                    task,
                    {"state": "failed", "last_error": failure[:2000], "reason": limits.NOT_STARTED},
                )
                return
            task.process = process
            task.heard()
            if self._sessions is not None:
                self._sessions.add(process.pid)
            threading.Thread(
                target=_wait_exit, args=(process, task.exited), daemon=True, name="frame-exit"
            ).start()
            if task.stopped:  # stopped while starting
                procs.end_session(process.pid, self._kill_grace)
            write_lock = threading.Lock()
            on_line = self._progress_reporter(task, frames)
            readers = [
                threading.Thread(
                    target=_copy,
                    args=(
                        process.stdout,
                        "stdout",
                        writer,
                        write_lock,
                        tail if frames.tail_of_stdout else None,
                        task.heard,
                        on_line,
                    ),
                    daemon=True,
                ),
                threading.Thread(
                    target=_copy,
                    args=(process.stderr, "stderr", writer, write_lock, tail, task.heard, on_line),
                    daemon=True,
                ),
            ]
            for reader in readers:
                reader.start()
            shipped = threading.Event()
            shipper = threading.Thread(
                target=self._ship_log,
                args=(task, identifier, log_path, handle, write_lock, shipped),
                daemon=True,
                name=f"log-{task.id}",
            )
            shipper.start()
            try:
                killed, rss = self._watch(task, assignment.limits, started)
                explained = assignment.limits.explained(killed, rss) if killed else ""
                if killed:
                    with write_lock:
                        writer.writerow([_now(), "agent", explained])
                # What the frame left behind in its session goes with it. Its first process,
                # not reaped yet, keeps the session's id from being given to another process
                # meanwhile.
                procs.end_session(process.pid, self._kill_grace)
                code = process.wait()
                for reader in readers:
                    reader.join()
            finally:
                shipped.set()
                shipper.join()
            if self._sessions is not None:
                self._sessions.remove(process.pid)
            writer.writerow(
                [_now(), "agent", f"exit code {code} after {time.monotonic() - started:.1f}s"]
            )
        self._upload_log(task, identifier, log_path)
        if task.stopped:
            self._finish(task, {"state": "queued", "agent_id": None})
        elif killed:
            failure = explained + (": " + "\n".join(tail) if tail else "")
            self._finish(task, {"state": "failed", "last_error": failure[:2000], "reason": killed})
        elif code == 0:
            self._finish(task, frames.succeeded(list(tail)))
        else:
            failure = f"exit code {code}" + (": " + "\n".join(tail) if tail else "")
            self._finish(
                task,
                {
                    "state": "failed",
                    "last_error": failure[-2000:],
                    "reason": frames.failure_reason,
                },
            )

    def _ship_log(
        self,
        task: TaskRun,
        identifier: str,
        path: Path,
        handle: Any,
        lock: threading.Lock,
        done: threading.Event,
    ) -> None:
        """Every ``log_every`` seconds until ``done``: flush the frame's log and send what is
        new of it, so that it can be followed while the frame runs."""
        if self._log_chunk is None:
            return
        while not done.wait(self._log_every):
            try:
                with lock:
                    handle.flush()
                self._log_chunk(task, identifier, path)
            except (OSError, ValueError) as error:  # the disk; a handle closed meanwhile
                log.warning(
                    "could not send a log chunk",
                    extra={"task_id": task.id, "file": str(path), "error": str(error)},
                )

    def _progress_reporter(self, task: TaskRun, frames: Frames) -> Callable[[str], None]:
        """A line reader that reports the frame's progress, at most every PROGRESS_EVERY s."""
        last = [0.0]
        lock = threading.Lock()

        def on_line(line: str) -> None:
            progress = frames.watch(line)
            if progress is None:
                return
            with lock:
                now = time.monotonic()
                if now - last[0] < PROGRESS_EVERY and progress < 1:
                    return
                last[0] = now
            if not task.finished and not task.stopped:
                self._report(task, {"progress": round(progress, 4)}, False)

        return on_line

    def _watch(
        self, task: TaskRun, within: Limits, started: float
    ) -> tuple[str | None, float | None]:
        """Wait for the frame's first process to exit, killing the frame before if it breaks
        one of its limits. Returns the reason it was killed for (None: it was not killed by
        the agent's limits) and the memory it held then (MB, when measured)."""
        assert task.process is not None
        if not within.any:
            task.exited.wait()
            return None, None
        pid = task.process.pid
        while not task.exited.wait(self._check_interval):
            if task.stopped:
                continue  # the master is taking it back: not a failure
            now = time.monotonic()
            rss = procs.session_rss_mb(pid) if within.ram_max is not None else None
            reason = within.breach(now - started, now - task.last_output, rss)
            if reason is not None:
                log.warning(
                    "frame killed",
                    extra={
                        "job_id": task.job_id,
                        "task_id": task.id,
                        "attempt": task.attempt,
                        "reason": reason,
                        "rss_mb": rss,
                    },
                )
                procs.end_session(pid, self._kill_grace)
                return reason, rss
        return None, None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def agent_row(message: str) -> str:
    """A row of the agent's own in a frame's log, as its CSV writer writes it."""
    out = io.StringIO()
    csv.writer(out).writerow([_now(), "agent", message])
    return out.getvalue()


MAX_LINE = 64 * 1024
"""Output without a newline goes to the log in pieces of this many bytes."""


def _copy(
    stream: Any,
    name: str,
    writer: Any,
    lock: threading.Lock,
    tail: deque[str] | None,
    heard: Callable[[], None],
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Copy a stream to the log line by line, calling ``heard`` on every read: output without
    a newline (a progress counter redrawn with carriage returns) counts as output too."""
    pending = b""
    while True:
        chunk = stream.read1(MAX_LINE)
        if not chunk:
            break
        heard()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) >= MAX_LINE:
            lines.append(pending)
            pending = b""
        for raw in lines:
            _write_line(raw, name, writer, lock, tail, on_line)
    if pending:
        _write_line(pending, name, writer, lock, tail, on_line)
    stream.close()


def _write_line(
    raw: bytes,
    name: str,
    writer: Any,
    lock: threading.Lock,
    tail: deque[str] | None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    line = raw.decode(errors="replace")
    with lock:
        writer.writerow([_now(), name, line])
        if tail is not None:
            tail.append(line)
    if on_line is not None:
        on_line(line)


def _wait_exit(process: subprocess.Popen[bytes], exited: threading.Event) -> None:
    """Set ``exited`` when the process ends, without reaping it: until it is reaped, its pid
    (the frame session's id) cannot be given to another process."""
    try:
        if hasattr(os, "waitid"):
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        else:  # pragma: no cover  # without waitid it is reaped here
            process.wait()
    except ChildProcessError:
        pass  # reaped already
    finally:
        exited.set()
