"""The benchmark's "no heartbeat lost" check, on a handful of agents and made-up answers."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.heartbeats import Fleet, Heartbeats, Ledger, Sent, check, compare


def at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def fleet(size: int = 10) -> Fleet:
    agents = [uuid.UUID(int=n + 1) for n in range(size)]
    return Fleet(agents, {agents[0]: [11, 12], agents[1]: [21]})


def test_an_agent_never_has_two_heartbeats_in_flight() -> None:
    beats = Heartbeats(fleet(3), Ledger(), seed=1)
    paths = {beats(n)[1] for n in (1, 2, 3)}
    assert len(paths) == 3  # the fourth would have to wait for an answer
    beats.answered(2, 200, b"{}", 1.0, 1.1)
    assert beats(4)[1] in paths


def test_realistic_bodies_change_free_ram_and_carry_real_assignments() -> None:
    agents = fleet(2)
    ledger = Ledger()
    beats = Heartbeats(agents, ledger, seed=2)
    rams: dict[str, list[int]] = {}
    for n in range(1, 200):
        _, path, body = beats(n)
        sent = orjson.loads(body or b"")
        rams.setdefault(path, []).append(sent["free_ram"])
        assert sent["state"] == "running"  # both agents of this fleet are busy
        if "current_assignments" in sent:
            ids = {t["id"] for a in sent["current_assignments"].values() for t in a["tasks"]}
            assert ids in ({11, 12}, {21})
        beats.answered(n, 200, b"{}", float(n), n + 0.01)
    for series in rams.values():
        assert all(a != b for a, b in itertools.pairwise(series))
    last = ledger.last[agents.agents[0]]
    assert last.free_ram == rams[f"/api/v1/agents/{agents.agents[0]}"][-1]


def test_idle_bodies_go_to_idle_agents_online_without_assignments() -> None:
    agents = fleet(6)
    beats = Heartbeats(agents, Ledger(), seed=3, idle=True)
    for n in range(1, 100):
        _, path, body = beats(n)
        sent = orjson.loads(body or b"")
        assert path.rsplit("/", 1)[1] not in {str(a) for a in agents.tasks}
        assert sent["state"] == "online" and "current_assignments" not in sent
        beats.answered(n, 200, b"{}", float(n), n + 0.01)


def test_an_exact_read_back_is_not_lost() -> None:
    sent = Sent(free_ram=3000, sent_at=100.0, answered_at=100.02)
    assert compare(sent, {"free_ram": 3000, "last_heard_from": at(100.01)}) is None


def test_an_older_free_ram_is_lost() -> None:
    sent = Sent(free_ram=3000, sent_at=100.0, answered_at=100.02)
    why = compare(sent, {"free_ram": 2999, "last_heard_from": at(100.01)})
    assert why is not None and "free_ram" in why


def test_a_last_heard_from_outside_the_heartbeat_is_lost() -> None:
    sent = Sent(free_ram=3000, sent_at=100.0, answered_at=100.02)
    for heard in (at(99.5), at(101.0), None, "yesterday"):
        why = compare(sent, {"free_ram": 3000, "last_heard_from": heard})
        assert why is not None and "last_heard_from" in why


def test_check_counts_the_lost_sets_the_refused_aside_and_waits_for_a_late_batch() -> None:
    a, b, c, d = (uuid.UUID(int=n) for n in range(1, 5))
    ledger = Ledger()
    ledger.record(a, 1000, 200, 10.0, 10.01)
    ledger.record(b, 2000, 200, 10.0, 10.01)
    ledger.record(c, 3000, 200, 10.0, 10.01)
    ledger.record(d, 4000, 400, 10.0, 10.01)  # refused: what the server kept is unknown
    reads = []

    def read_back(port: int, agents: list[uuid.UUID], seen: dict[uuid.UUID, Any]) -> None:
        reads.append(list(agents))
        for agent in agents:
            # c's write lands only on the second read (a batch); b's never does.
            late = agent == c and len(reads) == 1
            free = {a: 1000, b: 1999, c: 2500 if late else 3000}[agent]
            seen[agent] = {"free_ram": free, "last_heard_from": at(10.005)}

    loss = check(0, ledger, patience=1.0, read_back=read_back)
    assert set(loss.lost) == {b}
    assert loss.checked == 3 and loss.uncertain == 1
    assert loss.summary() == "1 lost of 3 (1 refused, not checked)"
    assert reads[0] == [a, b, c] and reads[1] == [b, c]


def test_a_lost_heartbeat_says_which_older_one_won_or_that_none_did() -> None:
    agent = uuid.UUID(int=7)
    ledger = Ledger()
    for n, ram in enumerate((1000, 2000, 3000)):
        ledger.record(agent, ram, 200, 100.0 + n, 100.5 + n)
    ledger.record(agent, 4000, 503, 104.0, 104.5)  # refused: not among the answered

    def stored(ram: int) -> Any:
        def read(_port: int, agents: list[uuid.UUID], seen: dict[uuid.UUID, Any]) -> None:
            seen.update({a: {"free_ram": ram, "last_heard_from": at(101.2)} for a in agents})

        return read

    ledger.record(agent, 3000, 200, 105.0, 105.5)
    older = check(0, ledger, patience=0, read_back=stored(1000)).lost[agent]
    assert "heartbeat 3 before the last, of 4 answered" in older and "sent 100.000" in older
    stranger = check(0, ledger, patience=0, read_back=stored(4000)).lost[agent]
    assert stranger.endswith("(none of its 4 answered heartbeats sent that)")
