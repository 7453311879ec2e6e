"""Errors of the farm client: every refusal of the master is a ``FarmError`` carrying the API's
``{"error": ...}`` message and the HTTP status, of a subclass per status a caller may handle."""

from __future__ import annotations

from typing import Any


class FarmError(Exception):
    """A call to the farm failed. ``status`` is the HTTP status (None when no answer came:
    configuration, connection, an answer too large or not understood); ``message`` the
    master's own message (its ``{"error": ...}``) where it gave one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        field: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.url = url
        self.field = field
        """The request field at fault, where the master names one."""
        self.body = body
        """The decoded answer (JSON), or its text when it was not JSON."""
        self.retry_after = retry_after
        """Seconds to wait before trying again (429 and 503 answers)."""

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        status = f"{self.status}: " if self.status is not None else ""
        return f"{status}{self.message}{where}"


class ConfigurationError(FarmError):
    """No master URL (argument or ``FARM_URL``), or one the client cannot use."""


class Unreachable(FarmError):
    """The master did not answer: connection refused or lost, a timeout."""


class ResponseTooLarge(FarmError):
    """The answer was larger than the client's bound (``max_response_bytes``)."""


class BadResponse(FarmError):
    """The master answered something this client cannot read (not the JSON it expected)."""


class BadRequest(FarmError):
    """400: the request is invalid; ``message`` (and ``field``) say why."""


class Unauthorized(FarmError):
    """401: no token, or one the master does not accept (malformed, unknown, revoked, expired)."""


class Forbidden(FarmError):
    """403: the token's role may not do this (for instance an artist on another's job)."""


class NotFound(FarmError):
    """404: no such job, task, agent, software, job type or log."""


class Conflict(FarmError):
    """409: the farm's state refuses the change (a job type still in use, a name taken, ...)."""


class LogGap(Conflict):
    """409 to a log chunk: it starts beyond what the master has of the log; ``offset`` is how
    many bytes it has (send from there)."""

    def __init__(self, message: str, *, offset: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.offset = offset


class StillRunning(FarmError):
    """A log followed until its attempt ends was still being written at the deadline;
    ``offset`` is how far it was read (follow on from there)."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class TooLargeRequest(FarmError):
    """413: the request body is over the master's limit."""


class UnsupportedMediaType(FarmError):
    """415: the body's content type is not one the route takes."""


class TooManyRequests(FarmError):
    """429: this client's create budget is spent; ``retry_after`` says for how long."""


class ServerError(FarmError):
    """5xx: the master (or its database) failed; ``retry_after`` is set for 503."""


ERROR_OF_STATUS: dict[int, type[FarmError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLargeRequest,
    415: UnsupportedMediaType,
    429: TooManyRequests,
}


def error_class(status: int) -> type[FarmError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return ERROR_OF_STATUS.get(status, FarmError)
