"""PyFarm master 0.8.5, the program farm replaces, served beside farm in the same run.

It is built in a virtual environment of its own under ``.bench-cache/`` (kept between runs) from
the package registry: Python 3.11 and the releases of its time that it runs on, gunicorn with two
sync workers, SQLite, Celery with the in-memory broker (its queue jobs are published and never
consumed, so nothing is ever sent to an agent). Where it cannot be built the comparison is
skipped with the reason.

Two things are done to run it at all, neither on the path a heartbeat measures: the sdist lacks
``pyfarm/master/etc/master.yml``, which its setup.py installs (an empty one is written), and
netaddr counts loopback as "reserved", which defeats PyFarm's own
``PYFARM_DEV_ALLOW_AGENT_LOOPBACK_ADDRESSES`` switch (the app is loaded through a shim that makes
``is_reserved`` false for loopback, so the agents can report 127.0.0.1 as farm's do).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import orjson

from bench.heartbeats import (
    RUNNING_EVERY,
    RUNNING_OF_EVERY,
    TASKS_PER_RUNNING,
    Fleet,
    running_share,
)
from bench.load import Request, load

VERSION = "0.8.5"
PINS = [
    "pyfarm.core==0.9.3",
    "Flask==0.12.5",
    "Werkzeug==0.16.1",
    "SQLAlchemy==1.2.19",
    "Flask-SQLAlchemy==2.1",
    "Flask-Login==0.2.11",
    # Flask 0.12 imports itsdangerous' json (gone in 2.1), Jinja2 2 needs MarkupSafe's
    # soft_unicode (gone in 2.1), PyFarm's setup page imports wtforms.TextField (gone in 3).
    "itsdangerous==0.24",
    "Jinja2==2.11.3",
    "MarkupSafe==1.1.1",
    "WTForms==2.3.3",
    "netaddr==0.7.19",
    "celery>=5.3,<6",
    "gunicorn>=21",
]
BUILD_PINS = ["setuptools<70", "wheel"]
"""Built without isolation by a setuptools that still names the dist-info ``pyfarm.master``:
PyFarm's configuration looks itself up with ``pkg_resources.get_distribution("pyfarm.master")``."""

SHIM = '''\
"""Loads PyFarm master for gunicorn; netaddr counts loopback as reserved, which defeats
PYFARM_DEV_ALLOW_AGENT_LOOPBACK_ADDRESSES: let that switch work as PyFarm meant."""
import netaddr

_reserved = netaddr.IPAddress.is_reserved
netaddr.IPAddress.is_reserved = lambda self: not self.is_loopback() and _reserved(self)

from pyfarm.master.entrypoints import create_app  # noqa: E402

app = create_app()
'''

SEED = '''\
"""Gives each busy agent its tasks, as PyFarm's scheduler would have: prints {agent: [task ids]}."""
import json, sys, uuid
import shim  # noqa: F401  (the app, configured from the environment)
from pyfarm.core.enums import WorkState
from pyfarm.master.application import db
from pyfarm.models.job import Job
from pyfarm.models.jobtype import JobType, JobTypeVersion
from pyfarm.models.task import Task

per_agent = int(sys.argv[1])
agents = [uuid.UUID(line) for line in sys.stdin.read().split()]
jobtype = JobType(name="bench", description="bench")
version = JobTypeVersion(jobtype=jobtype, version=1, code="pass", classname="Bench")
job = Job(title="bench", jobtype_version=version, batch=per_agent, requeue=3)
db.session.add_all([jobtype, version, job])
tasks = {}
for n, agent in enumerate(agents):
    for k in range(per_agent):
        task = Task(job=job, frame=n * per_agent + k + 1, attempts=0, failures=0)
        task.agent_id = agent  # counts the attempt
        task.state = WorkState.RUNNING
        task.sent_to_agent = True
        db.session.add(task)
        tasks.setdefault(str(agent), []).append(task)
db.session.commit()
print(json.dumps({a: [t.id for t in ts] for a, ts in tasks.items()}))
'''


class Unavailable(Exception):
    """PyFarm master cannot be built or started here; the message says why."""


def _run(
    args: list[str], what: str, env: dict[str, str] | None = None, timeout: float = 900
) -> str:
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"{what}: {error}") from error
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise Unavailable(f"{what} failed: {' / '.join(tail)}")
    return done.stdout


def python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if found is None:
        raise Unavailable("PyFarm master needs Python 3.11 (no python3.11 on PATH)")
    return found


def build(cache: Path) -> Path:
    """The environment's Python, building the environment first if it is not there."""
    recipe = hashlib.sha256("\n".join([VERSION, *PINS, *BUILD_PINS, SHIM]).encode()).hexdigest()
    home = cache.resolve() / f"pyfarm-{VERSION}"
    python = home / "venv" / "bin" / "python"
    if (home / "built").exists() and (home / "built").read_text() == recipe:
        return python
    print(f"building PyFarm master {VERSION} in {home} (once) ...", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    _run([python311(), "-m", "venv", str(home / "venv")], "creating its virtualenv")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-build-isolation"]
    _run([str(python), "-m", "pip", "install", "--quiet", *BUILD_PINS], "installing setuptools")
    _run([*pip, *PINS], "installing its dependencies")
    _run(
        [
            str(python),
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(home),
            f"pyfarm.master=={VERSION}",
        ],
        f"downloading pyfarm.master {VERSION}",
    )
    archive = home / f"pyfarm.master-{VERSION}.tar.gz"
    if not archive.exists():
        raise Unavailable(f"the registry gave no {archive.name}")
    with tarfile.open(archive) as tar:
        tar.extractall(home, filter="data")
    source = home / f"pyfarm.master-{VERSION}"
    etc = source / "pyfarm" / "master" / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "master.yml").touch()  # named by its setup.py, missing from the sdist
    _run([*pip, *PINS, str(source)], f"installing pyfarm.master {VERSION}")
    (home / "shim.py").write_text(SHIM)
    (home / "seed.py").write_text(SEED)
    (home / "built").write_text(recipe)
    return python


def environment(home: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYFARM_", "FARM_"))}
    env.update(
        {
            "PYFARM_CONFIG": "prod",
            "PYFARM_SECRET_KEY": uuid.uuid4().hex,
            "PYFARM_DATABASE_URI": f"sqlite:///{data / 'pyfarm.sqlite'}",
            "PYFARM_SCHEDULER_BROKER": "memory://",
            "PYFARM_LOGIN_DISABLED": "True",
            "PYFARM_JSON_PRETTY": "False",
            "PYFARM_DEV_ALLOW_AGENT_LOOPBACK_ADDRESSES": "true",
            "PYTHONPATH": str(home),
            "PYTHONWARNINGS": "ignore",
            "HOME": str(data),  # its configuration loader writes under ~ and /tmp
        }
    )
    return env


def create_tables(python: Path, env: dict[str, str]) -> None:
    _run([str(python.parent / "pyfarm-tables")], "creating PyFarm's tables", env=env)


def server_command(python: Path, port: int, workers: int) -> list[str]:
    return [
        str(python.parent / "gunicorn"),
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "shim:app",
    ]


def register(port: int, count: int) -> list[uuid.UUID]:
    """Announces ``count`` agents through PyFarm's own API (``POST /api/v1/agents/``)."""
    agents = [uuid.UUID(int=n + 1) for n in range(count)]

    def announce(number: int) -> Request:
        n = number - 1
        body = {
            "id": str(agents[n]),
            "hostname": f"node{n:06d}",
            "ram": 1024 * (1 + n % 64),
            "free_ram": 4096,
            "cpus": 1 + n % 32,
            "port": 50000,
            "state": "running" if n % RUNNING_EVERY < RUNNING_OF_EVERY else "online",
            "remote_ip": "127.0.0.1",
        }
        return "POST", "/api/v1/agents/", orjson.dumps(body)

    result = load(port, announce, connections=16, seconds=900, limit=count)
    if result.errors or len(result.latencies) != count:
        raise Unavailable(
            f"registering {count:,} agents: {result.errors} errors, "
            f"{len(result.latencies):,} answered"
        )
    return agents


def give_tasks(python: Path, env: dict[str, str], home: Path, agents: list[uuid.UUID]) -> Fleet:
    busy = running_share(agents)
    try:
        done = subprocess.run(
            [str(python), str(home / "seed.py"), str(TASKS_PER_RUNNING)],
            input="\n".join(str(a) for a in busy),
            capture_output=True,
            text=True,
            env=env,
            cwd=home,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"seeding PyFarm's tasks: {error}") from error
    if done.returncode != 0:
        raise Unavailable(f"seeding PyFarm's tasks: {done.stderr.strip().splitlines()[-1:]}")
    owned: dict[str, list[int]] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return Fleet(agents, {uuid.UUID(a): ids for a, ids in owned.items()})
