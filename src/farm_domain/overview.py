"""The farm at a glance: agents by state, frames done hour by hour, failures by reason."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import attrs

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.ports import Clock, FarmStatistics

HOURS = 24


@attrs.frozen
class FarmSnapshot:
    """``agents``: how many agents show each state (``online``, ``running``, ``offline``,
    ``disabled``) and ``busy`` how many hold unfinished tasks; ``done_per_hour``: frames done in
    each of the last HOURS hours, oldest first (each hour by its start, UTC);
    ``failures``: failed attempts of the last HOURS hours by reason, most first."""

    agents: dict[str, int]
    busy: int
    done_per_hour: list[tuple[datetime, int]]
    failures: list[tuple[str, int]]


def hourly(
    counts: Mapping[datetime, int], now: datetime, hours: int = HOURS
) -> list[tuple[datetime, int]]:
    """``counts`` (keyed by the start of their hour) as the last ``hours`` hours up to ``now``'s,
    oldest first, an hour without a count as zero."""
    current = now.replace(minute=0, second=0, microsecond=0)
    starts = [current - timedelta(hours=n) for n in range(hours - 1, -1, -1)]
    return [(start, counts.get(start, 0)) for start in starts]


class FarmOverview:
    def __init__(self, statistics: FarmStatistics, clock: Clock, policy: AccessPolicy) -> None:
        self._statistics = statistics
        self._clock = clock
        self._policy = policy

    def snapshot(self, actor: Identity) -> FarmSnapshot:
        """Raises Forbidden, Unavailable."""
        self._policy.require(actor, Permission.READ)
        now = self._clock.now()
        since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
        agents, busy = self._statistics.agent_counts()
        done = self._statistics.done_per_hour(since)
        failures = self._statistics.failures_by_reason(since)
        return FarmSnapshot(
            agents={
                state: agents.get(state, 0)
                for state in ("online", "running", "offline", "disabled")
            },
            busy=busy,
            done_per_hour=hourly(done, now),
            failures=sorted(failures.items(), key=lambda item: (-item[1], item[0])),
        )
