"""Checking that a call comes from the master: its signature under this agent's signing key.

The master signs ``"METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\n" + sha256(body).hexdigest()`` with
HMAC-SHA256 and sends ``X-Farm-Timestamp`` (unix seconds), ``X-Farm-Nonce`` and
``X-Farm-Signature`` (hex). A call is accepted once, within ``WINDOW`` seconds of its timestamp.
(The master's side is ``farm_adapters.signing``; the agent keeps its own copy of the rule so
that it imports nothing of the master's.)
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import threading
from collections.abc import Callable
from typing import Protocol

WINDOW = 300
"""Seconds a call's timestamp may differ from this agent's clock."""

MAX_NONCES = 100_000
"""Nonces remembered at most; more calls than this inside the window are refused."""

_NONCE = re.compile(r"[0-9A-Za-z_-]{16,128}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class Headers(Protocol):
    """A request's headers, looked up by name in any case."""

    def get(self, name: str) -> str | None: ...


def signature(key: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


class SeenNonces:
    """Nonces of accepted calls, each kept until its call leaves the window."""

    def __init__(self, limit: int = MAX_NONCES) -> None:
        self._limit = limit
        self._expiries: list[tuple[float, str]] = []
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, nonce: str, expires: float, now: float) -> str | None:
        """Remember ``nonce`` until ``expires``; or why not (seen already, or too many)."""
        while self._expiries and self._expiries[0][0] < now:
            self._seen.discard(heapq.heappop(self._expiries)[1])
        if nonce in self._seen:
            return "this call was seen already (replayed nonce)"
        if len(self._seen) >= self._limit:
            return "too many calls inside the replay window"
        self._seen.add(nonce)
        heapq.heappush(self._expiries, (expires, nonce))
        return None


class Verifier:
    """Accepts a call signed with the agent's current key, fresh, and never seen before."""

    def __init__(
        self, key: Callable[[], str | None], clock: Callable[[], float], nonces: SeenNonces
    ) -> None:
        self._key = key
        self._clock = clock
        self._nonces = nonces
        self._lock = threading.Lock()

    def refusal(self, method: str, path: str, headers: Headers, body: bytes) -> str | None:
        """Why the call is refused, or None when it comes from the master."""
        key = self._key()
        if key is None:
            return "this agent has no signing key yet: it runs nothing until the master enrolls it"
        timestamp = headers.get("X-Farm-Timestamp") or ""
        nonce = headers.get("X-Farm-Nonce") or ""
        given = headers.get("X-Farm-Signature") or ""
        if not (timestamp or nonce or given):
            return "unsigned call: the master's signature is required"
        if not (
            _TIMESTAMP.fullmatch(timestamp)
            and _NONCE.fullmatch(nonce)
            and _SIGNATURE.fullmatch(given)
        ):
            return "malformed X-Farm-Timestamp, X-Farm-Nonce or X-Farm-Signature"
        expected = signature(key, method, path, timestamp, nonce, body)
        if not hmac.compare_digest(expected, given):
            return "wrong signature"
        now = self._clock()
        if abs(now - int(timestamp)) > WINDOW:
            return f"the call's timestamp is more than {WINDOW} s from this agent's clock"
        with self._lock:
            return self._nonces.add(nonce, int(timestamp) + WINDOW, now)
