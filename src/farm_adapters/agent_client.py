"""The AgentClient port over HTTP (httpx): PyFarm's master → agent calls."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from farm_domain.networks import AgentNetworks
from farm_domain.ports import AgentCall

log = logging.getLogger("farm.agent_client")


class HttpAgentClient:
    """Calls agents with PyFarm's User-Agent, a timeout, no redirects and no proxies from the
    environment; connection errors and timeouts are retried with exponential back-off.

    Only addresses inside the agent networks are called: a host name is resolved first, every
    address it resolves to must be inside them, and the call goes to the first of those
    addresses (with the name in the Host header). Connecting by the name would resolve it again,
    and a name server could answer differently the second time (DNS rebinding).
    """

    def __init__(
        self,
        networks: AgentNetworks,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        retry_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._networks = networks
        self._retries = retries
        self._retry_delay = retry_delay
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": "PyFarm/1.0 (master)"},
        )

    def close(self) -> None:
        self._http.close()

    def _pinned(self, url: str) -> tuple[str, dict[str, str]] | str:
        """The URL to call, with its host name replaced by the address that was checked, and
        the headers that go with it; or why the call is refused. (Agents speak plain HTTP, so
        no certificate has to match the name.)"""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            if not self._networks.allows_ip(host):
                return f"{host} ({host}) is outside FARM_AGENT_NETWORKS"
            return url, {}
        try:
            found = [
                info[4][0]
                for info in socket.getaddrinfo(host, parts.port or 80, type=socket.SOCK_STREAM)
            ]
        except OSError as error:
            return f"{host} does not resolve: {error}"
        addresses = list(dict.fromkeys(found))  # the resolver's order, each once
        outside = [a for a in addresses if not self._networks.allows_ip(a)]
        if outside or not addresses:
            return f"{host} ({', '.join(outside)}) is outside FARM_AGENT_NETWORKS"
        address = addresses[0]
        netloc = f"[{address}]" if ":" in address else address
        if parts.port is not None:
            netloc += f":{parts.port}"
        named = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc)), {"Host": named}

    def _call(self, method: str, url: str, body: Any = None) -> AgentCall:
        pinned = self._pinned(url)
        if isinstance(pinned, str):
            log.warning("agent call refused", extra={"url": url, "reason": pinned})
            return AgentCall(None, error=pinned)
        target, headers = pinned
        error = ""
        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(method, target, json=body, headers=headers)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
                if attempt < self._retries:
                    self._sleep(self._retry_delay * 2**attempt)
                continue
            try:
                answer = response.json() if response.content else None
            except ValueError:
                answer = response.text
            return AgentCall(response.status_code, answer)
        return AgentCall(None, error=error)

    def assign(self, base_url: str, body: dict[str, Any]) -> AgentCall:
        return self._call("POST", f"{base_url}/assign", body)

    def tasks(self, base_url: str) -> AgentCall:
        return self._call("GET", f"{base_url}/tasks/")

    def stop_task(self, base_url: str, task_id: int) -> AgentCall:
        return self._call("DELETE", f"{base_url}/tasks/{task_id}")

    def update(self, base_url: str, version: str) -> AgentCall:
        return self._call("POST", f"{base_url}/update", {"version": version})
