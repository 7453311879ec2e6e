"""``make bench``: start the master on loopback, load it, print a table.

Heartbeats as real agents send them lead (``--only-heartbeats`` runs them alone): 10,000
registered agents, a fresh ``free_ram`` every time, idle and busy agents mixed, beside the
bare-Falcon baseline and PyFarm master 0.8.5 in the same rounds, then a check that no heartbeat
was lost (see bench/heartbeats.py and bench/pyfarm.py).

Every scenario is reported with throughput, p50 and p99 latency, errors, and its ratio to a
baseline measured in the same run: a bare Falcon endpoint parsing the same JSON, served by the
same server stack (granian, same workers). In-process scenarios (scheduling, reconciliation)
report operations per second and the ratio to their own smallest size.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench import hostile, pyfarm, seed
from bench.heartbeats import (
    TASKS_PER_RUNNING,
    Fleet,
    Heartbeats,
    Ledger,
    check,
    running_share,
)
from bench.load import Result, load
from tests.support.identities import ADMIN

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench-cache"  # PyFarm master's virtualenv, kept between runs
BUSY = 1000  # agents that run 4 tasks and heartbeat during the load


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited early (status {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listened on port {port} within {timeout}s")


@contextmanager
def served(args: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[int]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
        try:
            wait_port(port, process)
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(
        self,
        backend: str,
        scenario: str,
        result: Result | None,
        baseline: float | None,
        *,
        unit: str = "req/s",
        value: float | None = None,
        ratio: float | None = None,
        note: str = "",
    ) -> None:
        throughput = value if value is not None else (result.throughput if result else 0)
        if ratio is None and baseline:
            ratio = throughput / baseline
        self.rows.append(
            (
                backend,
                scenario,
                f"{throughput:,.0f} {unit}",
                f"{result.percentile(50):.1f}" if result else "-",
                f"{result.percentile(99):.1f}" if result else "-",
                str(result.errors) if result else "-",
                f"{ratio:.2f}" if ratio is not None else "-",
                note,
            )
        )
        print("  " + " | ".join(self.rows[-1]), flush=True)

    def add_rounds(
        self,
        backend: str,
        scenario: str,
        rounds: list[Result],
        baseline: float | None,
        note: str = "",
    ) -> float:
        """A load taken in rounds: the median throughput and p50, the median p99 with its range
        over the rounds; returns the median throughput."""
        throughput = statistics.median(r.throughput for r in rounds)
        p99s = [r.percentile(99) for r in rounds]
        p99 = f"{statistics.median(p99s):.1f} ({min(p99s):.1f}–{max(p99s):.1f})"
        self.rows.append(
            (
                backend,
                scenario,
                f"{throughput:,.0f} req/s",
                f"{statistics.median(r.percentile(50) for r in rounds):.1f}",
                p99 if len(rounds) > 1 else f"{p99s[0]:.1f}",
                str(sum(r.errors for r in rounds)),
                f"{throughput / baseline:.2f}" if baseline else "-",
                note,
            )
        )
        print("  " + " | ".join(self.rows[-1]), flush=True)
        return throughput

    def render(self) -> str:
        head = ("backend", "scenario", "throughput", "p50 ms", "p99 ms", "errors", "ratio", "notes")
        widths = [max(len(str(r[i])) for r in [head, *self.rows]) for i in range(len(head))]
        lines = [
            "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        ]
        lines += [
            "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in self.rows
        ]
        return "\n".join(lines)


def heartbeat_body(task_ids: list[int]) -> bytes:
    return orjson.dumps(
        {
            "state": "running",
            "free_ram": 2048,
            "current_assignments": {
                "a": {"id": "a", "tasks": [{"id": i, "frame": 1.0, "attempt": 1} for i in task_ids]}
            },
        }
    )


class Backend:
    def __init__(self, name: str, work: Path, postgres: str | None, redis: str | None) -> None:
        self.name, self.work, self.postgres, self.redis = name, work, postgres, redis
        self.count = 0
        self.databases: list[str] = []

    def _admin(self) -> str:
        from sqlalchemy.engine import make_url

        assert self.postgres
        return (
            make_url(self.postgres)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    def close(self) -> None:
        """Drop the PostgreSQL databases this run created."""
        if not self.databases:
            return
        import psycopg

        with psycopg.connect(self._admin(), autocommit=True) as connection:
            for name in self.databases:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.clear()

    def fresh(self) -> tuple[str, str, dict[str, str]]:
        """A new empty, migrated database and queue; returns (database URL, queue URL, env)."""
        self.count += 1
        data = self.work / f"{self.name}-{self.count}"
        data.mkdir(parents=True)
        if self.postgres:
            import psycopg
            from sqlalchemy.engine import make_url

            name = f"farm_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(self._admin(), autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            self.databases.append(name)
            database = (
                make_url(self.postgres).set(database=name).render_as_string(hide_password=False)
            )
            queue = self.redis or ""
        else:
            database = f"sqlite:///{data / 'farm.db'}"
            queue = f"sqlite:///{data / 'queue.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
        env.update(
            {
                "FARM_DATA_DIR": str(data),
                "FARM_DATABASE_URL": database,
                "FARM_QUEUE_URL": queue,
                "FARM_AGENT_NETWORKS": "127.0.0.0/8",
                # The load comes as PyFarm agents send it: without tokens, from a network the
                # master admits (setting up and reading back act as admin from there too).
                "FARM_ANONYMOUS_NETWORKS": "127.0.0.0/8",
                "FARM_ANONYMOUS_ROLE": "admin",
                # All the load comes from one client (loopback) and the announce scenario
                # creates agents as fast as it can: the create budget would answer 429s.
                "FARM_CREATE_RATE": "0",
                "FARM_LOG_LEVEL": "INFO",
                "PYTHONPATH": str(ROOT / "src"),
            }
        )
        subprocess.run(
            [sys.executable, "-m", "farm_cli.main", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        return database, queue, env


def start_master(
    stack: ExitStack, backend: Backend, env: dict[str, str], port: int, workers: int, log: Path
) -> int:
    """``farm serve`` on the port (and, scaled out, a ``farm worker`` consuming the queue),
    stopped when the stack closes; returns the master's pid."""
    if backend.redis:
        worker = subprocess.Popen(
            [sys.executable, "-m", "farm_cli.main", "worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(worker.wait, 30)
        stack.callback(worker.terminate)
    return stack.enter_context(
        served(
            ["-m", "farm_cli.main", "serve", "--port", str(port), "--workers", str(workers)],
            env,
            log,
            port,
        )
    )


def run_soak(backend: Backend, seconds: float, workers: int, table: Table) -> None:
    """Heartbeats from 10,000 agents at 300/s for ``seconds``: the master's memory at the start
    and the end (it must stay flat)."""
    from farm_adapters.schema_migrations import analyze
    from farm_adapters.sql.engine import create_database_engine

    database, _, env = backend.fresh()
    engine = create_database_engine(database)
    agents = seed.agents(engine, 10000)
    busy = agents[:BUSY]
    seed.tasks(engine, seed.job(engine), len(busy) * 4, owners=busy)
    owned = seed.task_ids_of(engine, busy)
    analyze(engine)
    engine.dispose()
    bodies = {agent: heartbeat_body(owned[agent]) for agent in busy}
    port = free_port()
    rnd = random.Random(7)

    def heartbeat(n: int) -> tuple[str, str, bytes]:
        agent = busy[rnd.randrange(len(busy))]
        return "POST", f"/api/v1/agents/{agent}", bodies[agent]

    with ExitStack() as stack:
        pid = start_master(stack, backend, env, port, workers, backend.work / "soak.log")
        load(port, heartbeat, connections=4, seconds=5)
        start = rss_mb(pid)
        result = load(port, heartbeat, connections=16, seconds=seconds, rate=300)
        table.add(
            backend.name,
            f"soak: 300 heartbeats/s for {seconds / 60:g} min",
            result,
            None,
            note=f"RSS {start:.0f}→{rss_mb(pid):.0f} MB",
        )


def run_hostile(backend: Backend, workers: int, seconds: float, table: Table) -> None:
    """The master's memory before and after hostile input: oversized JSON bodies (413), and
    agents whose every answer is multi-MB or endless (capped at 64 KiB by the master)."""
    _, _, env = backend.fresh()
    env.update(
        {
            # Call every agent at every sweep, as often as the master allows.
            "FARM_WATCH_INTERVAL_SECONDS": "0.2",
            "FARM_POLL_BUSY_SECONDS": "0",
            "FARM_POLL_IDLE_SECONDS": "0",
            "FARM_POLL_OFFLINE_SECONDS": "0",
        }
    )
    port = free_port()
    with ExitStack() as stack:
        pid = start_master(stack, backend, env, port, workers, backend.work / "hostile.log")
        agent_port = stack.enter_context(hostile.fake_agent())
        load(port, lambda n: ("GET", "/api/v1/agents/", None), connections=4, seconds=1)
        before = rss_mb(pid)
        declared = hostile.oversized_bodies(port, 400, chunked=False)
        table.add(
            backend.name,
            "400 JSON bodies of 2 MiB, declared length (413)",
            declared,
            None,
            note=hostile.verdict(before, hostile.settled(lambda: rss_mb(pid))),
        )
        # The server (granian) buffers chunked bodies whether or not the app reads them: the
        # first ones raise its memory once (as much under a bare WSGI app that reads nothing),
        # so the margin is checked over the ones after.
        before = rss_mb(pid)
        hostile.oversized_bodies(port, 100, chunked=True)
        raised = hostile.settled(lambda: rss_mb(pid))
        chunked = hostile.oversized_bodies(port, 400, chunked=True)
        table.add(
            backend.name,
            "100 + 400 chunked JSON bodies of 2 MiB (413)",
            chunked,
            None,
            note=f"first 100: RSS {before:.0f}→{raised:.0f} MB; then "
            + hostile.verdict(raised, hostile.settled(lambda: rss_mb(pid))),
        )
        before = rss_mb(pid)
        calls = hostile.huge_answers(port, agent_port, agents=50, seconds=max(seconds, 10))
        table.add(
            backend.name,
            "50 agents answering 8 MiB or endless bodies",
            None,
            None,
            unit="calls",
            value=calls,
            note=hostile.verdict(before, hostile.settled(lambda: rss_mb(pid))),
        )


ROUNDS = 3
"""Heartbeat loads are taken in this many rounds over all farm sizes, so that a slow spell of
this shared machine falls on every size alike and the ratios between sizes stay fair."""


@dataclass
class Target:
    """A server under the heartbeat load: its fleet of agents and the ledger of what was sent."""

    backend: str
    scenario: str
    port: int
    fleet: Fleet
    ledger: Ledger = field(default_factory=Ledger)
    realistic: list[Result] = field(default_factory=list)
    unchanged: list[Result] = field(default_factory=list)
    idle: list[Result] = field(default_factory=list)
    checked: bool = False  # farm's agents are read back after the load

    def realistic_load(self, seed: int, seconds: float, rate: float | None = None) -> Result:
        beats = Heartbeats(self.fleet, self.ledger, seed)
        return load(
            self.port, beats, connections=16, seconds=seconds, rate=rate, answered=beats.answered
        )

    def idle_load(self, seed: int, seconds: float) -> Result:
        beats = Heartbeats(self.fleet, self.ledger, seed, idle=True)
        return load(self.port, beats, connections=16, seconds=seconds, answered=beats.answered)

    def unchanged_load(self, seed: int, seconds: float) -> Result:
        beats = Heartbeats(self.fleet, self.ledger, seed, changing=False)
        return load(self.port, beats, connections=16, seconds=seconds, answered=beats.answered)


def farm_target(
    stack: ExitStack, backend: Backend, agents: int, workers: int
) -> tuple[Target, int]:
    """A farm with ``agents`` registered, three in ten busy with their tasks, served; returns the
    target and the master's pid."""
    from farm_adapters.schema_migrations import analyze
    from farm_adapters.sql.engine import create_database_engine

    database, _queue, env = backend.fresh()
    engine = create_database_engine(database)
    print(f"[{backend.name}] seeding {agents:,} agents ...", flush=True)
    ids = seed.agents(engine, agents)
    busy = running_share(ids)
    seed.tasks(
        engine,
        seed.job(engine),
        len(busy) * TASKS_PER_RUNNING,
        owners=busy,
        per_owner=TASKS_PER_RUNNING,
    )
    seed.set_state(engine, busy, "running")
    owned = seed.task_ids_of(engine, busy)
    analyze(engine)
    engine.dispose()
    port = free_port()
    pid = start_master(stack, backend, env, port, workers, backend.work / "heartbeats.log")
    target = Target(backend.name, "farm serve", port, Fleet(ids, owned), checked=True)
    return target, pid


def pyfarm_target(stack: ExitStack, work: Path, agents: int, workers: int) -> Target | None:
    """PyFarm master 0.8.5 with ``agents`` registered through its API, or None (said why)."""
    try:
        python = pyfarm.build(CACHE)
        home = python.parent.parent.parent
        data = work / "pyfarm"
        data.mkdir()
        env = pyfarm.environment(home, data)
        pyfarm.create_tables(python, env)
        port = free_port()
        log = work / "pyfarm.log"
        out = stack.enter_context(log.open("wb"))
        process = subprocess.Popen(
            pyfarm.server_command(python, port, workers),
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        stack.callback(process.wait, 30)
        stack.callback(process.terminate)
        wait_port(port, process)
        print(f"[pyfarm] registering {agents:,} agents through its API ...", flush=True)
        ids = pyfarm.register(port, agents)
        fleet = pyfarm.give_tasks(python, env, home, ids)
    except (pyfarm.Unavailable, SystemExit) as error:
        print(f"skipping PyFarm master {pyfarm.VERSION}: {error}", flush=True)
        return None
    return Target("pyfarm", f"PyFarm {pyfarm.VERSION}, gunicorn, SQLite", port, fleet)


def run_heartbeats(
    work: Path,
    backends: list[Backend],
    agents: int,
    seconds: float,
    workers: int,
    table: Table,
    *,
    with_pyfarm: bool,
) -> float:
    """The heartbeat scenarios: every server is started first, then the loads are taken in
    rounds over all of them (so that a slow spell of this shared machine falls on each alike);
    returns the bare-Falcon baseline's median throughput."""
    with ExitStack() as stack:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
        baseline_cmd = [
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--workers",
            str(workers),
            "--port",
            str(port),
            "--no-ws",
            "bench.baseline:app",
        ]
        stack.enter_context(served(baseline_cmd, env, work / "baseline.log", port))
        front_port = free_port()
        front_cmd = [
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--loop",
            "auto",
            "--workers",
            str(workers),
            "--port",
            str(front_port),
            "--no-ws",
            "bench.baseline:front",
        ]
        stack.enter_context(served(front_cmd, env, work / "front.log", front_port))
        synthetic = [uuid.UUID(int=n + 1) for n in range(agents)]
        busy = running_share(synthetic)
        synthetic_fleet = Fleet(
            synthetic, {a: list(range(4 * n, 4 * n + 4)) for n, a in enumerate(busy)}
        )
        baseline = Target("-", "bare Falcon", port, synthetic_fleet)
        front = Target("-", "bare Falcon behind farm's front", front_port, synthetic_fleet)
        targets = [baseline, front]
        pids: dict[str, int] = {}
        for backend in backends:
            target, pids[backend.name] = farm_target(stack, backend, agents, workers)
            targets.append(target)
        reference = pyfarm_target(stack, work, agents, workers) if with_pyfarm else None
        if reference is not None:
            targets.append(reference)
        farms = [t for t in targets if t.checked]
        start_rss = {}
        for target in targets:  # warm up
            target.realistic_load(0, 1)
        for name, pid in pids.items():
            start_rss[name] = rss_mb(pid)
        for round_ in range(ROUNDS):
            print(f"heartbeats: round {round_ + 1} of {ROUNDS} ...", flush=True)
            for target in targets:
                target.realistic.append(target.realistic_load(100 + round_, seconds))
            for target in targets:
                target.idle.append(target.idle_load(400 + round_, seconds))
            for target in farms:
                target.unchanged.append(target.unchanged_load(200 + round_, seconds))
        paced = {t.backend: t.realistic_load(300, seconds, rate=300) for t in targets[2:]}
        losses = {t.backend: check(t.port, t.ledger) for t in farms}

        running = len(busy)
        base = table.add_rounds(
            "-",
            "baseline: bare Falcon parsing realistic heartbeats",
            baseline.realistic,
            target_rate(baseline),
            note=f"granian, {workers} workers, {ROUNDS} rounds",
        )
        stack_limit = table.add_rounds(
            "-",
            "baseline: the same behind farm's front (ASGI, a pool of threads)",
            front.realistic,
            base,
            note=f"granian, {workers} workers, {ROUNDS} rounds",
        )
        idle_base = statistics.median(r.throughput for r in baseline.idle)
        pyfarm_rate = pyfarm_idle = None
        if reference is not None:
            pyfarm_rate = table.add_rounds(
                "pyfarm",
                f"PyFarm {pyfarm.VERSION}: realistic heartbeats, {agents:,} agents",
                reference.realistic,
                base,
                note=f"gunicorn -w {workers}, SQLite, {ROUNDS} rounds",
            )
            pyfarm_idle = table.add_rounds(
                "pyfarm",
                f"PyFarm {pyfarm.VERSION}: idle agents' heartbeats (online, no assignments)",
                reference.idle,
                idle_base,
                note=f"gunicorn -w {workers}, SQLite, {ROUNDS} rounds",
            )
        for target in farms:
            loss = losses[target.backend]
            versus = f"{target_rate(target) / pyfarm_rate:.1f}× PyFarm, " if pyfarm_rate else ""
            versus += f"{target_rate(target) / stack_limit:.2f} of the front's, "
            table.add_rounds(
                target.backend,
                f"realistic heartbeats, {agents:,} agents",
                target.realistic,
                base,
                note=f"{versus}{loss.summary()}, RSS {start_rss[target.backend]:.0f}→"
                f"{rss_mb(pids[target.backend]):.0f} MB",
            )
            idle_rate = statistics.median(r.throughput for r in target.idle)
            table.add_rounds(
                target.backend,
                "idle agents' heartbeats (online, no assignments)",
                target.idle,
                idle_base,
                note=(f"{idle_rate / pyfarm_idle:.1f}× PyFarm, " if pyfarm_idle else "")
                + f"{ROUNDS} rounds",
            )
            table.add_rounds(
                target.backend,
                f"unchanged bodies, {running:,} running agents",
                target.unchanged,
                base,
                note=f"{ROUNDS} rounds",
            )
        for target in targets[2:]:
            table.add(
                target.backend,
                "realistic heartbeats at 300/s",
                paced[target.backend],
                None,
                note="open loop",
            )
        for target in farms:
            for agent, why in list(losses[target.backend].lost.items())[:5]:
                print(f"  lost on {target.backend}: agent {agent}: {why}")
        return base


def target_rate(target: Target) -> float:
    return statistics.median(r.throughput for r in target.realistic)


def run_http(
    backend: Backend, sizes: list[int], seconds: float, workers: int, table: Table, baseline: float
) -> None:
    from farm_adapters.schema_migrations import analyze
    from farm_adapters.sql.engine import create_database_engine

    with ExitStack() as stack:
        farms = []
        for size in sizes:
            database, _queue, env = backend.fresh()
            engine = create_database_engine(database)
            print(f"[{backend.name}] seeding {size:,} agents ...", flush=True)
            agents = seed.agents(engine, size)
            busy = agents[: min(BUSY, size)]
            job_id = seed.job(engine)
            seed.tasks(engine, job_id, len(busy) * 4, owners=busy)
            owned = seed.task_ids_of(engine, busy)
            analyze(engine)  # as `farm db upgrade` and `farm serve` do on a running farm
            engine.dispose()
            bodies = {agent: heartbeat_body(owned[agent]) for agent in busy}
            port = free_port()
            pid = start_master(
                stack, backend, env, port, workers, backend.work / f"serve-{size}.log"
            )
            farms.append((size, port, pid, agents, busy, bodies))

        def heartbeats(
            busy: list[uuid.UUID], bodies: dict[uuid.UUID, bytes], rnd: random.Random
        ) -> Callable[[int], tuple[str, str, bytes]]:
            def make(n: int) -> tuple[str, str, bytes]:
                agent = busy[rnd.randrange(len(busy))]
                return "POST", f"/api/v1/agents/{agent}", bodies[agent]

            return make

        results = {size: Result() for size in sizes}
        start_rss = {}
        for size, port, pid, _, busy, bodies in farms:
            load(
                port, heartbeats(busy, bodies, random.Random(size)), connections=4, seconds=1
            )  # warm up
            start_rss[size] = rss_mb(pid)
        for round_ in range(ROUNDS):
            for size, port, _, _, busy, bodies in farms:
                part = load(
                    port,
                    heartbeats(busy, bodies, random.Random(size + round_)),
                    connections=16,
                    seconds=seconds / ROUNDS,
                )
                merged = results[size]
                merged.latencies += part.latencies
                merged.errors += part.errors
                merged.seconds += part.seconds
        for size, _, pid, _, _, _ in farms:
            table.add(
                backend.name,
                f"unchanged heartbeats, {size:,} agents",
                results[size],
                baseline,
                note=f"RSS {start_rss[size]:.0f}→{rss_mb(pid):.0f} MB, {ROUNDS} rounds",
            )

        size, port, _, agents, busy, bodies = farms[min(1, len(farms) - 1)]
        rnd = random.Random(size)
        paced = load(port, heartbeats(busy, bodies, rnd), connections=16, seconds=seconds, rate=300)
        table.add(
            backend.name,
            f"unchanged heartbeats at 300/s, {size:,} agents",
            paced,
            None,
            note="open loop",
        )
        known = agents[rnd.randrange(len(agents))]

        def announce(n: int) -> tuple[str, str, bytes]:
            agent = uuid.uuid4() if n % 2 else known
            return (
                "POST",
                "/api/v1/agents/",
                orjson.dumps(
                    {
                        "id": str(agent),
                        "hostname": f"new{n}",
                        "ram": 8192,
                        "free_ram": 4096,
                        "cpus": 8,
                        "port": 50000,
                        "state": "online",
                        "current_assignments": {},
                    }
                ),
            )

        table.add(
            backend.name,
            "announces, half new half known",
            load(port, announce, connections=16, seconds=seconds),
            baseline,
        )

        size, port, _, _, _, _ = farms[-1]

        def listing(n: int) -> tuple[str, str, None]:
            return "GET", "/api/v1/agents/?min_ram=63000&min_cpus=30", None

        rows = sum(1 for n in range(size) if 1024 * (1 + n % 64) >= 63000 and 1 + n % 32 >= 30)
        # One client: the latency of a listing; four: what sharing costs.
        for clients in (1, 4):
            result = load(port, listing, connections=clients, seconds=seconds)
            table.add(
                backend.name,
                f"list with a filter, {size:,} agents, {clients} client"
                + ("s" if clients > 1 else ""),
                result,
                None,
                note=f"{rows:,} rows each",
            )


def run_in_process(backend: Backend, table: Table, reconcile_sizes: list[int]) -> None:
    from farm_adapters.composition import build_runtime
    from farm_adapters.settings import Settings
    from farm_adapters.sql.engine import create_database_engine
    from farm_domain.agents import AgentChanges
    from tests.support.fakes.collaborators import RecordingQueue, ScriptedAgentClient

    # Scheduling: 1,200 idle agents, 6,000 queued tasks (OpenCue's stress-test shape).
    database, _, env = backend.fresh()
    engine = create_database_engine(database)
    seed.agents(engine, 1200)
    for n in range(5):
        seed.tasks(engine, seed.job(engine, f"job{n}"), 1200)
    engine.dispose()
    settings = Settings.load({**env, "FARM_QUEUE_URL": "immediate"})
    runtime = build_runtime(settings, queue=RecordingQueue(), client=ScriptedAgentClient())
    began = time.perf_counter()
    given = runtime.dispatcher.assign_tasks()
    seconds = time.perf_counter() - began
    runtime.close()
    table.add(
        backend.name,
        "scheduling 6,000 tasks to 1,200 agents",
        None,
        None,
        unit="tasks/s",
        value=given * 5 / seconds,
        note=f"{given} batches of 5 in {seconds:.1f}s",
    )

    # Reconciliation: one agent's heartbeat as the farm's task count grows. Every size's farm
    # is built first, then they are measured in turns (ROUNDS), so drift hits all alike.
    farms = []
    for total in reconcile_sizes:
        database, _, env = backend.fresh()
        engine = create_database_engine(database)
        agents = seed.agents(engine, 100)
        job_id = seed.job(engine)
        seed.tasks(engine, job_id, total, owners=agents, done=True)
        owned = seed.task_ids_of(engine, agents[:1])[agents[0]]
        engine.dispose()
        runtime = build_runtime(
            Settings.load({**env, "FARM_QUEUE_URL": "immediate"}),
            queue=RecordingQueue(),
            client=ScriptedAgentClient(),
        )
        changes = AgentChanges(
            state="running",
            reported_task_ids=frozenset(owned),
            reported_attempts={i: 1 for i in owned},
        )
        farms.append((total, runtime, agents[0], changes))
    timings: dict[int, list[float]] = {total: [] for total in reconcile_sizes}
    for _ in range(ROUNDS):
        for total, runtime, agent_id, changes in farms:
            for _ in range(300 // ROUNDS):
                began = time.perf_counter()
                runtime.farm.agents.update(ADMIN, agent_id, changes)
                timings[total].append(time.perf_counter() - began)
    first = statistics.median(timings[reconcile_sizes[0]])
    for total, runtime, _, _ in farms:
        runtime.close()
        per_op = statistics.median(timings[total])
        table.add(
            backend.name,
            f"reconcile one heartbeat, {total:,} tasks",
            None,
            None,
            unit="ops/s",
            value=1 / per_op,
            ratio=first / per_op,
            note=f"median {per_op * 1000:.2f} ms (ratio vs {reconcile_sizes[0]:,})",
        )


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and shorter loads (a few minutes)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="length of each load (each round's)"
    )
    parser.add_argument("--workers", type=int, default=2, help="WSGI workers (default 2)")
    parser.add_argument(
        "--agents",
        type=int,
        default=10000,
        help="registered agents in the heartbeat scenarios (default 10,000)",
    )
    parser.add_argument(
        "--only-heartbeats",
        action="store_true",
        help="run the heartbeat scenarios alone (realistic, unchanged, paced, PyFarm)",
    )
    parser.add_argument(
        "--no-pyfarm",
        action="store_true",
        help=f"leave out the PyFarm master {pyfarm.VERSION} comparison",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0,
        help="also run a heartbeat soak this many seconds long (600: ten "
        "minutes) and report the master's memory at its start and end",
    )
    parser.add_argument("--only-soak", action="store_true", help="run the soak alone")
    parser.add_argument(
        "--only-hostile",
        action="store_true",
        help="run the hostile-input rows alone (memory after oversized bodies and huge answers)",
    )
    parser.add_argument(
        "--backends",
        default="embedded,postgres",
        help="embedded and/or postgres (PostgreSQL + Redis, when reachable)",
    )
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    sizes = [1000, 10000] if args.quick else [1000, 10000, 100000]
    reconcile_sizes = [10000, 100000] if args.quick else [10000, 100000, 1000000]
    postgres = os.environ.get("FARM_BENCH_POSTGRES_URL") or os.environ.get("FARM_TEST_POSTGRES_URL")
    redis = os.environ.get("FARM_BENCH_REDIS_URL") or os.environ.get("FARM_TEST_REDIS_URL")
    sys.path.insert(0, str(ROOT))
    table = Table()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    names = []
    for name in args.backends.split(","):
        if name == "postgres" and not (postgres and redis):
            print("skipping postgres: set FARM_BENCH_POSTGRES_URL and FARM_BENCH_REDIS_URL")
            continue
        names.append(name)
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as work, ExitStack() as backends:
        work_dir = Path(work)
        chosen = [
            backends.enter_context(
                closing(
                    Backend(
                        name,
                        work_dir,
                        postgres if name == "postgres" else None,
                        redis if name == "postgres" else None,
                    )
                )
            )
            for name in names
        ]
        if args.only_soak or args.only_hostile:
            for backend in chosen:
                if args.only_hostile:
                    run_hostile(backend, args.workers, seconds, table)
                else:
                    run_soak(backend, args.soak or 600, args.workers, table)
        else:
            base = run_heartbeats(
                work_dir,
                chosen,
                args.agents,
                seconds,
                args.workers,
                table,
                with_pyfarm=not args.no_pyfarm,
            )
            for backend in [] if args.only_heartbeats else chosen:
                run_http(backend, sizes, seconds, args.workers, table, base)
                run_in_process(backend, table, reconcile_sizes)
                run_hostile(backend, args.workers, seconds, table)
                if args.soak:
                    run_soak(backend, args.soak, args.workers, table)
    print()
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
