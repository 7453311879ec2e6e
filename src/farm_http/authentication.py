"""Who a request is: a bearer token, or a network admitted anonymously; nothing else.

The contract the resources and the dashboard rely on, set on every request:

- ``req.context.identity``: the ``Identity`` the request acts as, or None;
- ``req.context.credential``: ``"bearer"`` (an ``Authorization: Bearer`` token),
  ``"anonymous"`` (no token, from ``FARM_ANONYMOUS_NETWORKS``), ``"local"`` (the operator CLI's
  own in-process app, see ``Authentication``), or None (no identity).

A malformed or invalid ``Authorization`` header is answered 401 at once, wherever it is sent.
``/api/`` requests without an identity are answered 401 before any resource runs. Cookies never
authenticate ``/api/`` calls (the dashboard resolves its own session cookie for its own pages):
a browser attaches cookies to cross-site requests, never a bearer token, so the JSON API cannot
be driven by another site (CSRF).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import falcon

from farm_domain.access import Identity, Role
from farm_domain.errors import Unauthenticated
from farm_domain.identities import IdentityService
from farm_domain.networks import address_in
from farm_http.peers import Network, PeerResolver

ANONYMOUS = "anonymous"
BEARER = "bearer"
LOCAL = "local"
API_PREFIX = "/api/"


def is_api(req: falcon.Request) -> bool:
    return req.path.startswith(API_PREFIX)


class Authentication:
    def __init__(
        self,
        identities: IdentityService,
        peers: PeerResolver,
        anonymous_networks: Sequence[Network],
        anonymous_role: Role,
        local_operator: Identity | None = None,
    ) -> None:
        """``local_operator``: every request acts as this identity, whatever it carries. Only
        for the app the operator CLI builds in its own process and calls through an in-process
        transport (``farm_cli.local``), never served: the served app (``farm_http.wsgi``) is
        built without it, and nothing a request carries (headers, environ) can turn it on."""
        self._local_operator = local_operator
        self._identities = identities
        self._peers = peers
        self._anonymous_networks = tuple(anonymous_networks)
        self._anonymous_role = anonymous_role
        # Asked on every request, always of a few addresses (the farm's agents): parsing one
        # cost as much as the rest of this middleware. Bounded, since any peer may call.
        self._admitted = functools.lru_cache(maxsize=16384)(self._admitted_address)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._local_operator is not None:
            req.context.identity = self._local_operator
            req.context.credential = LOCAL
            return
        req.context.identity = None
        req.context.credential = None
        address = self._peers.client_address(req)
        header = req.get_header("Authorization")
        if header is not None:
            scheme, _, secret = header.strip().partition(" ")
            secret = secret.strip()
            if scheme.lower() != BEARER or not secret or " " in secret:
                raise Unauthenticated("malformed Authorization header: send Bearer <token>")
            req.context.identity = self._identities.authenticate(secret, address)
            req.context.credential = BEARER
        elif self._admitted(address):
            req.context.identity = Identity(
                ANONYMOUS, self._anonymous_role, address=address, anonymous=True
            )
            req.context.credential = ANONYMOUS
        elif is_api(req):
            raise Unauthenticated("a credential is required (Authorization: Bearer <token>)")

    def _admitted_address(self, address: str | None) -> bool:
        return address_in(address, self._anonymous_networks)
