"""Create budgets: how many things one client may create, so that no client floods the farm.

A create is anything a client adds (an agent's first announce, a job, a software version, a job
type, a log, an upload); changing what exists (a re-announce, a heartbeat, a task's report) is
not one. Each client has a budget of its own: the credential it presents (a token, an agent's
own credential), or, for a request admitted by network without one, its address. Refused
creates change nothing and do not spend the budget.
"""

from __future__ import annotations

import math

import attrs

from farm_domain.access import Identity
from farm_domain.errors import TooManyRequests
from farm_domain.ports import CreateCounter


@attrs.frozen
class CreateRate:
    """At most ``burst`` creates in any ``window_seconds`` (``burst / per_second``, rounded
    up): a client may create ``burst`` things at once, and ``per_second`` a second for long.
    Either 0: no limit."""

    per_second: float
    burst: int

    @property
    def limited(self) -> bool:
        return self.per_second > 0 and self.burst > 0

    @property
    def window_seconds(self) -> int:
        return max(1, math.ceil(self.burst / self.per_second)) if self.limited else 0


def payer(actor: Identity) -> str:
    """Whose budget ``actor``'s creates spend."""
    if actor.anonymous:
        return f"address:{actor.address}"
    return f"credential:{actor.name}"


class CreateBudgets:
    """The farm's create budgets, counted by ``counter`` (None: no limit)."""

    def __init__(self, counter: CreateCounter | None) -> None:
        self._counter = counter

    def check(self, actor: Identity) -> None:
        """Before a create: raises TooManyRequests when ``actor`` has no create left."""
        if self._counter is None:
            return
        wait = self._counter.wait(payer(actor))
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"too many creates from {actor.label}: retry in {seconds} s "
                "(FARM_CREATE_RATE, FARM_CREATE_BURST)",
                retry_after=seconds,
            )

    def spend(self, actor: Identity) -> None:
        """After a create: one fewer left for ``actor``."""
        if self._counter is not None:
            self._counter.spend(payer(actor))
