"""The AgentClient port over HTTP (httpx): PyFarm's master → agent calls, their JSON bodies,
and what each status means in the domain's terms."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import attrs
import httpx

from farm_adapters.signing import signed_headers
from farm_domain.answers import (
    Accepted,
    AssignAnswer,
    Busy,
    Conflict,
    NotRunning,
    PollAnswer,
    Refused,
    Running,
    StopAnswer,
    Unreachable,
    UpdateAnswer,
)
from farm_domain.failures import effective_limit
from farm_domain.networks import AgentNetworks
from farm_domain.ports import AgentKeys
from farm_domain.work import Job, Task

log = logging.getLogger("farm.agent_client")

Resolver = Callable[[str, int], Sequence[str]]
"""Resolves a host name and port to addresses, in preference order; raises OSError when the
name does not resolve."""


def resolve(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host``."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


MAX_ANSWER_BYTES = 64 * 1024
"""The most of an agent's answer the master reads: every answer the protocol has is far
smaller, and a larger one is a refusal by that agent, never held in memory."""


class _Reply(NamedTuple):
    status: int
    body: Any


class _TooLarge(NamedTuple):
    size: str


class HttpAgentClient:
    """Calls agents with PyFarm's User-Agent, timeouts, no redirects and no proxies from the
    environment. A call that cannot connect (refused, or past the short connect timeout) is
    reported at once: the agent is not there, and sleeping through retries would hold the
    queue consumer that others' work waits for. Other transport errors (a timeout or a broken
    answer once connected) are retried with exponential back-off.

    Every call is signed with the agent's key (``farm_adapters.signing``), each attempt afresh:
    a farm agent runs nothing it cannot verify; PyFarm agents ignore the headers.

    Only addresses inside the agent networks are called: a host name is resolved first, every
    address it resolves to must be inside them, and the call goes to the first of those
    addresses (with the name in the Host header). Connecting by the name would resolve it again,
    and a name server could answer differently the second time (DNS rebinding).
    """

    def __init__(
        self,
        networks: AgentNetworks,
        keys: AgentKeys,
        *,
        timeout: float,
        connect_timeout: float | None = None,
        retries: int,
        retry_delay: float,
        sleep: Callable[[float], None] = time.sleep,
        resolver: Resolver = resolve,
        wall_clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        default_limits: FrameLimits | None = None,
    ) -> None:
        self._networks = networks
        self._keys = keys
        self._default_limits = default_limits
        self._plain_agents: set[uuid.UUID] = set()
        self._wall_clock = wall_clock
        self._resolve = resolver
        self._retries = retries
        self._retry_delay = retry_delay
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(
                timeout, connect=timeout if connect_timeout is None else connect_timeout
            ),
            follow_redirects=False,
            trust_env=False,
            # Read raw (below): a compressed answer could unpack to far more than the cap.
            headers={"User-Agent": "PyFarm/1.0 (master)", "Accept-Encoding": "identity"},
            transport=transport,
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
            found = self._resolve(host, parts.port or 80)
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

    def _call(
        self, agent_id: uuid.UUID, method: str, url: str, body: Any = None
    ) -> _Reply | Refused | Unreachable:
        """The agent's status and decoded body, or why there is none after the retries."""
        pinned = self._pinned(url)
        if isinstance(pinned, str):
            log.warning("agent call refused", extra={"url": url, "reason": pinned})
            return Unreachable(pinned)
        target, headers = pinned
        content = b"" if body is None else json.dumps(body).encode()
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        key = self._keys.key_for(agent_id)
        path = httpx.URL(target).raw_path.decode("ascii")
        error = ""
        for attempt in range(self._retries + 1):
            signed = signed_headers(key, method, path, content, self._wall_clock())
            try:
                with self._http.stream(
                    method, target, content=content, headers={**headers, **signed}
                ) as response:
                    read = _read_capped(response)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
                if attempt < self._retries:
                    self._sleep(self._retry_delay * 2**attempt)
                continue
            if isinstance(read, _TooLarge):
                reason = f"answer larger than {MAX_ANSWER_BYTES} bytes ({read.size})"
                log.warning(
                    "agent answer refused",
                    extra={"agent_id": str(agent_id), "url": url, "reason": reason},
                )
                return Refused(reason)
            try:
                answer = json.loads(read) if read else None
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
                answer = read.decode("utf-8", "replace")
            return _Reply(response.status_code, answer)
        return Unreachable(error)

    def assign(
        self, agent_id: uuid.UUID, base_url: str, job: Job, tasks: Sequence[Task]
    ) -> AssignAnswer:
        """Send the batch with the job's failure policies (``frame_limits``). PyFarm's agent
        validates the body against a schema that refuses keys it does not know (voluptuous's
        default); an agent that refuses them so gets the batch again without them, and from
        then on (in this process) only PyFarm's keys: it runs the job without the limits."""
        limits = frame_limits(job, self._default_limits or FrameLimits())
        plain = agent_id in self._plain_agents or not limits
        url = f"{base_url}/assign"
        reply = self._call(
            agent_id, "POST", url, assign_body(job, tasks, None if plain else limits)
        )
        if not plain and isinstance(reply, _Reply) and _refuses_unknown_keys(reply):
            log.info(
                "agent refuses failure policies: assigning without them",
                extra={
                    "agent_id": str(agent_id),
                    "job_id": job.id,
                    "said": _said(reply.body)[:200],
                },
            )
            if len(self._plain_agents) >= MAX_REMEMBERED_AGENTS:
                self._plain_agents.clear()
            self._plain_agents.add(agent_id)
            reply = self._call(agent_id, "POST", url, assign_body(job, tasks))
        if isinstance(reply, Refused | Unreachable):
            return reply
        if _succeeded(reply):
            return Accepted()
        if reply.status == 409:
            return Conflict(_rejected_task_ids(reply.body), _said(reply.body))
        return _declined(reply)

    def tasks(self, agent_id: uuid.UUID, base_url: str) -> PollAnswer:
        reply = self._call(agent_id, "GET", f"{base_url}/tasks/")
        if isinstance(reply, Refused | Unreachable):
            return reply
        if reply.status == 200 and isinstance(reply.body, list):
            return Running(
                frozenset(
                    item["id"]
                    for item in reply.body
                    if isinstance(item, dict) and type(item.get("id")) is int
                )
            )
        if reply.status == 200:
            return Unreachable("answered 200 without a list of tasks")
        return _declined(reply)

    def stop_task(self, agent_id: uuid.UUID, base_url: str, task_id: int) -> StopAnswer:
        reply = self._call(agent_id, "DELETE", f"{base_url}/tasks/{task_id}")
        if isinstance(reply, Refused | Unreachable):
            return reply
        if reply.status == 204:
            return NotRunning()
        return Accepted() if _succeeded(reply) else _declined(reply)

    def update(self, agent_id: uuid.UUID, base_url: str, version: str) -> UpdateAnswer:
        reply = self._call(agent_id, "POST", f"{base_url}/update", {"version": version})
        if isinstance(reply, Refused | Unreachable):
            return reply
        return Accepted() if _succeeded(reply) else _declined(reply)


def _read_capped(response: httpx.Response) -> bytes | _TooLarge:
    """The answer's body, read as it arrives and given up on once past MAX_ANSWER_BYTES (a
    declared length past it is not read at all)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        return _TooLarge(f"declared {declared}")
    read = bytearray()
    for chunk in response.iter_raw():
        read += chunk
        if len(read) > MAX_ANSWER_BYTES:
            return _TooLarge("not declared" if not declared else f"declared {declared}")
    return bytes(read)


MAX_REMEMBERED_AGENTS = 100_000
"""Agents known to refuse the failure policies' keys, remembered at most (then forgotten)."""


@attrs.frozen
class FrameLimits:
    """A job's limits on each frame, as the farm agent enforces them (None: no limit)."""

    max_run_seconds: int | None = None
    stall_seconds: int | None = None

    def __bool__(self) -> bool:
        return self.max_run_seconds is not None or self.stall_seconds is not None


def frame_limits(job: Job, defaults: FrameLimits) -> FrameLimits:
    """The job's own limits, else the master's defaults (FARM_MAX_RUN_SECONDS, ...)."""
    return FrameLimits(
        effective_limit(job.max_run_seconds, defaults.max_run_seconds or 0),
        effective_limit(job.stall_seconds, defaults.stall_seconds or 0),
    )


def _refuses_unknown_keys(reply: _Reply) -> bool:
    """PyFarm's 400 for keys its schema does not know ("extra keys not allowed @ data[...]")."""
    return reply.status == 400 and "extra keys not allowed" in _said(reply.body)


def assign_body(
    job: Job, tasks: Sequence[Task], limits: FrameLimits | None = None
) -> dict[str, Any]:
    """PyFarm's /assign body for one job's batch; with ``limits``, the farm agent's
    ``max_run_seconds`` and ``stall_seconds`` in ``job`` too (PyFarm's agent refuses them)."""
    extra = {} if limits is None else attrs.asdict(limits)
    return {
        "job": {
            "id": job.id,
            "title": job.title,
            "data": job.data,
            "environ": job.environ,
            "by": job.frame_by,
            "batch": job.batch,
            # PyFarm's agent wants a string here and refuses the assignment for a null.
            "user": job.user or job.submitted_by or "",
            "ram": job.ram,
            "ram_warning": job.ram_warning,
            "ram_max": job.ram_max,
            "cpus": job.cpus,
            **extra,
        },
        "jobtype": {"name": job.jobtype, "version": job.jobtype_version},
        "tasks": [
            {"id": t.id, "frame": t.frame, "attempt": t.attempts}
            for t in sorted(tasks, key=lambda t: (t.frame, t.id))
        ],
    }


def _succeeded(reply: _Reply) -> bool:
    return 200 <= reply.status < 300


def _declined(reply: _Reply) -> Refused | Busy | Unreachable:
    """A reply that is not a success: 503 is PyFarm's "shutting down or busy", any other 4xx a
    refusal; the protocol has no other answer, so the rest counts as no answer."""
    if reply.status == 503:
        return Busy(_said(reply.body))
    if 400 <= reply.status < 500:
        return Refused(_said(reply.body))
    return Unreachable(f"answered {reply.status}")


def _said(body: Any) -> str:
    """What an agent's answer says: its ``error`` message and the rest of the body, as text."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        rest = {key: value for key, value in body.items() if key != "error"}
        return f"{body['error']} {rest}" if rest else body["error"]
    return "" if body is None else str(body)


def _rejected_task_ids(body: Any) -> frozenset[int]:
    named = body.get("rejected_task_ids") if isinstance(body, dict) else None
    if not isinstance(named, list):
        return frozenset()
    return frozenset(item for item in named if type(item) is int)
