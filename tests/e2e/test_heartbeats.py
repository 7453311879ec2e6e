"""Heartbeats as real agents send them, on a real ``farm serve`` whose web workers write soft
state in batches: none is lost, and none outlives the worker that took it."""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from tests.support.processes import Master, StartMaster

AGENTS = 20
HEARTBEATS = 10
FLUSH_SECONDS = 0.5


def announce(master: Master, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with master.api() as api:
        for n, agent_id in enumerate(ids):
            body = {
                "id": agent_id,
                "hostname": f"node{n}",
                "ram": 4096,
                "free_ram": 1,
                "cpus": 4,
                "port": 50000 + n,
            }
            assert api.post("/agents/", json=body).status_code == 201
    return ids


def send_heartbeats(master: Master, ids: list[str]) -> dict[str, dict[str, object]]:
    """HEARTBEATS from each agent, interleaved over several connections (so over both web
    workers); returns each agent's last answer."""
    rnd = random.Random(14)
    rounds = [
        [(agent_id, rnd.randrange(1, 1 << 20)) for agent_id in ids] for _ in range(HEARTBEATS)
    ]
    last: dict[str, dict[str, object]] = {}

    def beat(agent_id: str, free_ram: int, api: httpx.Client) -> None:
        answer = api.post(
            f"/agents/{agent_id}",
            json={"state": "online", "free_ram": free_ram, "remote_ip": "127.0.0.1"},
        )
        assert answer.status_code == 200, answer.text
        last[agent_id] = answer.json()

    clients = [master.api() for _ in range(4)]
    try:
        for beats in rounds:  # an agent's heartbeats follow each other, as a real one's do
            with ThreadPoolExecutor(len(clients)) as pool:
                sent = [
                    pool.submit(beat, agent_id, free_ram, clients[n % len(clients)])
                    for n, (agent_id, free_ram) in enumerate(beats)
                ]
            for future in sent:
                future.result()
            assert all(last[agent_id]["free_ram"] == free for agent_id, free in beats)
    finally:
        for client in clients:
            client.close()
    return last


def as_seen(master: Master, ids: list[str]) -> dict[str, tuple[object, object]]:
    with master.api() as api:
        return {
            agent_id: (agent["free_ram"], agent["last_heard_from"])
            for agent_id in ids
            for agent in [api.get(f"/agents/{agent_id}").json()]
        }


def test_no_heartbeat_is_lost_and_the_api_catches_up_within_the_flush_interval(
    start_master: StartMaster, backend: dict[str, str]
) -> None:
    master = start_master(
        "--workers", "2", FARM_HEARTBEAT_FLUSH_SECONDS=str(FLUSH_SECONDS), **backend
    )
    ids = announce(master, AGENTS)
    last = send_heartbeats(master, ids)
    expected = {a: (last[a]["free_ram"], last[a]["last_heard_from"]) for a in ids}
    sent = time.monotonic()

    deadline = sent + 10 * FLUSH_SECONDS + 5  # generous on a loaded machine
    seen = as_seen(master, ids)
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = as_seen(master, ids)
    assert seen == expected


def test_heartbeats_waiting_in_a_worker_are_written_when_farm_serve_stops(
    start_master: StartMaster,
) -> None:
    # An interval far longer than the test: only the flush on SIGTERM can write them.
    master = start_master("--workers", "2", FARM_HEARTBEAT_FLUSH_SECONDS="50")
    ids = announce(master, AGENTS)
    last = send_heartbeats(master, ids)
    assert master.stop() == 0

    with sqlite3.connect(master.data_dir / "farm.db") as db:
        rows = db.execute("SELECT id, free_ram, last_heard_from FROM agents").fetchall()
    stored = {
        str(uuid.UUID(hex=a)): (free, datetime.fromisoformat(heard)) for a, free, heard in rows
    }
    assert stored == {a: (last[a]["free_ram"], naive_utc(last[a]["last_heard_from"])) for a in ids}


def naive_utc(shown: object) -> datetime:
    """An API timestamp as the embedded database stores it."""
    return datetime.fromisoformat(str(shown)).astimezone(UTC).replace(tzinfo=None)
