"""The ``CreateCounter`` port on the ``limits`` library: a moving window of each payer's creates.

Where the counts live decides how exact the limit is. In memory, each web worker counts on its
own (``FARM_WORKERS`` of them: a client may create up to that many times its budget). With a Redis
queue (``FARM_QUEUE_URL=redis://...``) the counts live in that Redis, shared by every worker and
every master host: the budget is the budget.
"""

from __future__ import annotations

import logging
import time

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from farm_domain.budgets import CreateRate

log = logging.getLogger("farm.creates")

SHARED_SCHEMES = ("redis://", "rediss://")


class LimitsCreateCounter:
    def __init__(
        self, rate: CreateRate, storage: Storage, farm: str = "farm", counted: str = "creates"
    ) -> None:
        # A moving window remembers each create's time (at most ``burst`` per payer), so the
        # wait it reports is exact: until the oldest create in the window leaves it.
        self._item = RateLimitItemPerSecond(rate.burst, rate.window_seconds)
        self._limiter = MovingWindowRateLimiter(storage)
        self._errors = storage.base_exceptions
        # Farms that share one Redis (each its own FARM_QUEUE_NAME) count apart.
        # What is counted (creates, failed logins) is counted apart too.
        self._namespace = f"farm-{counted}:{farm}"

    @classmethod
    def of(
        cls, rate: CreateRate, queue_url: str, queue_name: str = "farm", counted: str = "creates"
    ) -> LimitsCreateCounter:
        """Counts in the queue's Redis when there is one, under the queue's name, in this
        process otherwise."""
        shared = queue_url.startswith(SHARED_SCHEMES)
        storage = RedisStorage(queue_url) if shared else MemoryStorage()
        return cls(rate, storage, queue_name, counted)

    def wait(self, payer: str) -> float | None:
        # Open when the counts cannot be reached: a limit on floods must not stop the farm.
        try:
            if self._limiter.test(self._item, self._namespace, payer):
                return None
            stats = self._limiter.get_window_stats(self._item, self._namespace, payer)
        except self._errors as error:
            log.warning("create budgets not checked", extra={"error": str(error)})
            return None
        return max(0.0, stats.reset_time - time.time())

    def spend(self, payer: str) -> None:
        try:
            self._limiter.hit(self._item, self._namespace, payer)
        except self._errors as error:
            log.warning("create not counted", extra={"error": str(error)})
