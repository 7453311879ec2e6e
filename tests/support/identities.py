"""Identities the tests act as: one per role, and an agent's own credential."""

from __future__ import annotations

import uuid

from farm_domain.access import Identity, Role

ADMIN = Identity("admin", Role.ADMIN, address="127.0.0.1")
"""What the existing tests act as: every right, as the API had before identities."""
WRANGLER = Identity("wendy", Role.WRANGLER, address="10.0.0.2")
ARTIST = Identity("ana", Role.ARTIST, address="10.0.0.3")
OTHER_ARTIST = Identity("bob", Role.ARTIST, address="10.0.0.4")
VIEWER = Identity("vic", Role.VIEWER, address="10.0.0.5")
JOINER = Identity("join-token", Role.AGENT_JOIN, address="10.0.0.6")
ANONYMOUS_AGENT = Identity("anonymous", Role.AGENT, address="10.0.0.7")
"""A PyFarm agent admitted by network: the agent role bound to no id."""


def agent(agent_id: uuid.UUID) -> Identity:
    """An agent's own credential."""
    return Identity(f"agent:{agent_id}", Role.AGENT, agent_id=agent_id, address="10.0.0.8")
