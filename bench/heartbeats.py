"""Heartbeats as real agents send them, and the check that none was lost.

A real agent's heartbeat carries its current ``free_ram``, which moves every time; idle agents
report ``online`` (which asks the queue for work), busy ones ``running``, each with or without its
``current_assignments``. :class:`Heartbeats` makes that traffic over a :class:`Fleet` (a random
agent each time, never one that already has a heartbeat in flight, so that "the last heartbeat"
of an agent is well defined) and keeps a :class:`Ledger` of the last heartbeat each agent was
answered for; :func:`check` then reads every agent back through the API and compares.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bench.load import Request, load

RUNNING_EVERY = 10
RUNNING_OF_EVERY = 3
"""Three agents in ten are busy with tasks (``running``); the rest are idle (``online``)."""
TASKS_PER_RUNNING = 4
CLOCK_SLACK = timedelta(milliseconds=2)
"""``last_heard_from`` is taken by the server between the send and the answer, on the same clock;
this covers the rounding of the rendered timestamp."""


def running_share(agents: list[uuid.UUID]) -> list[uuid.UUID]:
    """The agents of a fleet that are busy: three in ten, spread over the fleet."""
    return [a for n, a in enumerate(agents) if n % RUNNING_EVERY < RUNNING_OF_EVERY]


def assignments(task_ids: list[int]) -> dict[str, Any]:
    """``current_assignments`` as a PyFarm agent reports its one assignment."""
    return {"a": {"id": "a", "tasks": [{"id": i, "frame": 1.0, "attempt": 1} for i in task_ids]}}


@dataclass(frozen=True)
class Fleet:
    """The registered agents of one server, and the tasks each busy one really has."""

    agents: list[uuid.UUID]
    tasks: dict[uuid.UUID, list[int]]
    remote_ip: str = "127.0.0.1"

    @property
    def running(self) -> list[uuid.UUID]:
        return [a for a in self.agents if a in self.tasks]


@dataclass
class Sent:
    free_ram: int
    sent_at: float  # wall clock, seconds
    answered_at: float


@dataclass
class Ledger:
    """The last heartbeat each agent was answered for (2xx); an agent whose heartbeat was
    refused or failed is set aside, since what the server kept of it is unknown."""

    last: dict[uuid.UUID, Sent] = field(default_factory=dict)
    uncertain: set[uuid.UUID] = field(default_factory=set)
    heartbeats: int = 0
    answered: dict[uuid.UUID, list[Sent]] = field(default_factory=dict)
    """Every answered heartbeat of each agent, oldest first: what a lost one is told apart by."""

    def record(self, agent: uuid.UUID, free_ram: int, status: int, sent: float, got: float) -> None:
        self.heartbeats += 1
        if status < 300:
            self.last[agent] = Sent(free_ram, sent, got)
            self.answered.setdefault(agent, []).append(self.last[agent])
            self.uncertain.discard(agent)
        else:
            self.last.pop(agent, None)
            self.uncertain.add(agent)


class Heartbeats:
    """A request maker for :func:`bench.load.load`: each call picks a random agent of the fleet
    with no heartbeat in flight. ``changing``: a fresh ``free_ram`` every time and states mixed
    (the realistic load); otherwise the busy agents alone, each sending one unchanging body.
    ``idle``: the idle agents alone, ``online`` with a fresh ``free_ram`` and no
    ``current_assignments`` (the load issue #14 measured PyFarm with)."""

    def __init__(
        self, fleet: Fleet, ledger: Ledger, seed: int, *, changing: bool = True, idle: bool = False
    ):
        self.fleet, self.ledger, self.changing, self.idle = fleet, ledger, changing, idle
        self.rnd = random.Random(seed)
        if idle:  # the idle agents alone, as the issue measured PyFarm: online, no assignments
            self.pool = [a for a in fleet.agents if a not in fleet.tasks]
        else:
            self.pool = fleet.agents if changing else fleet.running
        self.in_flight: dict[int, tuple[uuid.UUID, int]] = {}
        self.busy: set[uuid.UUID] = set()
        self.ram: dict[uuid.UUID, int] = {}

    def body(self, agent: uuid.UUID) -> tuple[dict[str, Any], int]:
        tasks = self.fleet.tasks.get(agent)
        if not self.changing:
            assert tasks is not None
            return {
                "state": "running",
                "free_ram": 2048,
                "current_assignments": assignments(tasks),
            }, 2048
        free_ram = self.rnd.randrange(512, 65536)
        if free_ram == self.ram.get(agent):
            free_ram += 1
        self.ram[agent] = free_ram
        body: dict[str, Any] = {
            "state": "running" if tasks is not None else "online",
            "free_ram": free_ram,
            "remote_ip": self.fleet.remote_ip,
        }
        if not self.idle and self.rnd.random() < 0.5:  # half carry the agent's assignments
            body["current_assignments"] = assignments(tasks) if tasks is not None else {}
        return body, free_ram

    def __call__(self, number: int) -> Request:
        if len(self.busy) >= len(self.pool):
            raise RuntimeError("every agent has a heartbeat in flight: pass answered=")
        while True:
            agent = self.pool[self.rnd.randrange(len(self.pool))]
            if agent not in self.busy:
                break
        body, free_ram = self.body(agent)
        self.busy.add(agent)
        self.in_flight[number] = (agent, free_ram)
        return "POST", f"/api/v1/agents/{agent}", orjson.dumps(body)

    def answered(self, number: int, status: int, _body: bytes, sent: float, got: float) -> None:
        agent, free_ram = self.in_flight.pop(number)
        self.busy.discard(agent)
        self.ledger.record(agent, free_ram, status, sent, got)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def compare(sent: Sent, seen: dict[str, Any]) -> str | None:
    """Why the agent as the API shows it is not the one its last heartbeat left, or None."""
    if seen.get("free_ram") != sent.free_ram:
        return f"free_ram {seen.get('free_ram')!r}, last sent {sent.free_ram}"
    heard = _instant(seen.get("last_heard_from"))
    earliest = datetime.fromtimestamp(sent.sent_at, UTC) - CLOCK_SLACK
    latest = datetime.fromtimestamp(sent.answered_at, UTC) + CLOCK_SLACK
    if heard is None or not earliest <= heard <= latest:
        return (
            f"last_heard_from {seen.get('last_heard_from')!r}, last heartbeat sent "
            f"{earliest.isoformat()}..{latest.isoformat()}"
        )
    return None


def _which(answered: list[Sent], seen: dict[str, Any]) -> str:
    """Which of the agent's answered heartbeats the stored ``free_ram`` is: an older one that
    won over the last (an ordering fault), or none of them (a value written by something else)."""
    for back, sent in enumerate(reversed(answered)):
        if back and sent.free_ram == seen.get("free_ram"):
            return (
                f" (that of its heartbeat {back} before the last, of {len(answered)} answered;"
                f" sent {sent.sent_at:.3f}, answered {sent.answered_at:.3f}; the last sent"
                f" {answered[-1].sent_at:.3f}; stored heard {seen.get('last_heard_from')})"
            )
    return f" (none of its {len(answered)} answered heartbeats sent that)"


@dataclass
class Loss:
    checked: int
    lost: dict[uuid.UUID, str]
    uncertain: int

    def summary(self) -> str:
        text = f"{len(self.lost):,} lost of {self.checked:,}"
        if self.uncertain:
            text += f" ({self.uncertain:,} refused, not checked)"
        return text


def _read_back(port: int, agents: list[uuid.UUID], seen: dict[uuid.UUID, dict[str, Any]]) -> None:
    def make(number: int) -> Request:
        return "GET", f"/api/v1/agents/{agents[number - 1]}", None

    def answered(number: int, status: int, body: bytes, _sent: float, _got: float) -> None:
        seen[agents[number - 1]] = orjson.loads(body) if status == 200 else {"status": status}

    load(port, make, connections=8, seconds=600, limit=len(agents), answered=answered)


def check(
    port: int,
    ledger: Ledger,
    *,
    patience: float = 5.0,
    read_back: Callable[[int, list[uuid.UUID], dict[uuid.UUID, dict[str, Any]]], None]
    | None = None,
) -> Loss:
    """Read every agent of the ledger back and compare it with its last heartbeat. The master may
    write soft state in batches, so the agents that differ are read again for ``patience``
    seconds before they count as lost."""
    read = read_back or _read_back
    pending = list(ledger.last)
    lost: dict[uuid.UUID, str] = {}
    deadline = time.monotonic() + patience
    while True:
        seen: dict[uuid.UUID, dict[str, Any]] = {}
        read(port, pending, seen)
        lost = {}
        for agent in pending:
            why = compare(ledger.last[agent], seen.get(agent, {}))
            if why is not None:
                lost[agent] = why + _which(ledger.answered.get(agent, []), seen.get(agent, {}))
        if not lost or time.monotonic() >= deadline:
            break
        pending = list(lost)
        time.sleep(0.5)
    return Loss(checked=len(ledger.last), lost=lost, uncertain=len(ledger.uncertain))
