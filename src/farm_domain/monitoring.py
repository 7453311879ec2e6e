"""What the master tells about itself: ``/metrics`` for scrapers, readiness for orchestrators."""

from __future__ import annotations

from collections.abc import Sequence

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.errors import Unauthenticated
from farm_domain.networks import Network, address_in
from farm_domain.ports import Exposition, MetricsSource, ReadinessProbe


class Monitoring:
    """Reads the metrics for whoever may scrape them, and the master's readiness for anyone."""

    def __init__(
        self,
        source: MetricsSource,
        probe: ReadinessProbe,
        networks: Sequence[Network],
        policy: AccessPolicy,
    ) -> None:
        """``networks``: scrapers from these need no credential (FARM_METRICS_NETWORKS)."""
        self._source = source
        self._probe = probe
        self._networks = tuple(networks)
        self._policy = policy

    def metrics(
        self, actor: Identity | None, address: str | None, accept: str | None = None
    ) -> Exposition:
        """Every measurement, for a scraper in the metrics networks or a credential that may
        read the farm. Raises Unauthenticated (neither), Forbidden (a credential without READ).
        """
        if not self._from_metrics_network(address):
            if actor is None:
                raise Unauthenticated(
                    "a credential is required outside FARM_METRICS_NETWORKS "
                    "(Authorization: Bearer <token>)"
                )
            self._policy.require(actor, Permission.READ)
        return self._source.exposition(accept)

    def problems(self) -> list[str]:
        """What keeps the master from being ready (see ``ReadinessProbe``); empty: ready."""
        return self._probe.problems()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._source.observe_request(route, method, status, seconds)

    def _from_metrics_network(self, address: str | None) -> bool:
        return address_in(address, self._networks)
