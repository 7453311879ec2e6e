"""A state machine drives the services that change tasks and agents (the scheduler, the
agents' answers and reports, the wranglers' controls, lost agents) and checks, after every
step, that each task's and agent's change of state left exactly one history row with the state
it left, the state it reached, and the reason of the step that made it; and that each history
is one chain that starts at the task's submission or the agent's registration."""

from __future__ import annotations

import re
import uuid
from itertools import pairwise

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from farm_domain.agents import AgentChanges
from farm_domain.answers import Accepted, Refused, Unreachable
from farm_domain.controls import JobAction, Running, TaskAction
from farm_domain.errors import Conflict
from farm_domain.history import (
    ACCEPTED,
    DISPATCHED,
    MAX_HISTORY,
    REGISTERED,
    SUBMITTED,
    HistoryPage,
    StateChange,
    agent_state,
    task_state,
)
from farm_domain.job_requests import JobSpec, TaskReport
from farm_domain.jobtypes import JobTypeSpec
from tests.support.builders import World
from tests.support.identities import ADMIN, WRANGLER, agent

GRACE = 30
EVERY = HistoryPage(limit=MAX_HISTORY)

Reason = str | re.Pattern[str]


class HistoryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World(grace=GRACE)
        self.world.jobtypes.create(ADMIN, JobTypeSpec(name="render"))
        spec = JobSpec(title="job", jobtype="render", start=0, end=4, requeue=2)
        self.job = self.world.jobs.submit(WRANGLER, spec).job
        self.task_ids = [t.id for t in self.world.jobs.tasks(ADMIN, self.job.id)]
        self.agent_ids = [uuid.UUID(int=n) for n in (1, 2)]
        for agent_id in self.agent_ids:
            self.world.announce(agent_id, peer="10.0.0.9")
        # Before any step, each history holds its creation alone.
        created = self.world.clock.now()
        assert [(c.task_id, c.before, c.after, c.reason, c.at) for c in self._task_rows()] == [
            (i, None, "queued", SUBMITTED, created) for i in self.task_ids
        ]
        assert [(c.agent_id, c.before, c.after, c.reason) for c in self._agent_rows()] == [
            (i, None, "online", REGISTERED) for i in self.agent_ids
        ]
        self.tasks_before = self._task_states()
        self.agents_before = self._agent_states()
        self.seen = {"tasks": len(self._task_rows()), "agents": len(self._agent_rows())}

    # -- reading the world ------------------------------------------------------------------

    def _task_states(self) -> dict[int, str]:
        return {i: task_state(self.world.get_task(i)) for i in self.task_ids}

    def _agent_states(self) -> dict[uuid.UUID, str]:
        with self.world.uow() as uow:
            found = {i: uow.agents.get(i) for i in self.agent_ids}
        return {i: agent_state(a) for i, a in found.items() if a is not None}

    def _task_rows(self) -> list[StateChange]:
        with self.world.uow() as uow:
            rows = [c for i in self.task_ids for c in uow.history.of_task(i, EVERY)]
        return sorted(rows, key=lambda c: c.id)

    def _agent_rows(self) -> list[StateChange]:
        with self.world.uow() as uow:
            rows = [c for i in self.agent_ids for c in uow.history.of_agent(i, EVERY)]
        return sorted(rows, key=lambda c: c.id)

    def _check(
        self,
        task_reason: Reason | None = None,
        agent_reason: Reason | None = None,
        steps_per_task: int = 1,
    ) -> None:
        """What the step changed left one row per change (``steps_per_task``: the most one
        task may take in the step, such as a cancel that takes it from its agent and then
        cancels it), from the state before to the state after, with the step's reason."""
        tasks_after, agents_after = self._task_states(), self._agent_states()
        task_rows, agent_rows = self._task_rows(), self._agent_rows()
        new_tasks = task_rows[self.seen["tasks"] :]
        new_agents = agent_rows[self.seen["agents"] :]
        for task_id in self.task_ids:
            mine = [c for c in new_tasks if c.task_id == task_id]
            before, after = self.tasks_before[task_id], tasks_after[task_id]
            if before == after:
                assert mine == [], (task_id, mine)
                continue
            assert 1 <= len(mine) <= steps_per_task, (task_id, before, after, mine)
            assert (mine[0].before, mine[-1].after) == (before, after)
            assert all(old.after == new.before for old, new in pairwise(mine))
            for change in mine:
                assert change.job_id == self.job.id and change.at == self.world.clock.now()
                _assert_reason(change.reason, task_reason)
        for agent_id, now in agents_after.items():
            mine = [c for c in new_agents if c.agent_id == agent_id]
            was = self.agents_before.get(agent_id)
            if was == now:
                assert mine == [], (agent_id, mine)
                continue
            ((change,),) = [mine]
            assert (change.before, change.after) == (was, now)
            _assert_reason(change.reason, agent_reason)
        self.tasks_before, self.agents_before = tasks_after, agents_after
        self.seen = {"tasks": len(task_rows), "agents": len(agent_rows)}

    # -- the steps --------------------------------------------------------------------------

    @rule()
    def scheduler_assigns(self) -> None:
        self.world.dispatcher.assign_tasks()
        self._check(task_reason=DISPATCHED)

    @rule(agent_index=st.sampled_from([0, 1]))
    def agent_accepts_its_tasks(self, agent_index: int) -> None:
        self.world.client.answer("assign", Accepted())
        self.world.dispatcher.send_tasks_to_agent(self.agent_ids[agent_index])
        self._check(task_reason=ACCEPTED)

    @rule(agent_index=st.sampled_from([0, 1]))
    def agent_refuses_its_tasks(self, agent_index: int) -> None:
        self.world.client.answer("assign", Refused("no blender"))
        self.world.dispatcher.send_tasks_to_agent(self.agent_ids[agent_index])
        self._check(task_reason="refused by the agent: no blender")

    @rule(agent_index=st.sampled_from([0, 1]))
    def agent_is_unreachable(self, agent_index: int) -> None:
        self.world.client.answer("assign", Unreachable("refused"))
        self.world.dispatcher.send_tasks_to_agent(self.agent_ids[agent_index])
        self._check(
            task_reason="agent unreachable: refused", agent_reason="agent unreachable: refused"
        )

    @rule(data=st.data(), state=st.sampled_from(["running", "done", "failed"]))
    def agent_reports(self, data: st.DataObject, state: str) -> None:
        task_id = data.draw(st.sampled_from(self.task_ids))
        task = self.world.get_task(task_id)
        if task.agent_id is None:
            return
        reason = "exit" if state == "failed" else None
        try:
            self.world.jobs.report(
                agent(task.agent_id), self.job.id, task_id, TaskReport(state=state, reason=reason)
            )
        except Conflict:
            pass
        said = "" if reason is None else f": {reason}"
        self._check(task_reason=f"reported by its agent{said}")

    @rule(data=st.data(), action=st.sampled_from(list(TaskAction)))
    def wrangler_acts_on_a_task(self, data: st.DataObject, action: TaskAction) -> None:
        task_id = data.draw(st.sampled_from(self.task_ids))
        try:
            self.world.controls.task(WRANGLER, action, self.job.id, task_id)
        except Conflict:
            pass
        done = {"retry": "retried", "skip": "skipped", "stop": "stopped"}[action.value]
        self._check(task_reason=f"{done} by wendy")

    @rule(action=st.sampled_from(list(JobAction)), running=st.sampled_from(list(Running)))
    def wrangler_acts_on_the_job(self, action: JobAction, running: Running) -> None:
        try:
            self.world.controls.job(WRANGLER, action, self.job.id, running)
        except Conflict:
            pass
        reason = {
            JobAction.CANCEL: "canceled by wendy",
            JobAction.PAUSE: "paused by wendy",
            JobAction.REQUEUE: "requeued by wendy",
            JobAction.RESUME: None,  # changes no task
        }[action]
        self._check(task_reason=reason, steps_per_task=2 if action is JobAction.CANCEL else 1)

    @rule(data=st.data(), state=st.sampled_from(["online", "disabled"]))
    def wrangler_enables_or_disables_an_agent(self, data: st.DataObject, state: str) -> None:
        agent_id = data.draw(st.sampled_from(self.agent_ids))
        self.world.registry.update(WRANGLER, agent_id, AgentChanges(state=state))
        self._check(agent_reason="set by wendy")

    @rule(data=st.data(), state=st.sampled_from(["online", "offline"]))
    def agent_says_it_is_online_or_going_offline(self, data: st.DataObject, state: str) -> None:
        agent_id = data.draw(st.sampled_from(self.agent_ids))
        self.world.registry.update(agent(agent_id), agent_id, AgentChanges(state=state))
        self._check(task_reason="agent went offline", agent_reason="reported by the agent")

    @rule(data=st.data(), state=st.sampled_from(["online", "offline"]))
    def a_known_agent_announces_itself_again(self, data: st.DataObject, state: str) -> None:
        """Its registration is recorded once: announcing again is a change like any other."""
        agent_id = data.draw(st.sampled_from(self.agent_ids))
        self.world.announce_as(agent(agent_id), agent_id, peer="10.0.0.9", state=state)
        self._check(
            task_reason=re.compile("agent went offline|lost: .*"),
            agent_reason="reported by the agent",
        )

    @rule(data=st.data())
    def agent_reports_nothing_it_was_sent(self, data: st.DataObject) -> None:
        """A heartbeat without its tasks, after the grace period: the ones sent are lost."""
        agent_id = data.draw(st.sampled_from(self.agent_ids))
        self.world.clock.advance(GRACE + 1)
        self.world.registry.update(
            agent(agent_id), agent_id, AgentChanges(state="online", reported_task_ids=frozenset())
        )
        self._check(
            task_reason="lost: missing from the agent's report",
            agent_reason="reported by the agent",
        )

    @rule(data=st.data())
    def agent_heartbeats_what_it_holds(self, data: st.DataObject) -> None:
        agent_id = data.draw(st.sampled_from(self.agent_ids))
        with self.world.uow() as uow:
            held = frozenset(t.id for t in uow.tasks.active_of_agent(agent_id))
        self.world.registry.update(
            agent(agent_id), agent_id, AgentChanges(free_ram=1000, reported_task_ids=held)
        )
        self._check(task_reason=re.compile("lost: .*"), agent_reason="reported by the agent")

    # -- over the whole history -------------------------------------------------------------

    @invariant()
    def each_history_is_one_chain_from_its_creation_to_the_current_state(self) -> None:
        # (Far from the caps: a step adds at most two rows to a task.)
        for task_id in self.task_ids:
            with self.world.uow() as uow:
                rows = list(reversed(uow.history.of_task(task_id, EVERY)))
            assert (rows[0].before, rows[0].after, rows[0].reason) == (None, "queued", SUBMITTED)
            assert all(old.after == new.before for old, new in pairwise(rows))
            assert rows[-1].after == self.tasks_before[task_id]
            assert all(row.before != row.after for row in rows)
        for agent_id in self.agent_ids:
            with self.world.uow() as uow:
                rows = list(reversed(uow.history.of_agent(agent_id, EVERY)))
            assert (rows[0].before, rows[0].reason) == (None, REGISTERED)
            assert all(old.after == new.before for old, new in pairwise(rows))
            assert rows[-1].after == self.agents_before[agent_id]


def _assert_reason(reason: str, expected: Reason | None) -> None:
    assert expected is not None, f"a step that should change nothing recorded {reason!r}"
    if isinstance(expected, re.Pattern):
        assert expected.fullmatch(reason), reason
    else:
        assert reason == expected


HistoryMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestHistoryMachine = HistoryMachine.TestCase
