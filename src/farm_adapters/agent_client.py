"""The AgentClient port over HTTP (httpx): PyFarm's master → agent calls."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from farm_domain.networks import AgentNetworks
from farm_domain.ports import AgentCall

log = logging.getLogger("farm.agent_client")


class HttpAgentClient:
    """Calls agents with PyFarm's User-Agent, a timeout, no redirects and no proxies from the
    environment; connection errors and timeouts are retried with exponential back-off.

    Only addresses inside the agent networks are called: a host name is resolved first, and
    every address it resolves to must be inside them.
    """

    def __init__(self, networks: AgentNetworks, *, timeout: float = 10.0, retries: int = 3,
                 retry_delay: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self._networks = networks
        self._retries = retries
        self._retry_delay = retry_delay
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=timeout, follow_redirects=False, trust_env=False,
            headers={"User-Agent": "PyFarm/1.0 (master)"})

    def close(self) -> None:
        self._http.close()

    def _refusal(self, url: str) -> str | None:
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            try:
                addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
            except OSError as error:
                return f"{host} does not resolve: {error}"
        outside = [a for a in addresses if not self._networks.allows_ip(a)]
        if outside or not addresses:
            return f"{host} ({', '.join(outside)}) is outside FARM_AGENT_NETWORKS"
        return None

    def _call(self, method: str, url: str, body: Any = None) -> AgentCall:
        refusal = self._refusal(url)
        if refusal is not None:
            log.warning("agent call refused", extra={"url": url, "reason": refusal})
            return AgentCall(None, error=refusal)
        error = ""
        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(method, url, json=body)
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
