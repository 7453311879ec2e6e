"""The agents API over falcon.testing: every status and message of agents-api.md."""

from __future__ import annotations

import re
import uuid

import pytest

from farm_domain.enums import WorkState
from tests.support.http_harness import Harness
from tests.support.live_farm import Backend, LiveHarness, make_live_harness

AGENT_KEYS = {
    "id",
    "hostname",
    "remote_ip",
    "use_address",
    "os_class",
    "os_fullname",
    "cpu_name",
    "ram",
    "free_ram",
    "cpus",
    "port",
    "time_offset",
    "version",
    "upgrade_to",
    "ram_allocation",
    "cpu_allocation",
    "restart_requested",
    "state",
    "last_heard_from",
    "last_polled",
}


@pytest.fixture
def farm(live_farm: LiveHarness) -> Harness:
    """Each case runs on both backends, with a real consumer acting between requests."""
    return live_farm


def error_of(result) -> str:
    assert set(result.json) >= {"error"}, result.json
    error: str = result.json["error"]
    return error


# -- schema -----------------------------------------------------------------------------------


def test_schema_names_pyfarms_column_types(farm: Harness) -> None:
    result = farm.client.simulate_get("/api/v1/agents/schema")
    assert result.status_code == 200
    assert result.json["hostname"] == "VARCHAR(255)"
    assert result.json["id"] == "UUIDType"
    assert result.json["state"] == "AgentStateEnum"
    assert result.json["remote_ip"] == "IPv4Address"
    assert result.json["ram"] == "INTEGER"
    assert AGENT_KEYS <= set(result.json)


# -- announce ---------------------------------------------------------------------------------


def test_announce_creates_then_updates(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    created = farm.announce(agent_id, ram_allocation=1, state=202, os_class="linux")
    assert created.status_code == 201
    assert AGENT_KEYS <= set(created.json)
    assert created.json["id"] == str(agent_id)
    assert created.json["state"] == "online"
    assert created.json["ram_allocation"] == 1.0
    assert created.json["use_address"] == "remote"
    assert created.json["remote_ip"] == "127.0.0.1"
    assert created.json["last_heard_from"].startswith("2026-01-01T12:00:00")
    again = farm.announce(agent_id, ram_allocation=1, state=202, os_class="linux")
    assert again.status_code == 200
    assert again.json == created.json


def test_an_identical_reannounce_without_state_is_ok(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    assert farm.announce(agent_id).status_code == 201
    assert farm.announce(agent_id).status_code == 200


@pytest.mark.parametrize("spelling", [str.upper, lambda s: s.replace("-", "")])
def test_ids_in_any_spelling_are_returned_lowercase_hyphenated(farm: Harness, spelling) -> None:
    agent_id = uuid.uuid4()
    result = farm.client.simulate_post(
        "/api/v1/agents",
        json={
            "id": spelling(str(agent_id)),
            "hostname": "a",
            "ram": 64,
            "free_ram": 0,
            "cpus": 1,
            "port": 1024,
        },
    )
    assert result.status_code == 201
    assert result.json["id"] == str(agent_id)
    assert farm.client.simulate_get(f"/api/v1/agents/{spelling(str(agent_id))}").status_code == 200


def test_a_known_agent_on_another_port_is_updated(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id, port=50000)
    result = farm.announce(agent_id, port=50001)
    assert result.status_code == 200 and result.json["port"] == 50001


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "`id` not provided"),
        ({"hostname": "a"}, "`id` not provided"),
        ({"id": "not-a-uuid"}, "not-a-uuid is not a valid agent id (a UUID)"),
        (
            {"id": str(uuid.uuid4()), "hostname": "a", "port": 2000},
            "request is missing field(s): ram, free_ram, cpus",
        ),
        (
            {
                "id": str(uuid.uuid4()),
                "hostname": "bad_name",
                "ram": 64,
                "free_ram": 0,
                "cpus": 1,
                "port": 2000,
            },
            "bad_name is not valid for hostname",
        ),
    ],
)
def test_announce_errors(farm: Harness, body, message) -> None:
    result = farm.client.simulate_post("/api/v1/agents/", json=body)
    assert result.status_code == 400
    assert error_of(result) == message
    assert farm.client.simulate_get("/api/v1/agents/").json == []


def test_only_the_announce_answer_carries_the_agents_signing_key(farm: Harness) -> None:
    agent_id, other = uuid.uuid4(), uuid.uuid4()
    key = farm.announce(agent_id).json["signing_key"]
    assert re.fullmatch("[0-9a-f]{64}", key)
    assert farm.announce(agent_id).json["signing_key"] == key  # derived, so stable
    assert farm.announce(other).json["signing_key"] != key
    assert "signing_key" not in farm.client.simulate_get(f"/api/v1/agents/{agent_id}").json
    listed = farm.client.simulate_get("/api/v1/agents/").text
    updated = farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json={"free_ram": 1}).text
    assert key not in listed and key not in updated


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ram", True, "`ram` must be an integer"),
        ("ram", "5", "`ram` must be an integer"),
        ("ram", 5.5, "`ram` must be an integer"),
        ("ram", 15, "`ram` must be between 16 and 262144"),
        ("ram", 262145, "`ram` must be between 16 and 262144"),
        ("free_ram", -1, "`free_ram` must be between 0"),
        ("cpus", 0, "`cpus` must be between 1 and 256"),
        ("cpus", 257, "`cpus` must be between 1 and 256"),
        ("port", 1023, "`port` must be between 1024 and 65535"),
        ("port", 65536, "`port` must be between 1024 and 65535"),
        ("state", "bogus", "`bogus` is not a valid state"),
        ("state", 999, "`999` is not a valid state"),
        ("state", None, "`state` must be a string or an integer"),
        ("use_address", "carrier-pigeon", "`carrier-pigeon` is not a valid use_address"),
        ("os_class", "beos", "`beos` is not a valid os_class"),
        ("remote_ip", "999.1.1.1", "999.1.1.1 is not valid for remote_ip"),
        ("remote_ip", "0.0.0.0", "0.0.0.0 is not valid for remote_ip"),
        ("remote_ip", "224.0.0.1", "224.0.0.1 is not valid for remote_ip"),
        ("os_fullname", "x" * 129, "`os_fullname` must be at most 128 characters long"),
        ("version", "x" * 17, "`version` must be at most 16 characters long"),
        ("cpu_name", "Xeon\x00", "`cpu_name` must not contain control characters"),
        ("gpus", ["GTX\x00"], "is not a valid GPU name"),
        ("ram_allocation", "0.5", "`ram_allocation` must be a number"),
        ("ram_allocation", 0, "`ram_allocation` must be above 0"),
        ("restart_requested", 1, "`restart_requested` must be a boolean"),
        ("mac_addresses", ["aa:bb"], "aa:bb is not a valid MAC address"),
        ("mac_addresses", "aa:bb:cc:dd:ee:ff", "`mac_addresses` must be a list"),
        ("mac_addresses", [1], "`mac_addresses` must be a list of strings"),
        ("gpus", [None], "`gpus` must be a list of strings"),
        ("last_heard_from", "2020-01-01T00:00:00", "`last_heard_from` cannot be set: read-only"),
        ("last_polled", None, "`last_polled` cannot be set: read-only"),
        ("tags", [], "request contains field(s) that do not exist: tags"),
        ("tasks", [], "request contains field(s) that do not exist: tasks"),
        ("software_versions", [], "request contains field(s) that do not exist: software_versions"),
        ("colour", "red", "request contains field(s) that do not exist: colour"),
    ],
)
def test_bad_fields_are_400s_that_change_nothing(farm: Harness, field, value, message) -> None:
    agent_id = uuid.uuid4()
    before = farm.announce(agent_id).json
    del before["signing_key"]  # only the announce answer carries it
    result = farm.announce(agent_id, **{field: value})
    assert result.status_code == 400, result.json
    assert message in error_of(result)
    assert farm.client.simulate_get(f"/api/v1/agents/{agent_id}").json == before
    update = farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json={field: value})
    assert update.status_code == 400 and message in error_of(update)
    assert farm.client.simulate_get(f"/api/v1/agents/{agent_id}").json == before


@pytest.mark.parametrize(
    "assignments",
    [
        [],
        "x",
        1,
        {"a": 1},
        {"a": {}},
        {"a": {"tasks": 1}},
        {"a": {"tasks": [1]}},
        {"a": {"tasks": [{"id": "1"}]}},
        {"a": {"tasks": [{"id": True}]}},
        {"a": {"tasks": [{"frame": 1}]}},
    ],
)
def test_malformed_current_assignments_are_400(farm: Harness, assignments) -> None:
    result = farm.announce(current_assignments=assignments)
    assert result.status_code == 400
    assert "current_assignments" in error_of(result)


def test_a_disabled_agent_stays_disabled_when_it_announces_online(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json={"state": "disabled"})
    assert farm.announce(agent_id, state="online").json["state"] == "disabled"
    assert farm.announce(agent_id, state="offline").json["state"] == "offline"
    assert farm.announce(agent_id, state="running").json["state"] == "disabled"
    enabled = farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json={"state": "online"})
    assert enabled.json["state"] == "online"


def test_mac_addresses_and_gpus_replace_the_agents_sets(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    first = farm.announce(
        agent_id,
        mac_addresses=["AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"],
        gpus=["GTX 1080", "Quadro P5000"],
    )
    assert first.json["mac_addresses"] == ["aa:bb:cc:dd:ee:ff"]
    assert first.json["gpus"] == ["GTX 1080", "Quadro P5000"]
    second = farm.announce(agent_id, gpus=["Quadro P5000"], mac_addresses=[])
    assert second.status_code == 200
    assert (second.json["gpus"], second.json["mac_addresses"]) == (["Quadro P5000"], [])


def test_wrong_farm_name_is_refused(backend: Backend, tmp_path) -> None:
    for farm in make_live_harness(backend, tmp_path, FARM_NAME="paris"):
        result = farm.announce(farm_name="london")
        assert result.status_code == 400 and error_of(result) == "Wrong farm name"
        assert farm.announce(farm_name="paris").status_code == 201


def test_missing_default_software_is_the_contracts_500(backend: Backend, tmp_path) -> None:
    env = {"FARM_DEFAULT_AGENT_SOFTWARE": '[{"software": "blender", "version": "2.79"}]'}
    for farm in make_live_harness(backend, tmp_path, **env):
        result = farm.announce()
        assert result.status_code == 500
        assert error_of(result) == "Default agent software 'blender' not found"
        with farm.uow() as uow:
            uow.software.add("blender", [("2.79", 100)])
            uow.commit()
        created = farm.announce()
        assert created.status_code == 201
        assert created.json["software"] == [{"software": "blender", "version": "2.79"}]


def test_x_forwarded_for_is_honoured_only_from_trusted_proxies(backend: Backend, tmp_path) -> None:
    for farm in make_live_harness(
        backend,
        tmp_path,
        FARM_TRUSTED_PROXIES="10.0.0.0/8",
        FARM_ANONYMOUS_NETWORKS="10.0.0.0/8,192.168.0.0/16",
    ):
        body = {
            "id": str(uuid.uuid4()),
            "hostname": "a",
            "ram": 64,
            "free_ram": 0,
            "cpus": 1,
            "port": 2000,
        }
        via_proxy = farm.client.simulate_post(
            "/api/v1/agents",
            json=body,
            remote_addr="10.0.0.2",
            headers={"X-Forwarded-For": "192.168.1.50, 10.0.0.3"},
        )
        assert via_proxy.json["remote_ip"] == "192.168.1.50"
        body["id"] = str(uuid.uuid4())
        spoofed = farm.client.simulate_post(
            "/api/v1/agents",
            json=body,
            remote_addr="192.168.7.7",
            headers={"X-Forwarded-For": "10.9.9.9"},
        )
        assert spoofed.json["remote_ip"] == "192.168.7.7"


def test_announce_after_commit_asks_the_queue_to_assign_this_agent(farm: Harness) -> None:
    created = farm.announce()
    assert farm.queue.calls == [("assign_tasks_to_agent", (uuid.UUID(created.json["id"]),))]


def test_announce_reconciles_current_assignments(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    job = farm.job(requeue=3)
    sent = farm.task(job, agent_id=agent_id, sent_to_agent=True, sent_at=farm.clock.now())
    kept = farm.task(job, agent_id=agent_id, sent_to_agent=True, frame=2.0)
    farm.clock.advance(31)
    report = {"a1": {"id": "a1", "tasks": [{"id": kept.id, "frame": 2.0}]}}
    assert farm.announce(agent_id, current_assignments=report).status_code == 200
    requeued = farm.get_task(sent.id)
    assert (requeued.agent_id, requeued.failures) == (None, 1)
    assert farm.get_task(kept.id).agent_id == agent_id


# -- body handling ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/agents/", f"/api/v1/agents/{uuid.UUID(int=404)}"])
def test_bodies_must_be_json_objects(farm: Harness, path: str) -> None:
    for body in (b"[1, 2]", b"5", b'"x"', b"null"):
        result = farm.client.simulate_post(
            path, body=body, headers={"Content-Type": "application/json"}
        )
        assert result.status_code == 400
        assert error_of(result) == "request body must be a JSON object"
    malformed = farm.client.simulate_post(
        path, body=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and error_of(malformed)
    empty = farm.client.simulate_post(path, body=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 400 and error_of(empty)
    wrong_type = farm.client.simulate_post(
        path, body=b"id=1", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415 and error_of(wrong_type)


def test_a_charset_parameter_is_fine(farm: Harness) -> None:
    result = farm.client.simulate_post(
        "/api/v1/agents",
        body=b'{"id": "%s", "hostname": "a", "ram": 64, "free_ram": 0, '
        b'"cpus": 1, "port": 2000}' % str(uuid.uuid4()).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert result.status_code == 201


def test_wrong_methods_are_405_with_an_error(farm: Harness) -> None:
    result = farm.client.simulate_put("/api/v1/agents/")
    assert result.status_code == 405 and error_of(result)
    result = farm.client.simulate_patch(f"/api/v1/agents/{uuid.uuid4()}")
    assert result.status_code == 405 and error_of(result)


# -- listing ----------------------------------------------------------------------------------


def test_list_returns_exactly_four_keys_ordered_by_hostname_then_id(farm: Harness) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    farm.announce(ids[0], hostname="b")
    farm.announce(ids[1], hostname="a")
    farm.announce(ids[2], hostname="a")
    listed = farm.client.simulate_get("/api/v1/agents").json
    assert [set(a) for a in listed] == [{"id", "hostname", "port", "remote_ip"}] * 3
    assert [a["hostname"] for a in listed] == ["a", "a", "b"]
    assert [a["id"] for a in listed[:2]] == sorted(str(i) for i in ids[1:])


def test_list_filters(farm: Harness) -> None:
    farm.announce(hostname="small", ram=1024, cpus=2, port=2000, remote_ip="10.0.0.1")
    farm.announce(hostname="big", ram=65536, cpus=32, port=3000, remote_ip="10.0.0.2")
    farm.announce(hostname="gone", ram=4096, cpus=8, port=2000, state="offline")

    def names(query: str) -> list[str]:
        result = farm.client.simulate_get("/api/v1/agents/", query_string=query)
        assert result.status_code == 200, result.json
        return [a["hostname"] for a in result.json]

    assert names("min_ram=4096") == ["big", "gone"]
    assert names("max_ram=4096&min_cpus=4") == ["gone"]
    assert names("max_cpus=2") == ["small"]
    assert names("hostname=big") == ["big"]
    assert names("remote_ip=10.0.0.1") == ["small"]
    assert names("port=2000") == ["gone", "small"]
    assert names("state=offline") == ["gone"]
    assert names("limit=1&offset=1") == ["gone"]
    assert names("colour=red") == ["big", "gone", "small"]


@pytest.mark.parametrize(
    "query",
    [
        "min_ram=lots",
        "max_ram=1.5",
        "min_cpus=",
        "max_cpus=x",
        "hostname=bad_name",
        "remote_ip=1.2.3",
        "port=80",
        "port=abc",
        "state=sleepy",
        "limit=0",
        "offset=-1",
        "min_ram=1&min_ram=2",
    ],
)
def test_bad_filters_are_400(farm: Harness, query: str) -> None:
    result = farm.client.simulate_get("/api/v1/agents/", query_string=query)
    assert result.status_code == 400
    assert "Failed to convert the url argument" in error_of(result)


# -- one agent ----------------------------------------------------------------------------------


def test_get_unknown_and_malformed_ids(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    missing = farm.client.simulate_get(f"/api/v1/agents/{agent_id}")
    assert missing.status_code == 404 and error_of(missing) == f"Agent {agent_id} not found"
    for bad in ("nope", "1234", f"{agent_id}x"):
        result = farm.client.simulate_get(f"/api/v1/agents/{bad}")
        assert result.status_code == 404 and error_of(result)


def test_update_is_partial_and_marks_the_agent_heard_from(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    farm.clock.advance(90)
    result = farm.client.simulate_post(f"/api/v1/agents/{agent_id}/", json={"ram": 1234})
    assert result.status_code == 200
    assert result.json["ram"] == 1234 and result.json["hostname"] == "node1"
    assert result.json["last_heard_from"].startswith("2026-01-01T12:01:30")


def test_update_errors(farm: Harness) -> None:
    missing = farm.client.simulate_post(f"/api/v1/agents/{uuid.uuid4()}", json={"ram": 64})
    assert missing.status_code == 404 and "not found" in error_of(missing)
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    other = farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json={"id": str(uuid.uuid4())})
    assert other.status_code == 400 and "does not match" in error_of(other)
    assert farm.client.simulate_get(f"/api/v1/agents/{agent_id}").status_code == 200


def test_update_with_upgrade_to_asks_the_queue_to_update_the_agent(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    farm.queue.calls.clear()
    farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json={"upgrade_to": "1.0.0"})
    assert farm.queue.calls == [
        ("update_agent", (agent_id,)),
        ("assign_tasks_to_agent", (agent_id,)),
    ]


def test_going_offline_releases_unfinished_tasks(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    job = farm.job()
    running = farm.task(job, agent_id=agent_id, state=WorkState.RUNNING, sent_to_agent=True)
    done = farm.task(job, agent_id=agent_id, state=WorkState.DONE, frame=2.0)
    result = farm.client.simulate_post(
        f"/api/v1/agents/{agent_id}",
        json={"state": "offline", "current_assignments": {}, "free_ram": 100},
    )
    assert result.status_code == 200 and result.json["state"] == "offline"
    released = farm.get_task(running.id)
    assert (released.agent_id, released.state, released.failures) == (None, None, 0)
    assert farm.get_task(done.id).agent_id == agent_id


def test_heartbeat_reconciliation_respects_the_grace_period_and_requeue(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    # Paused: the consumer gives the requeued task to no one, so the test sees the requeue.
    job = farm.job(requeue=-1, state=WorkState.PAUSED)
    recent = farm.task(job, agent_id=agent_id, sent_to_agent=True, sent_at=farm.clock.now())
    heartbeat = {"state": "running", "current_assignments": {}, "free_ram": 100}
    farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json=heartbeat)
    assert farm.get_task(recent.id).agent_id == agent_id
    farm.clock.advance(30)
    farm.client.simulate_post(f"/api/v1/agents/{agent_id}", json=heartbeat)
    requeued = farm.get_task(recent.id)
    assert (requeued.agent_id, requeued.failures, requeued.sent_to_agent) == (None, 1, False)


def test_delete_is_204_either_way_and_releases_tasks(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id, mac_addresses=["aa:bb:cc:dd:ee:ff"], gpus=["GTX"])
    task = farm.task(farm.job(), agent_id=agent_id, state=WorkState.RUNNING)
    farm.queue.calls.clear()
    first = farm.client.simulate_delete(f"/api/v1/agents/{agent_id}")
    assert first.status_code == 204 and not first.content
    assert farm.client.simulate_delete(f"/api/v1/agents/{agent_id}").status_code == 204
    assert farm.client.simulate_get(f"/api/v1/agents/{agent_id}").status_code == 404
    assert farm.get_task(task.id).agent_id is None
    assert ("stop_tasks", (agent_id, "127.0.0.1", farm.agent_port, (task.id,))) in farm.queue.calls
    # The GPU catalogue stays for the next agent that has one.
    again = farm.announce(gpus=["GTX"])
    assert again.json["gpus"] == ["GTX"]


# -- an agent's tasks -----------------------------------------------------------------------------


def test_tasks_of_an_agent_with_their_job_summary(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    assert farm.client.simulate_get(f"/api/v1/agents/{agent_id}/tasks/").json == []
    job = farm.job(title="shot_010")
    task = farm.task(job, agent_id=agent_id, frame=12.0, attempts=1)
    listed = farm.client.simulate_get(f"/api/v1/agents/{agent_id}/tasks").json
    assert len(listed) == 1
    assert listed[0]["id"] == task.id and listed[0]["frame"] == 12.0
    assert listed[0]["state"] == "assigned"
    assert listed[0]["job"]["id"] == job.id and listed[0]["job"]["title"] == "shot_010"
    assert set(listed[0]["job"]) == {"id", "title", "jobtype", "jobtype_id", "jobtype_version"}
    missing = farm.client.simulate_get(f"/api/v1/agents/{uuid.uuid4()}/tasks/")
    assert missing.status_code == 404 and error_of(missing)


def test_assigning_a_task_by_hand(farm: Harness) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    farm.announce(first, remote_ip="127.0.0.2")
    farm.announce(second)
    task = farm.task(farm.job(), agent_id=first, sent_to_agent=True, attempts=1)
    farm.queue.calls.clear()
    result = farm.client.simulate_post(f"/api/v1/agents/{second}/tasks/", json={"id": task.id})
    assert result.status_code == 200
    assert result.json["agent_id"] == str(second)
    assert (result.json["attempts"], result.json["sent_to_agent"]) == (2, False)
    assert ("stop_tasks", (first, "127.0.0.2", farm.agent_port, (task.id,))) in farm.queue.calls
    assert ("send_tasks_to_agent", (second,)) in farm.queue.calls


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "No id given for task"),
        ({"id": 1, "agent": "x"}, 400, "Unknown keys in request"),
        ({"id": "1"}, 400, "`id` must be an integer"),
        ({"id": 987654}, 404, "Task not found"),
    ],
)
def test_assigning_errors(farm: Harness, body, status, message) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    result = farm.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json=body)
    assert result.status_code == status and error_of(result) == message


def test_assigning_to_an_unknown_agent_is_404(farm: Harness) -> None:
    task = farm.task(farm.job())
    result = farm.client.simulate_post(f"/api/v1/agents/{uuid.uuid4()}/tasks", json={"id": task.id})
    assert result.status_code == 404 and "not found" in error_of(result)
