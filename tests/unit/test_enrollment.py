"""Enrollment: a join token enrolls a new agent, which then speaks only with its own credential;
what an anonymous-network agent identity may no longer do to an enrolled agent."""

from __future__ import annotations

import uuid

import pytest

from farm_domain.access import Role
from farm_domain.agents import AgentChanges
from farm_domain.enums import AgentState
from farm_domain.errors import Forbidden, Unauthenticated
from farm_domain.job_requests import TaskReport
from tests.support.builders import World
from tests.support.fakes.collaborators import DigestKeys
from tests.support.identities import ADMIN, ANONYMOUS_AGENT, JOINER, WRANGLER, agent


def body(agent_id: uuid.UUID, **fields: object) -> AgentChanges:
    values: dict[str, object] = {
        "id": str(agent_id),
        "hostname": "node1",
        "ram": 4096,
        "free_ram": 2048,
        "cpus": 8,
        "port": 50000,
        **fields,
    }
    return AgentChanges(**values)  # type: ignore[arg-type]  # any AgentChanges fields


def enroll(world: World, agent_id: uuid.UUID) -> str:
    announced = world.registry.join(JOINER, body(agent_id), "127.0.0.1")
    assert announced.created and announced.credential is not None
    return announced.credential


def test_a_join_token_enrolls_a_new_agent_with_its_own_credential() -> None:
    world = World()
    agent_id = uuid.uuid4()
    announced = world.registry.join(JOINER, body(agent_id), "127.0.0.1")
    assert announced.created
    assert announced.signing_key == DigestKeys().key_for(agent_id)
    assert announced.credential is not None
    identity = world.identities.authenticate(announced.credential, "127.0.0.1")
    assert (identity.role, identity.agent_id) == (Role.AGENT, agent_id)
    # With it the agent announces again and heartbeats; the answer carries no new credential.
    again = world.registry.join(identity, body(agent_id, port=50001), "127.0.0.1")
    assert not again.created and again.credential is None
    assert again.agent.port == 50001
    assert world.registry.update(identity, agent_id, AgentChanges(free_ram=1024)).free_ram == 1024
    first_event = world.recorded(target=f"agent:{agent_id}")[0]
    assert first_event.action == "agent.enroll"


def test_a_join_token_cannot_take_over_a_known_agent() -> None:
    world = World()
    agent_id = uuid.uuid4()
    credential = enroll(world, agent_id)
    before = world.registry.get(ADMIN, agent_id)
    with pytest.raises(Forbidden):
        world.registry.join(JOINER, body(agent_id, port=60000), "127.0.0.1")
    assert world.registry.get(ADMIN, agent_id) == before
    # The agent's credential still works: the refusal issued nothing new.
    assert world.identities.authenticate(credential).agent_id == agent_id


def test_one_agents_credential_cannot_speak_for_another() -> None:
    world = World()
    first, second = uuid.uuid4(), uuid.uuid4()
    enroll(world, first)
    enroll(world, second)
    before = world.registry.get(ADMIN, second)
    with pytest.raises(Forbidden):
        world.registry.update(agent(first), second, AgentChanges(state="offline"))
    with pytest.raises(Forbidden):
        world.registry.join(agent(first), body(second, port=60000), "127.0.0.1")
    with pytest.raises(Forbidden):
        world.registry.delete(agent(first), second)
    assert world.registry.get(ADMIN, second) == before


def test_an_anonymous_network_agent_may_not_act_as_an_enrolled_one() -> None:
    world = World()
    enrolled, pyfarm = uuid.uuid4(), uuid.uuid4()
    enroll(world, enrolled)
    before = world.registry.get(ADMIN, enrolled)
    events = len(world.recorded())
    with pytest.raises(Forbidden):
        world.registry.join(ANONYMOUS_AGENT, body(enrolled, port=60000), "127.0.0.1")
    with pytest.raises(Forbidden):
        world.registry.update(
            ANONYMOUS_AGENT, enrolled, AgentChanges(reported_task_ids=frozenset())
        )
    with pytest.raises(Forbidden):
        world.registry.delete(ANONYMOUS_AGENT, enrolled)
    assert world.registry.get(ADMIN, enrolled) == before
    assert len(world.recorded()) == events
    # An agent that never enrolled (a PyFarm agent) is still served on the anonymous network.
    announced = world.registry.join(ANONYMOUS_AGENT, body(pyfarm), "127.0.0.1")
    assert announced.created and announced.credential is None
    assert world.registry.update(ANONYMOUS_AGENT, pyfarm, AgentChanges(free_ram=1)).free_ram == 1


def test_a_soft_heartbeat_from_an_anonymous_network_may_not_speak_for_an_enrolled_agent() -> None:
    # The heartbeat that moves soft state alone is read without a lock, the credential check
    # with it: it refuses the same.
    world = World(soft_state=True)
    enrolled, pyfarm = uuid.uuid4(), uuid.uuid4()
    enroll(world, enrolled)
    world.registry.join(ANONYMOUS_AGENT, body(pyfarm), "127.0.0.1")
    before = world.registry.get(ADMIN, enrolled)
    with pytest.raises(Forbidden):
        world.registry.update(ANONYMOUS_AGENT, enrolled, AgentChanges(free_ram=1))
    assert world.soft_state is not None
    world.soft_state.flush()
    assert world.registry.get(ADMIN, enrolled) == before
    assert world.registry.update(ANONYMOUS_AGENT, pyfarm, AgentChanges(free_ram=1)).free_ram == 1


def test_deleting_an_agent_revokes_its_credential() -> None:
    world = World()
    agent_id = uuid.uuid4()
    credential = enroll(world, agent_id)
    assert world.registry.delete(WRANGLER, agent_id)
    with pytest.raises(Unauthenticated):
        world.identities.authenticate(credential)


def test_a_revoked_credential_shuts_the_agent_out_until_it_enrolls_again() -> None:
    world = World()
    agent_id = uuid.uuid4()
    credential = enroll(world, agent_id)
    assert world.identities.revoke_agent_credentials(WRANGLER, agent_id) == 1
    with pytest.raises(Unauthenticated):
        world.identities.authenticate(credential)
    # Its record stays (a wrangler decides whether to delete it); the agent is shut out, and a
    # join token still cannot re-enroll the known id.
    assert world.registry.get(ADMIN, agent_id).state is AgentState.ONLINE
    with pytest.raises(Forbidden):
        world.registry.join(JOINER, body(agent_id), "127.0.0.1")


def test_token_and_user_changes_are_audited_without_secrets() -> None:
    world = World()
    _, secret = world.identities.create_token(ADMIN, Role.VIEWER, "viewer-1")
    world.identities.revoke_token(ADMIN, "viewer-1")
    world.identities.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    world.identities.remove_user(ADMIN, "alice")
    events = [(e.action, e.target, e.actor) for e in world.recorded()]
    assert events == [
        ("token.create", "token:viewer-1", "admin"),
        ("token.revoke", "token:viewer-1", "admin"),
        ("user.create", "user:alice", "admin"),
        ("user.delete", "user:alice", "admin"),
    ]
    assert all(secret not in repr(e) for e in world.recorded())
    assert all("correct horse" not in repr(e) for e in world.recorded())


def test_only_an_enrolled_agents_own_credential_reports_on_its_tasks() -> None:
    world = World()
    agent_id = uuid.uuid4()
    enroll(world, agent_id)
    job = world.job()
    task = world.task(job)
    world.registry.assign_task(agent(agent_id), agent_id, task.id)
    before = world.get_task(task.id)
    for stranger in (ANONYMOUS_AGENT, agent(uuid.uuid4())):
        with pytest.raises(Forbidden):
            world.jobs.report(stranger, job.id, task.id, TaskReport(state="done"))
    assert world.get_task(task.id) == before
    done = world.jobs.report(agent(agent_id), job.id, task.id, TaskReport(state="done"))
    assert done.is_finished
