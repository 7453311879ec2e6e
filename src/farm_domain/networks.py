"""Where the master may call agents: only inside the configured agent networks."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from farm_domain.agents import Agent
from farm_domain.enums import UseAddress
from farm_domain.scheduling import AgentContact

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AgentNetworks:
    """Anyone who can announce an agent chooses the address the master will call, so the master
    calls only addresses inside these networks (and never follows redirects)."""

    def __init__(self, networks: Sequence[Network]) -> None:
        self._networks = tuple(networks)
        # Asked of every agent shown (each heartbeat's answer), always of the farm's few
        # thousand addresses.
        self.allows_ip = functools.lru_cache(maxsize=16384)(self._allows_ip)

    def _allows_ip(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def refusal(self, agent: Agent | AgentContact) -> str | None:
        """Why the master will not call this agent, or None when it may (a hostname-addressed
        agent is checked again once its name resolves)."""
        if agent.use_address is UseAddress.PASSIVE:
            return "passive agents are never called"
        if agent.use_address is UseAddress.HOSTNAME:
            return None
        if agent.remote_ip is None:
            return "no address is known for the agent"
        if not self.allows_ip(agent.remote_ip):
            return f"{agent.remote_ip} is outside FARM_AGENT_NETWORKS"
        return None

    def refusal_for_host(self, host: str) -> str | None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None  # a host name: checked when it resolves
        return None if self.allows_ip(host) else f"{host} is outside FARM_AGENT_NETWORKS"


def address_in(address: str | None, networks: Sequence[Network]) -> bool:
    """Whether a caller's ``address`` is inside one of ``networks`` (an IPv4 caller seen as
    ``::ffff:10.0.0.1`` on a dual-stack socket counts as 10.0.0.1)."""
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return any(ip in network or (mapped is not None and mapped in network) for network in networks)


def base_url(host: str, port: int) -> str:
    """``http://host:port/api/v1``, with IPv6 literals bracketed."""
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"http://{host}:{port}/api/v1"
