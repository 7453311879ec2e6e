"""Who is calling: the client's address, honouring X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import falcon

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PeerResolver:
    def __init__(self, trusted_proxies: Sequence[Network] = ()) -> None:
        self._trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def client_address(self, req: falcon.Request) -> str | None:
        """The peer address, or the nearest untrusted hop of X-Forwarded-For behind trusted proxies."""
        peer = req.remote_addr
        if not self._trusted or not peer or not self._is_trusted(peer):
            return peer
        forwarded = req.get_header("X-Forwarded-For") or ""
        for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
            if not self._is_trusted(hop):
                return hop
        return peer
