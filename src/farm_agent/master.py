"""Talking to the master: announce, heartbeats, and the outbox of task reports and logs.

Retry rules (agent-protocol.md): 5xx answers and connection errors are retried with back-off;
4xx answers are not (they would fail the same way again).
"""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx

log = logging.getLogger("farm_agent.master")

USER_AGENT = "PyFarm/1.0 (agent)"

MAX_CHUNK = 1024 * 1024
"""The largest log chunk the master takes at once (bytes)."""


class MasterError(Exception):
    """The master refused a request (4xx)."""


class Master:
    def __init__(
        self, url: str, *, timeout: float = 10.0, retry_base: float = 1.0, retry_spread: float = 5.0
    ) -> None:
        self.api = url.rstrip("/") + "/api/v1"
        self.bearer: str | None = None
        """The token every request carries: the join token until the agent has its own."""
        self._retry_base = retry_base
        self._retry_spread = retry_spread
        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    def backoff(self, failures: int) -> float:
        """PyFarm's `1 + random()*5` seconds, scaled for tests, growing a little with failures."""
        return (self._retry_base + random.random() * self._retry_spread) * min(failures, 4)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One attempt; None when the master did not answer."""
        headers = dict(kwargs.pop("headers", None) or {})
        if self.bearer is not None:
            headers["Authorization"] = f"Bearer {self.bearer}"
        try:
            return self._http.request(method, self.api + path, headers=headers, **kwargs)
        except httpx.TransportError as error:
            log.warning("master unreachable", extra={"path": path, "error": str(error)})
            return None

    def send(self, message: dict[str, Any]) -> bool:
        """Deliver one outbox message; True when it needs no retry (delivered or refused)."""
        headers = dict(message["headers"])
        headers["Content-Type"] = message["content_type"]
        if message.get("range_start") is not None:
            return self._send_chunk(message, headers)
        if message["body_file"]:
            try:
                with open(message["body_file"], "rb") as handle:
                    content = handle.read()
            except OSError as error:
                log.error(
                    "log file lost", extra={"file": message["body_file"], "error": str(error)}
                )
                return True
        else:
            content = message["body"] or b""
        response = self.request(
            message["method"], message["path"], content=content, headers=headers
        )
        return self._delivered(message["path"], response)

    def _delivered(self, path: str, response: httpx.Response | None) -> bool:
        # A 401 is about this agent's credential, not the report: keep it for when the master
        # takes the credential again (a revoked agent stops on its next heartbeat).
        if response is None or response.status_code >= 500 or response.status_code == 401:
            return False
        if response.status_code >= 400:
            log.warning(
                "master refused a report",
                extra={
                    "path": path,
                    "status": response.status_code,
                    "answer": response.text[:300],
                },
            )
        return True

    def _send_chunk(self, message: dict[str, Any], headers: dict[str, str]) -> bool:
        """Send bytes ``range_start``..``range_end`` of a log file at their offset, in pieces
        of at most MAX_CHUNK. The master stores a repeat once; when it has less than the
        chunk's offset (a chunk lost), it answers 409 with the offset it has, and the bytes are
        sent from there."""
        start, end = message["range_start"], message["range_end"]
        while start < end:
            try:
                with open(message["body_file"], "rb") as handle:
                    handle.seek(start)
                    piece = handle.read(min(end - start, MAX_CHUNK))
            except OSError as error:
                log.error(
                    "log file lost", extra={"file": message["body_file"], "error": str(error)}
                )
                return True
            if not piece:
                return True  # the file is shorter than it was: nothing more to send
            response = self.request(
                message["method"],
                message["path"],
                params={"offset": start},
                content=piece,
                headers=headers,
            )
            if response is not None and response.status_code == 409:
                has = _offset_in(response)
                if has is not None and has < start:
                    log.info(
                        "master asks for a log from further back",
                        extra={"path": message["path"], "offset": has, "sent": start},
                    )
                    start = has
                    continue
            if response is None or response.status_code >= 400:
                return self._delivered(message["path"], response)
            start += len(piece)
        return True

    def close(self) -> None:
        self._http.close()


def _offset_in(response: httpx.Response) -> int | None:
    """The offset a 409 answer to a log chunk names (how much of the log the master has)."""
    try:
        offset = response.json().get("offset")
    except (ValueError, AttributeError):
        return None
    return offset if isinstance(offset, int) and offset >= 0 else None
