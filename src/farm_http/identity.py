"""The identity a request acts as: set on ``req.context.identity`` by the authentication
middleware, read by resources and handed to the services, which apply the access policy."""

from __future__ import annotations

import falcon

from farm_domain.access import Identity
from farm_domain.errors import Unauthenticated


def actor(req: falcon.Request) -> Identity:
    """The request's identity; Unauthenticated (401) when it has none."""
    identity = getattr(req.context, "identity", None)
    if not isinstance(identity, Identity):
        raise Unauthenticated("a credential is required (Authorization: Bearer <token>)")
    return identity
