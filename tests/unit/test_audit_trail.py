"""The audit trail on fakes: every change through a service is an event, recorded with it;
a heartbeat that changes nothing is none."""

from __future__ import annotations

from datetime import timedelta

import pytest

from farm_domain.access import Role
from farm_domain.agents import AgentChanges
from farm_domain.answers import Unreachable
from farm_domain.catalogue import VersionSpec
from farm_domain.errors import Forbidden, ValidationError
from farm_domain.events import EventQuery
from farm_domain.job_requests import JobChanges, JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from tests.support.builders import World
from tests.support.identities import ADMIN, ARTIST, JOINER, VIEWER, WRANGLER, agent


@pytest.fixture
def world() -> World:
    world = World()
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
    return world


def actions(world: World, **filters: object) -> list[str]:
    return [event.action for event in world.recorded(**filters)]


def test_a_submission_says_who_from_where_and_what(world: World) -> None:
    job = world.jobs.submit(ARTIST, JobSpec(title="shot", jobtype="render", start=1, end=4)).job
    (event,) = world.recorded(target=f"job:{job.id}")
    assert (event.actor, event.role, event.address) == ("ana", Role.ARTIST, "10.0.0.3")
    assert (event.action, event.at, event.before) == ("job.submit", world.clock.now(), None)
    assert event.after is not None
    assert event.after["title"] == "shot" and event.after["tasks"] == 4


def test_job_changes_hold_only_the_fields_that_changed(world: World) -> None:
    job = world.jobs.submit(ARTIST, JobSpec(title="shot", jobtype="render", start=1)).job
    target = f"job:{job.id}"
    world.jobs.update(ARTIST, job.id, JobChanges(priority=5, title="shot"))
    world.jobs.update(ARTIST, job.id, JobChanges(priority=5))  # no change: no event
    world.jobs.update(WRANGLER, job.id, JobChanges(state="paused", tags=["a"]))
    world.jobs.update(WRANGLER, job.id, JobChanges(state="queued"))
    changes = [(e.actor, e.before, e.after) for e in world.recorded(target=target)[1:]]
    assert changes == [
        ("ana", {"priority": 0}, {"priority": 5}),
        ("wendy", {"tags": [], "state": "queued"}, {"tags": ["a"], "state": "paused"}),
        ("wendy", {"state": "paused"}, {"state": "queued"}),
    ]
    world.jobs.delete(ARTIST, job.id)
    (deleted,) = world.recorded(target=target, actor="ana")[-1:]
    assert deleted.action == "job.delete" and deleted.before is not None
    assert deleted.before["submitted_by"] == "ana"


def test_refusals_and_bad_requests_record_nothing(world: World) -> None:
    job = world.jobs.submit(ARTIST, JobSpec(title="shot", jobtype="render", start=1)).job
    before = world.recorded()
    with pytest.raises(Forbidden):
        world.jobs.update(VIEWER, job.id, JobChanges(priority=5))
    with pytest.raises(ValidationError):
        world.jobs.update(ARTIST, job.id, JobChanges(priority=5000))
    assert world.recorded() == before


def test_an_agents_life_is_on_the_trail_but_not_its_quiet_heartbeats(world: World) -> None:
    a, _ = world.announce(hostname="a")
    me = agent(a.id)
    target = f"agent:{a.id}"
    assert actions(world, target=target) == ["agent.enroll"]
    quiet = AgentChanges(free_ram=100, time_offset=3, reported_task_ids=frozenset())
    for _ in range(3):
        world.clock.advance(5)
        world.registry.update(me, a.id, quiet)
        world.announce_as(me, a.id, hostname="a")
    assert actions(world, target=target) == ["agent.enroll"]
    world.registry.update(me, a.id, AgentChanges(state="running", reported_task_ids=frozenset()))
    world.registry.update(WRANGLER, a.id, AgentChanges(state="disabled"))
    world.registry.update(WRANGLER, a.id, AgentChanges(state="online"))
    world.registry.set_tags(WRANGLER, a.id, ["gpu"])
    world.registry.set_tags(WRANGLER, a.id, ["gpu"])  # unchanged: no event
    world.announce_as(me, a.id, hostname="a", port=50001)
    world.registry.delete(me, a.id)
    events = world.recorded(target=target)
    assert [(e.actor, e.action, e.before, e.after) for e in events[1:]] == [
        (me.name, "agent.state", {"state": "online"}, {"state": "running"}),
        ("wendy", "agent.disable", {"disabled": False}, {"disabled": True}),
        ("wendy", "agent.enable", {"disabled": True}, {"disabled": False}),
        ("wendy", "agent.state", {"state": "running"}, {"state": "online"}),
        ("wendy", "agent.tags", {"tags": []}, {"tags": ["gpu"]}),
        (me.name, "agent.update", {"port": 50000}, {"port": 50001}),
        (me.name, "agent.delete", events[-1].before, None),
    ]


def test_the_masters_own_changes_are_its_events(world: World) -> None:
    job = world.jobs.submit(ARTIST, JobSpec(title="shot", jobtype="render", start=1)).job
    a, _ = world.announce()
    assert world.dispatcher.assign_tasks_to_agent(a.id)
    world.client.answer("tasks", Unreachable("refused"))
    world.dispatcher.poll_agent(a.id)
    by_master = [(e.action, e.target, e.after) for e in world.recorded(actor="master")]
    assert by_master == [
        ("job.state", f"job:{job.id}", {"state": "running"}),
        (
            "agent.state",
            f"agent:{a.id}",
            {"state": "offline", "reason": "poll failed: unreachable: refused"},
        ),
        ("job.state", f"job:{job.id}", {"state": "queued"}),
    ]
    assert {e.role for e in world.recorded(actor="master")} == {Role.ADMIN}


def test_reports_that_finish_a_job_record_its_state_by_the_agent(world: World) -> None:
    job = world.jobs.submit(ARTIST, JobSpec(title="shot", jobtype="render", start=1)).job
    a, _ = world.announce()
    (task,) = world.jobs.tasks(ADMIN, job.id)
    world.registry.assign_task(agent(a.id), a.id, task.id)
    world.jobs.report(agent(a.id), job.id, task.id, TaskReport(state="running"))
    world.jobs.report(agent(a.id), job.id, task.id, TaskReport(progress=0.5))
    world.jobs.report(agent(a.id), job.id, task.id, TaskReport(state="done"))
    assert [(e.action, e.after) for e in world.recorded(target=f"job:{job.id}")][1:] == [
        ("task.assign", {"task": task.id, "agent": str(a.id), "attempt": 1}),
        ("job.state", {"state": "running"}),
        ("job.state", {"state": "done"}),
    ]


def test_requeues_unblocks_catalogue_and_job_types_are_events(world: World) -> None:
    job = world.jobs.submit(ARTIST, JobSpec(title="shot", jobtype="render", start=1)).job
    a, _ = world.announce()
    (task,) = world.jobs.tasks(ADMIN, job.id)
    world.registry.assign_task(ADMIN, a.id, task.id)
    world.jobs.report(ADMIN, job.id, task.id, TaskReport(state="failed"))  # requeued (3 allowed)
    world.jobs.unblock(WRANGLER, job.id, a.id)
    world.jobs.unblock(WRANGLER, job.id, a.id)  # nothing left to clear: no event
    assert actions(world, target=f"blocklist:{job.id}/{a.id}") == ["blocklist.clear"]
    assert world.jobs.requeue_failed(ARTIST, job.id) == []
    assert "job.requeue" not in actions(world)
    world.software.create(ADMIN, "maya", [VersionSpec("1")])
    world.software.add_version(ADMIN, "maya", VersionSpec("2"))
    world.software.update(ADMIN, "maya", versions=[VersionSpec("2")])
    world.software.delete_version(ADMIN, "maya", "2")
    world.software.delete(ADMIN, "maya")
    assert actions(world, target="software:maya") == [
        "software.create",
        "software.version.add",
        "software.update",
        "software.version.delete",
        "software.delete",
    ]
    world.jobtypes.new_version(ADMIN, "render", JobTypeSpec(name="render", code="print(1)"))
    world.jobtypes.create(ADMIN, JobTypeSpec(name="comp"))
    world.jobtypes.delete(ADMIN, "comp")
    assert actions(world, target="jobtype:render") == ["jobtype.create", "jobtype.version"]
    assert actions(world, target="jobtype:comp") == ["jobtype.create", "jobtype.delete"]


def test_the_trail_is_read_newest_first_and_filtered(world: World) -> None:
    for n in range(3):
        world.clock.advance(60)
        world.jobs.submit(
            ARTIST if n % 2 else WRANGLER, JobSpec(title=f"j{n}", jobtype="render", start=1)
        )
    newest = world.events.query(VIEWER, EventQuery(limit=2))
    assert [e.after["title"] for e in newest if e.after] == ["j2", "j1"]
    since = world.clock.now() - timedelta(seconds=60)
    assert len(world.events.query(VIEWER, EventQuery(since=since))) == 2
    assert [e.actor for e in world.events.query(VIEWER, EventQuery(actor="ana"))] == ["ana"]
    with pytest.raises(ValidationError, match="limit"):
        EventQuery(limit=0)
    with pytest.raises(ValidationError, match="limit"):
        EventQuery(limit=1001)
    with pytest.raises(Forbidden):
        world.events.query(JOINER)
