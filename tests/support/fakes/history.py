"""The history's fake repository, and what the fake tasks' and agents' repositories record
with, as the SQL ones do in the statement's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import attrs

from farm_domain.history import (
    AGENT_HISTORY_KEPT,
    TASK_HISTORY_KEPT,
    HistoryPage,
    StateChange,
)
from tests.support.fakes.store import FakeData, FakeStore


def record_task_changes(
    data: FakeData, store: FakeStore, changes: Iterable[StateChange | None]
) -> None:
    for change in changes:
        if change is None:
            continue
        data.task_history.append(attrs.evolve(change, id=store.next_id()))
        if change.after == "queued":
            mine = [c for c in data.task_history if c.task_id == change.task_id]
            dropped = {c.id for c in mine[:-TASK_HISTORY_KEPT]}
            data.task_history = [c for c in data.task_history if c.id not in dropped]


def record_agent_change(data: FakeData, store: FakeStore, change: StateChange | None) -> None:
    if change is None:
        return
    data.agent_history.append(attrs.evolve(change, id=store.next_id()))
    mine = [c for c in data.agent_history if c.agent_id == change.agent_id]
    dropped = {c.id for c in mine[:-AGENT_HISTORY_KEPT]}
    data.agent_history = [c for c in data.agent_history if c.id not in dropped]


def _page(changes: list[StateChange], page: HistoryPage) -> list[StateChange]:
    newest = sorted(changes, key=lambda c: c.id, reverse=True)
    if page.before is not None:
        newest = [c for c in newest if c.id < page.before]
    return newest[: page.limit]


class FakeHistoryRepository:
    """Rows of a deleted task or agent read as gone, as ON DELETE CASCADE drops them."""

    def __init__(self, data: FakeData) -> None:
        self._d = data

    def of_task(self, task_id: int, page: HistoryPage) -> list[StateChange]:
        if task_id not in self._d.tasks:
            return []
        return _page([c for c in self._d.task_history if c.task_id == task_id], page)

    def of_agent(self, agent_id: uuid.UUID, page: HistoryPage) -> list[StateChange]:
        if agent_id not in self._d.agents:
            return []
        return _page([c for c in self._d.agent_history if c.agent_id == agent_id], page)
