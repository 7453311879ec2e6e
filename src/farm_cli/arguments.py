"""How the operator commands read what names a thing: an agent's id, a job's id or title, task
ids. A malformed one is an ``InvalidArgument`` (exit status 2), refused before any request."""

from __future__ import annotations

import uuid

from farm_client import FarmClient, Job

_INT32_MAX = 2**31 - 1


class InvalidArgument(Exception):
    """The command line is invalid: the message says how."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def agent_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgument(f"{text} is not an agent id (a UUID)") from None


def is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) <= _INT32_MAX


def task_ids(texts: list[str]) -> list[int]:
    for text in texts:
        if not is_id(text):
            raise InvalidArgument(f"{text} is not a task id")
    return [int(text) for text in texts]


def find_job(client: FarmClient, text: str) -> Job:
    """The job named by an id or a title (the newest job with that title); NotFound when none."""
    if not text.strip():
        raise InvalidArgument("a job is named by its id or its title, not by nothing")
    return client.job(text)
