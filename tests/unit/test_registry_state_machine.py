"""A state machine drives AgentRegistry and AssignmentReconciler against a plain model."""

from __future__ import annotations

import uuid

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from farm_domain.agents import AgentChanges
from farm_domain.enums import AgentState, WorkState
from tests.support.builders import World
from tests.support.identities import ADMIN

GRACE = 30
REQUEUE = 1


@attrs.define
class ModelAgent:
    state: str = "online"
    disabled: bool = False

    @property
    def shown(self) -> str:
        return "disabled" if self.disabled and self.state != "offline" else self.state


@attrs.define
class ModelTask:
    owner: uuid.UUID | None = None
    state: str | None = None  # None, "running", "done", "failed"
    failures: int = 0
    attempts: int = 0
    sent_at: float | None = None  # model time the task was sent; None = not sent

    @property
    def active(self) -> bool:
        return self.state not in ("done", "failed")


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World(grace=GRACE)
        self.time = 0.0
        self.agents: dict[uuid.UUID, ModelAgent] = {}
        self.tasks: dict[int, ModelTask] = {}
        job = self.world.job(requeue=REQUEUE)
        for frame in range(6):
            task = self.world.task(job, frame=float(frame))
            self.tasks[task.id] = ModelTask()
        self.ids = [uuid.UUID(int=n) for n in (1, 2, 3)]

    # -- model rules, written plainly --------------------------------------------------------

    def _release(self, agent_id: uuid.UUID) -> None:
        for task in self.tasks.values():
            if task.owner == agent_id and task.active:
                task.owner, task.state, task.sent_at = None, None, None

    def _reconcile(self, agent_id: uuid.UUID, reported: set[int]) -> None:
        for task_id, task in self.tasks.items():
            if task.owner != agent_id or not task.active or task_id in reported:
                continue
            if task.sent_at is None or self.time - task.sent_at < GRACE:
                continue
            task.failures += 1
            if task.failures <= REQUEUE:
                task.owner, task.state, task.sent_at = None, None, None
            else:
                task.state = "failed"

    def _set_state(self, agent_id: uuid.UUID, state: str, from_agent: bool) -> None:
        model = self.agents[agent_id]
        was_offline = model.state == "offline"
        if state == "disabled":
            model.disabled = True
        elif state == "offline":
            model.state = "offline"
        else:
            model.state = state
            model.disabled = model.disabled and from_agent
        if model.state == "offline" and not was_offline:
            self._release(agent_id)

    # -- rules ------------------------------------------------------------------------------

    @rule(index=st.integers(0, 2), state=st.sampled_from(["online", "running", "offline"]))
    def announce(self, index: int, state: str) -> None:
        agent_id = self.ids[index]
        _, created = self.world.announce(agent_id, state=state)
        assert created == (agent_id not in self.agents)
        if created:
            self.agents[agent_id] = ModelAgent(state=state)
        else:
            self._set_state(agent_id, state, from_agent=True)

    @precondition(lambda self: self.agents)
    @rule(data=st.data(), state=st.sampled_from(["online", "offline", "disabled", "running"]))
    def operator_sets_state(self, data: st.DataObject, state: str) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.agents)))
        self.world.registry.update(ADMIN, agent_id, AgentChanges(state=state))
        self._set_state(agent_id, state, from_agent=False)

    @precondition(lambda self: self.agents)
    @rule(data=st.data(), state=st.sampled_from(["online", "running"]))
    def heartbeat(self, data: st.DataObject, state: str) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.agents)))
        mine = sorted(i for i, t in self.tasks.items() if t.owner == agent_id)
        reported = set(data.draw(st.lists(st.sampled_from(mine), unique=True))) if mine else set()
        self.world.registry.update(
            ADMIN, agent_id, AgentChanges(state=state, reported_task_ids=frozenset(reported))
        )
        self._set_state(agent_id, state, from_agent=True)
        if self.agents[agent_id].state != "offline":
            self._reconcile(agent_id, reported)

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def assign_by_hand(self, data: st.DataObject) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.agents)))
        task_id = data.draw(st.sampled_from(sorted(self.tasks)))
        task = self.tasks[task_id]
        if task.state == "done":
            return
        self.world.registry.assign_task(ADMIN, agent_id, task_id)
        task.owner, task.state, task.sent_at = agent_id, None, None
        task.attempts += 1

    @rule(data=st.data())
    def dispatcher_sends_a_task(self, data: st.DataObject) -> None:
        waiting = sorted(
            i
            for i, t in self.tasks.items()
            if t.owner is not None and t.active and t.sent_at is None
        )
        if not waiting:
            return
        task_id = data.draw(st.sampled_from(waiting))
        with self.world.uow() as uow:
            task = uow.tasks.get(task_id)
            assert task is not None
            now = self.world.clock.now()
            sent = attrs.evolve(task, sent_to_agent=True, sent_at=now)
            uow.tasks.save(sent, task, reason="accepted", at=now)
            uow.commit()
        self.tasks[task_id].sent_at = self.time

    @rule(data=st.data())
    def agent_finishes_a_task(self, data: st.DataObject) -> None:
        running = sorted(
            i
            for i, t in self.tasks.items()
            if t.owner is not None and t.active and t.sent_at is not None
        )
        if not running:
            return
        task_id = data.draw(st.sampled_from(running))
        with self.world.uow() as uow:
            task = uow.tasks.get(task_id)
            assert task is not None
            done = attrs.evolve(task, state=WorkState.DONE)
            uow.tasks.save(done, task, reason="done", at=self.world.clock.now())
            uow.commit()
        self.tasks[task_id].state = "done"

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.agents)))
        assert self.world.registry.delete(ADMIN, agent_id)
        self._release(agent_id)
        for task in self.tasks.values():
            if task.owner == agent_id:
                task.owner = None
        del self.agents[agent_id]

    @rule(seconds=st.sampled_from([1, 10, 29, 31, 60]))
    def time_passes(self, seconds: int) -> None:
        self.world.clock.advance(seconds)
        self.time += seconds

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def agents_match_the_model(self) -> None:
        listed = {a.id for a in self.world.registry.query(ADMIN)}
        assert listed == set(self.agents)
        for agent_id, model in self.agents.items():
            assert self.world.registry.get(ADMIN, agent_id).shown_state is AgentState.parse(
                model.shown, "state"
            )

    @invariant()
    def tasks_match_the_model(self) -> None:
        for task_id, model in self.tasks.items():
            task = self.world.get_task(task_id)
            assert task.agent_id == model.owner
            assert (task.state.value if task.state else None) == model.state
            assert (task.failures, task.attempts) == (model.failures, model.attempts)
            assert task.sent_to_agent == (model.sent_at is not None) or not model.active

    @invariant()
    def no_active_task_belongs_to_a_missing_agent(self) -> None:
        for task_id in self.tasks:
            task = self.world.get_task(task_id)
            if not task.is_finished and task.agent_id is not None:
                assert task.agent_id in self.agents


RegistryMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestRegistryMachine = RegistryMachine.TestCase
