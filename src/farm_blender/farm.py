"""The farm's API as the add-on calls it: the standard library only (Blender's Python has no
httpx), JSON in and out, bounded answers, and the API's ``{"error": ...}`` as a ``FarmError``.

Nothing here imports ``bpy``: the operator gathers the scene's settings and hands them over.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

TIMEOUT = 30.0
"""Seconds without an answer before a call gives up."""
MAX_ANSWER = 1 << 20
"""Bytes of an answer read at most: a job's representation is far smaller."""
JOBTYPE = "blender"
JOBTYPE_DESCRIPTION = "renders each frame of a .blend with Blender"
# What the master's blender job type accepts (farm_domain.blender_jobs); anything else is left
# to the .blend itself, which carries its own format and engine.
FORMATS = frozenset({"PNG", "OPEN_EXR", "JPEG"})
ENGINES = frozenset({"CYCLES", "BLENDER_EEVEE", "BLENDER_EEVEE_NEXT", "WORKBENCH"})


class FarmError(Exception):
    """A refusal or an unreachable farm, with a message for the artist."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error (the API never redirects): a POST is not silently re-sent."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def farm_url(value: str) -> str:
    """The farm's base URL (``http://host:port``), checked, without a trailing slash."""
    url = value.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FarmError(f"the farm URL must be http://host:port or https://host, not {value!r}")
    return url


def setting(*candidates: str, env: str) -> str:
    """The first non-empty candidate, else the environment variable ``env``, else ''."""
    for candidate in candidates:
        if candidate.strip():
            return candidate.strip()
    return os.environ.get(env, "").strip()


def call(
    method: str,
    url: str,
    path: str,
    token: str,
    body: Mapping[str, Any] | None = None,
    timeout: float = TIMEOUT,
) -> Any:
    """``method`` on ``url`` + ``/api/v1`` + ``path`` with the bearer ``token``; the decoded JSON
    answer. A refusal raises FarmError with the API's message and status."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{url}/api/v1{path}", data=data, headers=headers, method=method
    )
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            status = answer.status
            raw = answer.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as error:
        with error:
            raw = error.read(MAX_ANSWER + 1)
        raise FarmError(_refusal(error.code, raw), error.code) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FarmError(f"could not reach the farm at {url}: {reason}") from None
    if len(raw) > MAX_ANSWER:
        raise FarmError(f"the farm's answer to {method} {path} is larger than {MAX_ANSWER} bytes")
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise FarmError(f"the farm answered {status} to {method} {path} with no JSON") from None


def _refusal(status: int, raw: bytes) -> str:
    """The API's ``{"error": ...}`` message, or the status when the answer has none."""
    try:
        message = json.loads(raw[:MAX_ANSWER]).get("error")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str) and message:
        return f"the farm refused ({status}): {message}"
    return f"the farm answered {status}"


def ensure_jobtype(url: str, token: str) -> None:
    """Make sure the farm has the ``blender`` job type: create it when missing if the token
    may (an admin's); otherwise a FarmError saying who can."""
    try:
        call("GET", url, f"/jobtypes/{JOBTYPE}", token)
        return
    except FarmError as error:
        if error.status != 404:
            raise
    try:
        call("POST", url, "/jobtypes", token, {"name": JOBTYPE, "description": JOBTYPE_DESCRIPTION})
    except FarmError as error:
        if error.status == 409:  # created meanwhile by someone else
            return
        if error.status == 403:
            raise FarmError(
                f"the farm has no `{JOBTYPE}` job type and this token may not create one: "
                "ask an admin to create it (`farm jobs submit --jobtype blender` creates it, "
                f'or POST /api/v1/jobtypes {{"name": "{JOBTYPE}"}})',
                403,
            ) from None
        raise


def check_frames_and_output(start: int, end: int, output: str) -> None:
    if end < start:
        raise FarmError(f"the frame range ends ({end}) before it starts ({start})")
    if not output.strip():
        raise FarmError("no output path: set one in the Farm panel or in the scene's Output")


def job_body(
    *,
    title: str,
    start: int,
    end: int,
    by: int,
    batch: int,
    priority: int,
    file: str,
    output: str,
    scene: str,
    file_format: str,
    engine: str,
) -> dict[str, Any]:
    """The body of ``POST /api/v1/jobs`` for a ``blender`` job rendering ``file``."""
    check_frames_and_output(start, end, output)
    data: dict[str, Any] = {"file": file, "output": output, "scene": scene}
    if file_format in FORMATS:
        data["format"] = file_format
    if engine in ENGINES:
        data["engine"] = engine
    return {
        "title": title,
        "jobtype": JOBTYPE,
        "start": start,
        "end": end,
        "by": max(by, 1),
        "batch": batch,
        "priority": priority,
        "data": data,
    }


def submit(url: str, token: str, body: Mapping[str, Any]) -> int:
    """Submit the job; its id."""
    job = call("POST", url, "/jobs", token, body)
    if not isinstance(job, dict) or type(job.get("id")) is not int:
        raise FarmError("the farm accepted the job but did not answer with its id")
    job_id: int = job["id"]
    return job_id


def dashboard_link(url: str, job_id: int) -> str:
    """The job's page on the farm's dashboard."""
    return f"{url}/jobs/{job_id}"
