"""The access policy as the services apply it: who may do what to which job or agent, and that
a refusal changes nothing (the fake store, audit trail included, is compared before and after)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm_domain.access import Identity
from farm_domain.agents import Agent, AgentChanges
from farm_domain.catalogue import VersionSpec
from farm_domain.enums import AgentState
from farm_domain.errors import Forbidden
from farm_domain.files import TaskLogs
from farm_domain.job_requests import JobChanges, JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from farm_domain.work import Task, TaskLog
from tests.support.builders import World
from tests.support.fakes.collaborators import MemoryFileStore
from tests.support.identities import (
    ADMIN,
    ANONYMOUS_AGENT,
    ARTIST,
    JOINER,
    OTHER_ARTIST,
    VIEWER,
    WRANGLER,
    agent,
)


@attrs.define
class Farmyard:
    """A world with ana's job, whose first task agent A runs, and an idle agent B."""

    world: World
    job_id: int
    task: Task
    a: Agent
    b: Agent

    def changing_nothing(self, actor: Identity, action: Callable[[Identity], object]) -> None:
        """``action`` by ``actor`` is Forbidden and leaves the store as it was."""
        before = copy.deepcopy(self.world.uow.store.data)
        queued = list(self.world.queue.calls)
        with pytest.raises(Forbidden):
            action(actor)
        assert self.world.uow.store.data == before
        assert self.world.queue.calls == queued


@pytest.fixture
def yard() -> Farmyard:
    world = World()
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
    world.software.create(ADMIN, "maya", [VersionSpec("2017")])
    job = world.jobs.submit(ARTIST, JobSpec(title="shot", jobtype="render", start=1, end=3)).job
    a, _ = world.announce(hostname="a")
    b, _ = world.announce(hostname="b")
    task = world.jobs.tasks(ADMIN, job.id)[0]
    world.registry.assign_task(agent(a.id), a.id, task.id)
    world.jobs.report(agent(a.id), job.id, task.id, TaskReport(state="running"))
    world.queue.calls.clear()
    return Farmyard(world, job.id, world.jobs.task(ADMIN, job.id, task.id), a, b)


def test_a_job_records_its_submitter_and_defaults_its_user_to_it(yard: Farmyard) -> None:
    job = yard.world.jobs.get(VIEWER, yard.job_id).job
    assert (job.submitted_by, job.user) == ("ana", "ana")
    named = yard.world.jobs.submit(
        WRANGLER, JobSpec(title="x", jobtype="render", start=1, user="render-user")
    ).job
    assert (named.submitted_by, named.user) == ("wendy", "render-user")


def test_an_artist_changes_only_its_own_jobs(yard: Farmyard) -> None:
    jobs = yard.world.jobs
    for action in (
        lambda me: jobs.update(me, yard.job_id, JobChanges(priority=9)),
        lambda me: jobs.update(me, yard.job_id, JobChanges(state="paused")),
        lambda me: jobs.requeue_failed(me, yard.job_id),
        lambda me: jobs.delete(me, yard.job_id),
    ):
        yard.changing_nothing(OTHER_ARTIST, action)
        yard.changing_nothing(VIEWER, action)
    assert jobs.update(ARTIST, yard.job_id, JobChanges(priority=9)).job.priority == 9
    assert jobs.update(WRANGLER, yard.job_id, JobChanges(priority=3)).job.priority == 3
    assert jobs.delete(ARTIST, yard.job_id)


def test_viewers_and_agents_read_but_do_not_submit(yard: Farmyard) -> None:
    spec = JobSpec(title="x", jobtype="render", start=1)
    for who in (VIEWER, agent(yard.a.id), ANONYMOUS_AGENT):
        assert yard.world.jobs.query(who)
        yard.changing_nothing(who, lambda me: yard.world.jobs.submit(me, spec))
    yard.changing_nothing(JOINER, lambda me: yard.world.jobs.query(me))
    yard.changing_nothing(JOINER, lambda me: yard.world.registry.get(me, yard.a.id))


def test_an_agent_reports_only_on_its_own_tasks(yard: Farmyard) -> None:
    jobs = yard.world.jobs
    done = TaskReport(state="done")
    for who in (agent(yard.b.id), ARTIST, WRANGLER, JOINER):
        yard.changing_nothing(who, lambda me: jobs.report(me, yard.job_id, yard.task.id, done))
    assert jobs.report(agent(yard.a.id), yard.job_id, yard.task.id, done).state is not None


def test_an_agent_writes_only_its_own_tasks_logs(yard: Farmyard) -> None:
    task_logs = TaskLogs(
        yard.world.uow, MemoryFileStore(), yard.world.clock, 1000, policy=yard.world.policy
    )

    def register(me: Identity) -> tuple[TaskLog, bool]:
        return task_logs.register(me, yard.job_id, yard.task.id, 1, "out", None)

    def upload(me: Identity) -> TaskLog:
        return task_logs.upload(me, yard.job_id, yard.task.id, 1, "out", [b"x"])

    yard.changing_nothing(agent(yard.b.id), register)
    yard.changing_nothing(WRANGLER, register)
    log, created = register(agent(yard.a.id))
    assert created and log.identifier == "out"
    yard.changing_nothing(agent(yard.b.id), upload)
    assert upload(agent(yard.a.id)).size == 1
    assert b"".join(task_logs.download(VIEWER, yard.job_id, yard.task.id, 1, "out")) == b"x"


def test_an_agent_appends_only_to_its_own_tasks_logs(yard: Farmyard) -> None:
    files = MemoryFileStore()
    task_logs = TaskLogs(yard.world.uow, files, yard.world.clock, 1000, policy=yard.world.policy)
    task_logs.register(agent(yard.a.id), yard.job_id, yard.task.id, 1, "out", yard.a.id)

    def append(me: Identity) -> TaskLog:
        return task_logs.append(me, yard.job_id, yard.task.id, 1, "out", 0, b"line\n")

    for who in (agent(yard.b.id), WRANGLER, VIEWER, JOINER):
        yard.changing_nothing(who, append)
    assert files.files == {}
    assert append(agent(yard.a.id)).size == 5
    yard.changing_nothing(agent(yard.b.id), append)
    assert list(files.files.values()) == [b"line\n"]


def test_an_agent_speaks_only_for_itself(yard: Farmyard) -> None:
    registry = yard.world.registry
    heartbeat = AgentChanges(free_ram=100, reported_task_ids=frozenset())
    b = agent(yard.b.id)
    yard.changing_nothing(b, lambda me: registry.update(me, yard.a.id, heartbeat))
    yard.changing_nothing(b, lambda me: registry.delete(me, yard.a.id))
    yard.changing_nothing(b, lambda me: registry.assign_task(me, yard.a.id, yard.task.id))
    yard.changing_nothing(
        b, lambda me: yard.world.announce_as(me, yard.a.id, hostname="evil", port=50999)
    )
    assert registry.update(agent(yard.a.id), yard.a.id, heartbeat).free_ram == 100
    # A PyFarm agent admitted by network is bound to no id: it may speak for any agent.
    assert registry.update(ANONYMOUS_AGENT, yard.b.id, heartbeat).free_ram == 100
    assert registry.delete(b, yard.b.id)


def test_a_join_token_enrolls_new_agents_only(yard: Farmyard) -> None:
    yard.changing_nothing(JOINER, lambda me: yard.world.announce_as(me, yard.a.id))
    yard.changing_nothing(
        JOINER,
        lambda me: yard.world.registry.update(me, yard.a.id, AgentChanges(free_ram=1)),
    )
    new, created = yard.world.announce_as(JOINER, hostname="fresh")
    assert created and new.hostname == "fresh"
    # An agent's own credential cannot create another agent.
    yard.changing_nothing(agent(yard.a.id), lambda me: yard.world.announce_as(me, uuid.uuid4()))


def test_operators_decide_what_agents_may_not(yard: Farmyard) -> None:
    registry, a = yard.world.registry, agent(yard.a.id)
    yard.changing_nothing(
        a, lambda me: registry.update(me, yard.a.id, AgentChanges(upgrade_to="2"))
    )
    yard.changing_nothing(
        a, lambda me: registry.update(me, yard.a.id, AgentChanges(restart_requested=True))
    )
    yard.changing_nothing(a, lambda me: registry.set_tags(me, yard.a.id, ["gpu"]))
    yard.changing_nothing(
        ARTIST, lambda me: registry.update(me, yard.a.id, AgentChanges(state="disabled"))
    )
    # A wrangler decides, but does not report the agent's facts for it.
    yard.changing_nothing(WRANGLER, lambda me: registry.update(me, yard.a.id, AgentChanges(ram=64)))
    assert registry.update(WRANGLER, yard.a.id, AgentChanges(upgrade_to="2")).upgrade_to == "2"
    assert registry.set_tags(WRANGLER, yard.a.id, ["gpu"]) == {"gpu"}
    # Sending back what is stored is no decision: an agent may echo its record.
    assert registry.update(a, yard.a.id, AgentChanges(upgrade_to="2", ram=8192)).ram == 8192


def test_an_agent_may_disable_itself_but_never_re_enable_itself(yard: Farmyard) -> None:
    registry, a = yard.world.registry, agent(yard.a.id)
    assert registry.update(a, yard.a.id, AgentChanges(state="disabled")).disabled
    # Its own "online", with or without a task report, leaves the operator's flag alone...
    assert registry.update(a, yard.a.id, AgentChanges(state="online")).disabled
    assert yard.world.announce_as(a, yard.a.id, state="online")[0].disabled
    # ... and only an operator enables it.
    enabled = registry.update(WRANGLER, yard.a.id, AgentChanges(state="online"))
    assert not enabled.disabled and enabled.shown_state is AgentState.ONLINE
    assert registry.update(WRANGLER, yard.a.id, AgentChanges(state="disabled")).disabled


def test_blocklists_catalogue_and_job_types_need_their_roles(yard: Farmyard) -> None:
    world = yard.world
    yard.changing_nothing(ARTIST, lambda me: world.jobs.unblock(me, yard.job_id, yard.a.id))
    world.jobs.unblock(WRANGLER, yard.job_id, yard.a.id)
    for who in (WRANGLER, agent(yard.a.id)):
        yard.changing_nothing(who, lambda me: world.software.create(me, "houdini"))
        yard.changing_nothing(who, lambda me: world.software.delete(me, "maya"))
        yard.changing_nothing(who, lambda me: world.jobtypes.create(me, JobTypeSpec(name="x")))
        yard.changing_nothing(
            who, lambda me: world.jobtypes.new_version(me, "render", JobTypeSpec(name="render"))
        )
        yard.changing_nothing(who, lambda me: world.jobtypes.delete(me, "render"))
    assert [s.name for s in world.software.all_software(VIEWER)] == ["maya"]
    assert world.jobtypes.get(VIEWER, "render").version == 1
    assert world.software.create(ADMIN, "houdini").name == "houdini"
    # What an agent has installed: the agent itself or a wrangler.
    yard.changing_nothing(
        agent(yard.b.id), lambda me: world.software.install(me, yard.a.id, "maya", "2017")
    )
    assert world.software.install(agent(yard.a.id), yard.a.id, "maya", "2017")
    world.software.uninstall(WRANGLER, yard.a.id, "maya", "2017")


def test_jobs_without_a_known_submitter_are_changed_by_wranglers_only(yard: Farmyard) -> None:
    old = yard.world.job(title="from before identities")
    assert old.submitted_by is None
    yard.changing_nothing(ARTIST, lambda me: yard.world.jobs.delete(me, old.id))
    assert yard.world.jobs.delete(WRANGLER, old.id)


def _yard() -> Farmyard:
    world = World()
    world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
    job = world.jobs.submit(ARTIST, JobSpec(title="shot", jobtype="render", start=1)).job
    a, _ = world.announce(hostname="a")
    b, _ = world.announce(hostname="b")
    (task,) = world.jobs.tasks(ADMIN, job.id)
    world.registry.assign_task(ADMIN, a.id, task.id)
    return Farmyard(world, job.id, world.jobs.task(ADMIN, job.id, task.id), a, b)


WHO = ("admin", "wendy", "ana", "bob", "vic", "join", "anonymous agent", "agent a", "agent b")
OPERATIONS: dict[str, frozenset[str]] = {
    # operation: who may (the plain model of the policy)
    "priority of ana's job": frozenset({"admin", "wendy", "ana"}),
    "heartbeat a": frozenset({"admin", "anonymous agent", "agent a"}),
    "disable a": frozenset({"admin", "wendy", "anonymous agent", "agent a"}),
    "online a": frozenset({"admin", "wendy", "anonymous agent", "agent a"}),
    "tag a": frozenset({"admin", "wendy"}),
    "progress on a's task": frozenset({"admin", "anonymous agent", "agent a"}),
    "submit": frozenset({"admin", "wendy", "ana", "bob"}),
    "read": frozenset(WHO) - {"join"},
}
RE_ENABLE = frozenset({"admin", "wendy"})
"""Who clears the operator's disable by sending ``online`` (the agent's own never does)."""


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WHO), st.sampled_from(sorted(OPERATIONS))), max_size=12))
def test_every_identity_does_exactly_what_the_policy_allows(
    steps: list[tuple[str, str]],
) -> None:
    yard = _yard()
    world = yard.world
    identities = {
        "admin": ADMIN,
        "wendy": WRANGLER,
        "ana": ARTIST,
        "bob": OTHER_ARTIST,
        "vic": VIEWER,
        "join": JOINER,
        "anonymous agent": ANONYMOUS_AGENT,
        "agent a": agent(yard.a.id),
        "agent b": agent(yard.b.id),
    }
    run: dict[str, Callable[[Identity], object]] = {
        "priority of ana's job": lambda me: world.jobs.update(
            me, yard.job_id, JobChanges(priority=len(me.name))
        ),
        "heartbeat a": lambda me: world.registry.update(
            me, yard.a.id, AgentChanges(free_ram=7, reported_task_ids=frozenset({yard.task.id}))
        ),
        "disable a": lambda me: world.registry.update(
            me, yard.a.id, AgentChanges(state="disabled")
        ),
        "online a": lambda me: world.registry.update(me, yard.a.id, AgentChanges(state="online")),
        "tag a": lambda me: world.registry.set_tags(me, yard.a.id, [me.name[:10]]),
        "progress on a's task": lambda me: world.jobs.report(
            me, yard.job_id, yard.task.id, TaskReport(progress=0.5)
        ),
        "submit": lambda me: world.jobs.submit(me, JobSpec(title="x", jobtype="render", start=1)),
        "read": lambda me: (world.jobs.query(me), world.registry.query(me)),
    }
    disabled = False
    for who, operation in steps:
        me = identities[who]
        if who in OPERATIONS[operation]:
            run[operation](me)
            if operation == "disable a":
                disabled = True
            elif operation == "online a" and who in RE_ENABLE:
                disabled = False
        else:
            yard.changing_nothing(me, run[operation])
        assert world.registry.get(ADMIN, yard.a.id).disabled is disabled
