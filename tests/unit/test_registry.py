"""AgentRegistry on fakes: announces, updates, deletes and hand assignments."""

from __future__ import annotations

import uuid

import pytest

from farm_domain.agents import AgentChanges, AgentQuery
from farm_domain.defaults import DefaultSoftware, SoftwareDefaults
from farm_domain.enums import AgentState, UseAddress, WorkState
from farm_domain.errors import Conflict, MisconfiguredDefaults, NotFound, ValidationError, WrongFarm
from tests.support.builders import World
from tests.support.identities import ADMIN


@pytest.fixture
def world() -> World:
    return World()


def test_announce_creates_an_agent_heard_from_now(world: World) -> None:
    agent, created = world.announce(hostname="Render-01.local.")
    assert created
    assert agent.hostname == "Render-01.local."
    assert agent.last_heard_from == world.clock.now()
    assert agent.shown_state is AgentState.ONLINE
    assert world.registry.get(ADMIN, agent.id) == agent


def test_announce_without_id_is_refused(world: World) -> None:
    with pytest.raises(ValidationError, match="`id` not provided"):
        world.registry.announce(ADMIN, AgentChanges(hostname="a"), None)


@pytest.mark.parametrize("spelling", [str.upper, lambda s: s.replace("-", "")])
def test_announce_accepts_any_uuid_spelling(world: World, spelling) -> None:
    agent_id = uuid.uuid4()
    agent, _ = world.registry.announce(
        ADMIN,
        AgentChanges(
            id=spelling(str(agent_id)), hostname="a", ram=64, free_ram=1, cpus=1, port=1024
        ),
        None,
    )
    assert agent.id == agent_id


def test_announce_with_a_bad_id_is_a_validation_error(world: World) -> None:
    with pytest.raises(ValidationError, match="not a valid agent id"):
        world.registry.announce(ADMIN, AgentChanges(id="nope"), None)


def test_create_names_every_missing_field(world: World) -> None:
    with pytest.raises(ValidationError, match="request is missing field\\(s\\): ram, cpus"):
        world.registry.announce(
            ADMIN, AgentChanges(id=str(uuid.uuid4()), hostname="a", free_ram=1, port=2000), None
        )
    assert world.registry.query(ADMIN) == []


def test_reannounce_without_changes_is_an_update(world: World) -> None:
    agent, _ = world.announce()
    world.clock.advance(60)
    again, created = world.announce(agent.id)
    assert not created
    assert again.last_heard_from == world.clock.now()


def test_a_known_agent_coming_back_on_another_port_is_updated(world: World) -> None:
    agent, _ = world.announce(port=50000)
    moved, created = world.announce(agent.id, port=50001)
    assert not created and moved.port == 50001
    assert len(world.registry.query(ADMIN)) == 1


def test_remote_ip_comes_from_the_peer_unless_sent(world: World) -> None:
    from_peer, _ = world.announce(peer="10.1.2.3")
    sent, _ = world.announce(peer="10.1.2.3", remote_ip="10.9.9.9")
    assert from_peer.remote_ip == "10.1.2.3"
    assert sent.remote_ip == "10.9.9.9"


def test_an_unusable_peer_address_never_fails_the_announce(world: World) -> None:
    agent, _ = world.announce(peer="not-an-ip")
    assert agent.remote_ip is None


def test_loopback_may_be_refused_by_configuration() -> None:
    world = World(allow_loopback=False)
    with pytest.raises(ValidationError, match="refuses loopback"):
        world.announce(remote_ip="127.0.0.1")
    agent, _ = world.announce(peer="127.0.0.1")
    assert agent.remote_ip is None


def test_a_disabled_agent_stays_disabled_across_its_own_restarts(world: World) -> None:
    agent, _ = world.announce()
    world.registry.update(ADMIN, agent.id, AgentChanges(state="disabled"))
    assert world.announce(agent.id, state="online")[0].shown_state is AgentState.DISABLED
    heartbeat = AgentChanges(state="running", reported_task_ids=frozenset())
    assert world.registry.update(ADMIN, agent.id, heartbeat).shown_state is AgentState.DISABLED
    shutdown = AgentChanges(state="offline", reported_task_ids=frozenset())
    assert world.registry.update(ADMIN, agent.id, shutdown).shown_state is AgentState.OFFLINE
    assert world.announce(agent.id, state=202)[0].shown_state is AgentState.DISABLED
    enabled = world.registry.update(ADMIN, agent.id, AgentChanges(state="online"))
    assert enabled.shown_state is AgentState.ONLINE


def test_mac_addresses_are_lowercased_deduplicated_and_replaced(world: World) -> None:
    agent, _ = world.announce(mac_addresses=["AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"])
    assert agent.mac_addresses == {"aa:bb:cc:dd:ee:ff"}
    agent, _ = world.announce(agent.id, mac_addresses=["01:02:03:04:05:06"])
    assert world.registry.get(ADMIN, agent.id).mac_addresses == {"01:02:03:04:05:06"}


def test_an_invalid_mac_address_changes_nothing(world: World) -> None:
    agent, _ = world.announce(mac_addresses=["aa:bb:cc:dd:ee:ff"])
    with pytest.raises(ValidationError, match="zz is not a valid MAC"):
        world.announce(agent.id, mac_addresses=["zz"], ram=8192)
    assert world.registry.get(ADMIN, agent.id) == agent


def test_removing_a_gpu_never_errors(world: World) -> None:
    agent, _ = world.announce(gpus=["GTX 1080", "Quadro"])
    world.announce(agent.id, gpus=["Quadro"])
    assert world.registry.get(ADMIN, agent.id).gpus == {"Quadro"}
    world.announce(agent.id, gpus=[])
    assert world.registry.get(ADMIN, agent.id).gpus == frozenset()


def test_default_software_is_attached_to_new_agents() -> None:
    world = World(defaults=SoftwareDefaults([DefaultSoftware("blender", "2.79")]))
    with world.uow() as uow:
        uow.software.add("blender", [("2.79", 100), ("2.80", 200)])
        uow.commit()
    agent, _ = world.announce()
    assert [(s.software, s.version) for s in agent.software] == [("blender", "2.79")]


@pytest.mark.parametrize(
    ("catalogue", "message"),
    [
        ([], "Default agent software 'blender' not found"),
        ([("2.80", 1)], "Default agent software 'blender' version 2.79 not found"),
    ],
)
def test_missing_default_software_is_a_configuration_error(catalogue, message) -> None:
    world = World(defaults=SoftwareDefaults([DefaultSoftware("blender", "2.79")]))
    if catalogue:
        with world.uow() as uow:
            uow.software.add("blender", catalogue)
            uow.commit()
    with pytest.raises(MisconfiguredDefaults, match=message):
        world.announce()
    assert world.registry.query(ADMIN) == []


def test_an_agent_of_another_farm_is_refused() -> None:
    world = World(farm_name="paris")
    with pytest.raises(WrongFarm, match="Wrong farm name"):
        world.announce(farm_name="london")
    assert world.announce(farm_name="paris")[1]


def test_update_of_an_unknown_agent_is_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="not found"):
        world.registry.update(ADMIN, uuid.uuid4(), AgentChanges(ram=100))


def test_update_refuses_a_body_id_naming_another_agent(world: World) -> None:
    agent, _ = world.announce()
    with pytest.raises(ValidationError, match="does not match"):
        world.registry.update(ADMIN, agent.id, AgentChanges(id=str(uuid.uuid4())))
    same = world.registry.update(ADMIN, agent.id, AgentChanges(id=str(agent.id).upper(), ram=128))
    assert same.ram == 128


def test_a_changed_upgrade_to_asks_the_queue_to_update_the_agent(world: World) -> None:
    agent, _ = world.announce()
    world.queue.calls.clear()
    world.registry.update(ADMIN, agent.id, AgentChanges(upgrade_to="0.9.0"))
    world.registry.update(ADMIN, agent.id, AgentChanges(upgrade_to="0.9.0"))
    assert world.queue.names().count("update_agent") == 1


def test_queue_requests_follow_the_commit(world: World) -> None:
    seen_by_queue = []

    def check() -> None:
        seen_by_queue.append(world.registry.query(ADMIN))

    world.queue.assign_tasks_to_agent = lambda agent_id: check()  # type: ignore[method-assign]  # a spy
    agent, _ = world.announce()
    assert [a.id for a in seen_by_queue[0]] == [agent.id]


def test_going_offline_releases_unfinished_tasks_without_a_failure(world: World) -> None:
    agent, _ = world.announce()
    job = world.job()
    running = world.task(
        job, agent_id=agent.id, state=WorkState.RUNNING, sent_to_agent=True, attempts=1
    )
    done = world.task(job, agent_id=agent.id, state=WorkState.DONE, frame=2.0)
    world.queue.calls.clear()
    world.registry.update(
        ADMIN, agent.id, AgentChanges(state="offline", reported_task_ids=frozenset({running.id}))
    )
    released = world.get_task(running.id)
    assert (released.agent_id, released.state, released.failures) == (None, None, 0)
    assert world.get_task(done.id).agent_id == agent.id
    assert world.get_job(job.id).state is None
    assert world.queue.names() == ["assign_tasks"]


def test_heartbeat_reconciles_and_asks_to_send_unsent_tasks(world: World) -> None:
    agent, _ = world.announce()
    job = world.job()
    unsent = world.task(job, agent_id=agent.id)
    world.queue.calls.clear()
    world.registry.update(
        ADMIN, agent.id, AgentChanges(state="online", reported_task_ids=frozenset())
    )
    assert ("send_tasks_to_agent", (agent.id,)) in world.queue.calls
    assert world.get_task(unsent.id).agent_id == agent.id


def test_announce_reconciles_current_assignments_too(world: World) -> None:
    agent, _ = world.announce()
    job = world.job(requeue=0)
    lost = world.task(job, agent_id=agent.id, sent_to_agent=True, sent_at=world.clock.now())
    world.clock.advance(31)
    world.announce(agent.id, reported_task_ids=frozenset())
    failed = world.get_task(lost.id)
    assert (failed.state, failed.failures) == (WorkState.FAILED, 1)
    assert world.get_job(job.id).state is WorkState.FAILED


def test_delete_releases_tasks_and_asks_the_agent_to_stop_them(world: World) -> None:
    agent, _ = world.announce(remote_ip="10.0.0.7", port=50123)
    job = world.job()
    task = world.task(job, agent_id=agent.id, state=WorkState.RUNNING)
    world.queue.calls.clear()
    assert world.registry.delete(ADMIN, agent.id) is True
    assert world.get_task(task.id).agent_id is None
    assert ("stop_tasks", (agent.id, "10.0.0.7", 50123, (task.id,))) in world.queue.calls
    assert "assign_tasks" in world.queue.names()
    with pytest.raises(NotFound):
        world.registry.get(ADMIN, agent.id)
    assert world.registry.delete(ADMIN, agent.id) is False


def test_a_passive_agent_is_never_called(world: World) -> None:
    agent, _ = world.announce(use_address="passive")
    assert agent.use_address is UseAddress.PASSIVE
    world.task(world.job(), agent_id=agent.id)
    world.queue.calls.clear()
    world.registry.delete(ADMIN, agent.id)
    assert "stop_tasks" not in world.queue.names()


def test_assigning_a_task_by_hand_is_a_new_unsent_attempt(world: World) -> None:
    first, _ = world.announce(hostname="first", remote_ip="10.0.0.1")
    second, _ = world.announce(hostname="second")
    task = world.task(world.job(), agent_id=first.id, sent_to_agent=True, attempts=1)
    world.queue.calls.clear()
    assigned = world.registry.assign_task(ADMIN, second.id, task.id)
    assert (assigned.agent_id, assigned.attempts, assigned.sent_to_agent) == (second.id, 2, False)
    assert ("stop_tasks", (first.id, "10.0.0.1", 50000, (task.id,))) in world.queue.calls
    assert ("send_tasks_to_agent", (second.id,)) in world.queue.calls
    assert world.get_job(task.job_id).state is WorkState.RUNNING
    assert [t.id for t, _ in world.registry.tasks(ADMIN, second.id)] == [task.id]
    assert world.registry.tasks(ADMIN, first.id) == []


def test_assigning_needs_a_known_agent_and_task_not_done(world: World) -> None:
    agent, _ = world.announce()
    job = world.job()
    done = world.task(job, state=WorkState.DONE)
    with pytest.raises(NotFound, match="Task not found"):
        world.registry.assign_task(ADMIN, agent.id, 999)
    with pytest.raises(NotFound, match="Agent"):
        world.registry.assign_task(ADMIN, uuid.uuid4(), done.id)
    with pytest.raises(Conflict, match="already done"):
        world.registry.assign_task(ADMIN, agent.id, done.id)
    canceled = world.task(job, state=WorkState.CANCELED)
    with pytest.raises(Conflict, match="canceled: requeue its job first"):
        world.registry.assign_task(ADMIN, agent.id, canceled.id)
    assert world.get_task(canceled.id) == canceled  # unchanged


def test_listing_filters_by_state(world: World) -> None:
    online, _ = world.announce(hostname="a")
    offline, _ = world.announce(hostname="b", state="offline")
    assert [a.id for a in world.registry.query(ADMIN, AgentQuery(state=AgentState.OFFLINE))] == [
        offline.id
    ]
    assert [a.id for a in world.registry.query(ADMIN, AgentQuery(state=AgentState.ONLINE))] == [
        online.id
    ]
