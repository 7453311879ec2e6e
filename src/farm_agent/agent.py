"""The agent: announces itself, heartbeats, accepts assignments, runs them, reports back."""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import httpx

from farm_agent import VERSION, blender, limits, system
from farm_agent.credentials import Credentials, CredentialStore, parsed
from farm_agent.master import Master
from farm_agent.orphans import RECORD_NAME, SessionRecord
from farm_agent.outbox import Outbox
from farm_agent.paths import OutsideDataDir, inside, version_problem
from farm_agent.runner import (
    NO_BLENDER,
    Assignment,
    BlenderFrames,
    Frames,
    Runner,
    TaskRun,
    agent_row,
)
from farm_agent.server import AgentServer
from farm_agent.signing import SeenNonces, Verifier

log = logging.getLogger("farm_agent")


@attrs.frozen
class AgentConfig:
    master: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 50000
    hostname: str = attrs.Factory(system.hostname)
    cpus: int = attrs.Factory(system.cpus)
    ram: int = attrs.Factory(system.ram)
    state: str = "online"
    heartbeat: float = 30.0
    on_shutdown: str = "hand-back"
    retry_base: float = 1.0
    retry_spread: float = 5.0
    farm_name: str | None = None
    join_token: str | None = None
    """Enrolls the agent: its first announce carries it, the answer the agent's own credential."""
    log_every: float = 5.0
    """Seconds between the chunks of a running frame's log sent to the master."""


class ShutOut(Exception):
    """The master refused this agent (a revoked credential, a bad join token, a wrong farm)."""


def agent_id(data_dir: Path) -> uuid.UUID:
    """The agent's id, kept in its data directory across restarts."""
    path = data_dir / "agent_id"
    try:
        return uuid.UUID(path.read_text().strip())
    except (OSError, ValueError):
        data_dir.mkdir(parents=True, exist_ok=True)
        new = uuid.uuid4()
        path.write_text(str(new) + "\n")
        return new


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.id = agent_id(config.data_dir)
        self.master = Master(
            config.master, retry_base=config.retry_base, retry_spread=config.retry_spread
        )
        self.credentials = CredentialStore(config.data_dir / "credentials.json")
        self._credentials = self.credentials.load()
        self.master.bearer = self._credentials.credential or config.join_token
        self.outbox = Outbox(config.data_dir / "outbox.db")
        # Frames an earlier run of this agent left running (it was SIGKILLed, it crashed) are
        # ended before anything new starts.
        self.sessions = SessionRecord(config.data_dir / RECORD_NAME)
        self.sessions.end_leftovers()
        self._send_interrupted_logs()
        self.runner = Runner(
            config.data_dir / "logs",
            self._report,
            self._register_log,
            self._upload_log,
            self._changed,
            sessions=self.sessions,
            log_chunk=self._log_chunk,
            log_every=config.log_every,
        )
        self.blender = blender.RendererLookup()
        self._software_reported: str | None = None
        verifier = Verifier(lambda: self._credentials.signing_key, time.time, SeenNonces())
        self.server = AgentServer((config.host, config.port), self, verifier)
        self.port = self.server.server_address[1]
        self.started = time.monotonic()
        self.shutting_down = threading.Event()
        self.restart = False
        self._stop = threading.Event()
        self._beat_now = threading.Event()
        self._assign_lock = threading.Lock()
        self._exit_code = 0

    # -- the master's calls ------------------------------------------------------------------

    def assign(self, body: Any) -> tuple[int, Any]:
        if self.shutting_down.is_set():
            return 503, {"error": "this agent is shutting down"}
        problem = _check_assignment(body)
        if problem:
            return 400, {"error": problem}
        job, jobtype = body["job"], body["jobtype"]
        frames: Frames
        if jobtype.get("name") == blender.NAME:
            if self.blender.known() and self.blender.get() is None:
                return 400, {"error": NO_BLENDER}
            # While the agent is still looking (at start-up, up to a minute) the work is
            # accepted at once, not after the master's call timed out: the frames wait for the
            # lookup in the runner's thread, and fail with NO_BLENDER if it finds none.
            frames = BlenderFrames(job, self.blender)
        elif jobtype.get("name") == "command":
            frames = Frames(job)
        else:
            return 400, {
                "error": f"Unknown job type {jobtype.get('name')!r}: this agent runs "
                "the built-in 'command' and 'blender' job types"
            }
        if (job.get("ram") or 0) > system.free_ram():
            return 400, {"error": "Not enough ram", "free_ram": system.free_ram()}
        if (job.get("cpus") or 0) > self.config.cpus:
            return 400, {"error": "Not enough cpus", "cpus": self.config.cpus}
        with self._assign_lock:
            held = self.runner.running_task_ids()
            clash = sorted(t["id"] for t in body["tasks"] if t["id"] in held)
            if clash:
                again = self.runner.repeated(body)
                if again is not None:
                    # The master's retry of a call whose answer it lost: the same answer, not
                    # a conflict (which would make the master requeue what this agent runs).
                    return 202, {"id": again.id}
                return 409, {
                    "error": "tasks already assigned to this agent",
                    "rejected_task_ids": clash,
                }
            assignment = Assignment(body, frames)
            self.runner.start(assignment)
        log.info(
            "assignment accepted",
            extra={
                "assignment": assignment.id,
                "job_id": job["id"],
                "tasks": [t["id"] for t in body["tasks"]],
            },
        )
        return 202, {"id": assignment.id}

    def running_tasks(self) -> list[dict[str, Any]]:
        keep = self.outbox.pending_final_reports()
        tasks = []
        for assignment in list(self.runner.assignments.values()):
            for task in assignment.as_reported(keep)["tasks"]:
                tasks.append({**task, "job_id": assignment.job["id"]})
        return tasks

    def stop_task(self, task_id: int) -> bool:
        return self.runner.stop(task_id)

    def update(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("version"), str):
            return 400, {"error": 'send {"version": "<version>"}'}
        problem = version_problem(body["version"])
        if problem:
            return 400, {"error": problem}
        threading.Thread(target=self._download_update, args=(body["version"],), daemon=True).start()
        return 202, {"version": body["version"]}

    def request_restart(self) -> tuple[int, Any]:
        self.restart = True
        self.shutting_down.set()
        self._stop.set()
        return 202, {"restarting": True}

    def status(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "state": self._state(),
            "version": VERSION,
            "uptime": round(time.monotonic() - self.started, 1),
            "running_tasks": sorted(self.runner.running_task_ids()),
            "pending_reports": len(self.outbox),
        }

    # -- speaking to the master ------------------------------------------------------------

    def _state(self) -> str:
        if self.shutting_down.is_set():
            return "offline"
        return "running" if self.runner.running_task_ids() else self.config.state

    def _current_assignments(self) -> dict[str, Any]:
        keep = self.outbox.pending_final_reports()
        return {a.id: a.as_reported(keep) for a in list(self.runner.assignments.values())}

    def announce(self) -> bool:
        body: dict[str, Any] = {
            "id": str(self.id),
            "hostname": self.config.hostname,
            "version": VERSION,
            "os_class": system.os_class(),
            "os_fullname": system.os_fullname(),
            "ram": self.config.ram,
            "cpus": self.config.cpus,
            "cpu_name": system.cpu_name(),
            "port": self.port,
            "free_ram": system.free_ram(),
            "time_offset": 0,
            "state": self._state(),
            "mac_addresses": system.mac_addresses(),
            "current_assignments": self._current_assignments(),
        }
        if self.config.farm_name:
            body["farm_name"] = self.config.farm_name
        response = self.master.request("POST", "/agents/", json=body)
        if response is None or response.status_code >= 500:
            return False
        if response.status_code == 401:
            if self._credentials.credential is not None:
                raise ShutOut(
                    "the master no longer accepts this agent's credential (revoked, or the agent "
                    f"was deleted); remove {self.credentials.path} and enroll it again with "
                    "--join-token"
                )
            raise ShutOut(
                "the master refused the join token"
                if self.config.join_token
                else "the master wants a credential: start the agent with --join-token"
            )
        if response.status_code >= 400:
            raise ShutOut(f"the master refused this agent: {response.text[:500]}")
        self._enrolled(response)
        log.info("announced", extra={"agent_id": str(self.id), "status": response.status_code})
        self._software_reported = None
        if self.blender.known():
            self._report_software()
        return True

    def _find_blender(self) -> None:
        """Find this machine's Blender (slow: it starts Blender) and report it once found."""
        if self.blender.get() is not None and not self._stop.is_set():
            self._report_software()

    def _report_software(self) -> None:
        """Tell the master which Blender this agent renders with, as software ``blender``
        (jobs can then require ``blender>=4.2``). The master records only versions its catalogue
        has: an operator adds them (``farm software add``, ``POST /api/v1/software``)."""
        renderer = self.blender.get()
        if renderer is None or self._software_reported == renderer.version:
            return
        response = self.master.request(
            "POST",
            f"/agents/{self.id}/software",
            json={"software": blender.NAME, "version": renderer.version},
        )
        status = None if response is None else response.status_code
        recorded = response is not None and response.status_code < 300
        if recorded:
            self._software_reported = renderer.version
        log.info(
            "software reported" if recorded else "software not recorded",
            extra={
                "software": blender.NAME,
                "version": renderer.version,
                "via": renderer.kind,
                "status": status,
                "answer": None if response is None or recorded else response.text[:300],
            },
        )

    def _enrolled(self, response: httpx.Response) -> None:
        """Keep the credential and signing key the master's answer carries, if new."""
        try:
            given = parsed(response.json())
        except ValueError:
            return
        kept = self._credentials
        updated = Credentials(
            given.credential or kept.credential, given.signing_key or kept.signing_key
        )
        if updated == kept:
            return
        self.credentials.save(updated)
        self._credentials = updated
        self.master.bearer = updated.credential or self.config.join_token
        log.info(
            "enrolled" if given.credential else "signing key stored",
            extra={"agent_id": str(self.id), "file": str(self.credentials.path)},
        )

    def heartbeat(self) -> bool:
        body = {
            "state": self._state(),
            "current_assignments": self._current_assignments(),
            "free_ram": system.free_ram(),
        }
        response = self.master.request("POST", f"/agents/{self.id}", json=body)
        if response is None or response.status_code >= 500:
            return False
        if response.status_code == 401:
            raise ShutOut(
                "the master no longer accepts this agent's credential (revoked?); remove "
                f"{self.credentials.path} and enroll it again with --join-token"
            )
        if response.status_code == 404:
            return self.announce()
        return True

    def _report(self, task: TaskRun, body: dict[str, Any], final: bool) -> None:
        self.outbox.put(
            "POST",
            f"/jobs/{task.job_id}/tasks/{task.id}",
            json_body=body,
            headers=self._task_headers(task),
            task_id=task.id,
            final=final,
        )
        if final:
            self._beat_now.set()

    def _task_headers(self, task: TaskRun) -> dict[str, str]:
        return {"X-Farm-Agent-Id": str(self.id), "X-Farm-Attempt": str(task.attempt)}

    def _register_log(self, task: TaskRun, identifier: str) -> None:
        """Register a frame's log with the master, and follow it (in the outbox, so that a
        crash of this agent does not lose what it had not sent)."""
        logs = f"/jobs/{task.job_id}/tasks/{task.id}/attempts/{task.attempt}/logs/"
        self.outbox.open_log(
            inside(self.config.data_dir / "logs", identifier),
            f"{logs}{identifier}/chunks",
            (logs, {"identifier": identifier, "agent_id": str(self.id)}),
        )

    def _log_chunk(self, task: TaskRun, identifier: str, path: Path, last: bool = False) -> None:
        """Put what is new of a frame's log in the outbox: a chunk the master appends at its
        offset (once, however often the outbox sends it). The last one goes at the frame's end
        (the first one even if the log is empty, so that the master has it)."""
        self.outbox.log_chunk(path, path.stat().st_size, last=last)

    def _upload_log(self, task: TaskRun, identifier: str, path: Path) -> None:
        self._log_chunk(task, identifier, path, last=True)

    def _send_interrupted_logs(self) -> None:
        """The logs of frames an earlier run of this agent was running when it died (killed,
        crashed): a line saying so ends each, and what the master has not been sent of it is
        queued, so that its copy ends as this one does. The frames themselves are not resumed:
        their processes were ended, and the master takes the tasks back when this agent
        announces itself without them."""
        for path, queued in self.outbox.open_logs().items():
            try:
                with path.open("a+b") as handle:
                    handle.seek(0, os.SEEK_END)
                    if handle.tell():
                        handle.seek(-1, os.SEEK_END)
                        ended = handle.read(1) == b"\n"
                    else:
                        ended = True
                    row = agent_row("the agent stopped before the frame ended")
                    handle.write((b"" if ended else b"\r\n") + row.encode())
                size = path.stat().st_size
            except OSError as error:
                log.error("log file lost", extra={"file": str(path), "error": str(error)})
                size = queued  # nothing more to send: only the follow is ended
            self.outbox.log_chunk(path, size, last=True)
            log.info(
                "interrupted frame's log queued",
                extra={"file": str(path), "queued_before": queued, "size": size},
            )

    def _changed(self) -> None:
        self._beat_now.set()

    def _download_update(self, version: str) -> None:
        problem = version_problem(version)
        if problem:
            log.warning("update refused", extra={"version": version, "reason": problem})
            return
        try:
            target = inside(self.config.data_dir, "updates", f"farm-agent-{version}.zip")
        except OutsideDataDir as outside:
            log.warning("update refused", extra={"version": version, "reason": str(outside)})
            return
        response = self.master.request("GET", f"/agents/updates/{version}")
        if response is None or response.status_code != 200:
            log.warning("update not downloaded", extra={"version": version})
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response.content)
        log.info("update downloaded", extra={"version": version, "file": str(target)})

    # -- life cycle ------------------------------------------------------------------------

    def _heartbeats(self) -> None:
        failures = 0
        while not self._stop.is_set():
            interval = self.config.heartbeat * (1 + random.uniform(-0.1, 0.1))
            if failures:
                interval = min(interval, self.master.backoff(failures))
            self._beat_now.wait(interval)
            self._beat_now.clear()
            if self._stop.is_set():
                break
            try:
                failures = 0 if self.heartbeat() else failures + 1
            except ShutOut as refused:
                self._shut_out(refused)
                break

    def _shut_out(self, refused: ShutOut) -> None:
        log.error(
            "shut out by the master", extra={"agent_id": str(self.id), "reason": str(refused)}
        )
        self._exit_code = 3
        self.request_shutdown()

    def run(self) -> int:
        """Serve, announce, heartbeat, until SIGTERM/SIGINT (``request_shutdown``)."""
        threading.Thread(target=self.server.serve_forever, daemon=True, name="http").start()
        threading.Thread(
            target=self.outbox.drain,
            daemon=True,
            name="outbox",
            args=(self.master.send, self._stop, self.master.backoff),
        ).start()
        threading.Thread(target=self._find_blender, daemon=True, name="find-blender").start()
        failures = 0
        try:
            while not self._stop.is_set() and not self.announce():
                failures += 1
                self._stop.wait(self.master.backoff(failures))
        except ShutOut as refused:
            self._shut_out(refused)
            return self._shut_down()
        heartbeats = threading.Thread(target=self._heartbeats, daemon=True, name="heartbeat")
        heartbeats.start()
        log.info(
            "agent running",
            extra={"agent_id": str(self.id), "port": self.port, "master": self.config.master},
        )
        self._stop.wait()
        return self._shut_down()

    def request_shutdown(self) -> None:
        self.shutting_down.set()
        self._stop.set()

    def _shut_down(self) -> int:
        self.shutting_down.set()
        if self.config.on_shutdown == "hand-back":
            self.runner.stop_all()
        deadline = time.monotonic() + 600
        while self.runner.running_task_ids() and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for running tasks to finish or be killed
        if not self._exit_code:  # a shut-out agent has no one to report to
            flush = threading.Event()
            drainer = threading.Thread(
                target=self.outbox.drain, daemon=True, args=(self.master.send, flush, lambda n: 0.2)
            )
            drainer.start()
            deadline = time.monotonic() + 15
            while len(self.outbox) and time.monotonic() < deadline:
                time.sleep(0.05)
            flush.set()
            self.master.request(
                "POST",
                f"/agents/{self.id}",
                json={"state": "offline", "current_assignments": {}, "free_ram": system.free_ram()},
            )
        self.server.shutdown()
        self.master.close()
        log.info(
            "agent stopped", extra={"agent_id": str(self.id), "unsent_reports": len(self.outbox)}
        )
        if self.restart:
            os.execv(sys.executable, [sys.executable, "-m", "farm_agent", *sys.argv[1:]])
        return self._exit_code


def _check_assignment(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    job, jobtype, tasks = body.get("job"), body.get("jobtype"), body.get("tasks")
    if not isinstance(job, dict) or type(job.get("id")) is not int:
        return "`job` must be an object with an integer id"
    if not isinstance(jobtype, dict):
        return "`jobtype` must be an object"
    if not isinstance(tasks, list) or not tasks:
        return "`tasks` must be a non-empty list"
    for task in tasks:
        if (
            not isinstance(task, dict)
            or type(task.get("id")) is not int
            or type(task.get("frame")) not in (int, float)
        ):
            return "each task needs an integer id and a numeric frame"
        attempt = task.get("attempt")
        if attempt is not None and (type(attempt) is not int or attempt < 0):
            return "a task's attempt must be a whole number"
    limit_problem = limits.problem(job)
    if limit_problem:
        return limit_problem
    if jobtype.get("name") == blender.NAME:
        return blender.data_problem(job.get("data")) or blender.frames_problem(
            [task["frame"] for task in tasks]
        )
    if jobtype.get("name") == "command":
        command = (
            (job.get("data") or {}).get("command") if isinstance(job.get("data"), dict) else None
        )
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(part, str) for part in command)
        ):
            return 'the command job type needs data {"command": ["program", "arg", ...]}'
    return None
