"""INTERIM: every request acts as an anonymous admin, as the API did before identities.

This middleware stands in for the authentication middleware (bearer tokens, dashboard sessions,
networks admitted anonymously) until that lands and replaces it in ``create_app``: it keeps the
API behaving exactly as before while the services already apply the access policy and record
who did what (here: ``anonymous``, with the peer's address). Do not keep it in a release.
"""

from __future__ import annotations

import falcon

from farm_domain.access import Identity, Role
from farm_http.peers import PeerResolver

ANONYMOUS = "anonymous"


class OpenAccess:
    """Sets ``req.context.identity`` to an anonymous admin from the peer's address."""

    def __init__(self, peers: PeerResolver) -> None:
        self._peers = peers

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.identity = Identity(
            ANONYMOUS, Role.ADMIN, address=self._peers.client_address(req)
        )
