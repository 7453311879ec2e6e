"""Domain errors. The HTTP layer's single error table maps each class to a status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    """A value a client sent breaks a rule of the contract (HTTP 400)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Unauthenticated(DomainError):
    """No credential, or one that is unknown, revoked or expired."""


class Forbidden(DomainError):
    """The identity is known but may not do this."""


class NotFound(DomainError):
    """The thing named does not exist (HTTP 404)."""


class Conflict(DomainError):
    """The request contradicts the current state (HTTP 409)."""


class AlreadyExists(Conflict):
    """What a request creates exists already, perhaps created by a concurrent request a moment
    before (HTTP 409). Repositories raise it instead of storing a duplicate; services whose
    answer is "create or return the existing one" catch it."""


class WrongFarm(ValidationError):
    """An agent configured for another farm announced itself here (HTTP 400)."""


class MisconfiguredDefaults(DomainError):
    """The configured default agent software names something missing from the catalogue.

    The contract answers this with a 500: it is the operator's configuration, not the agent's
    request, that is wrong.
    """


class TooLarge(DomainError):
    """An upload exceeds the configured size limit (HTTP 413)."""


class WrittenAway(NotFound):
    """A file's folder was deleted while the file was written into it (the files of a task
    whose job was deleted meanwhile); nothing was kept (HTTP 404)."""


class LogGap(Conflict):
    """A log chunk starts beyond the bytes stored so far; nothing was added (HTTP 409).
    ``offset`` is the stored size: where the sender resumes."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class StorageFull(DomainError):
    """The files the master keeps (logs, update archives) would exceed their disk budget
    (HTTP 507)."""


class Unavailable(DomainError):
    """A service the master needs (its database) cannot be reached now; retry (HTTP 503)."""


class TooManyRequests(DomainError):
    """A client spent its budget (of creates); nothing was done. Retry after ``retry_after``
    seconds (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
