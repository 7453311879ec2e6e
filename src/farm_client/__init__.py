"""A Python client of the farm master's API, standing alone (httpx and attrs, nothing of the
master): ``FarmClient(url, token)`` or, from ``FARM_URL`` and ``FARM_TOKEN``, ``FarmClient()``.

    from farm_client import FarmClient
    with FarmClient() as farm:
        job = farm.submit_job("shot_010", "command", 1, 100, data={"command": ["echo", "{frame}"]})
"""

from farm_client.client import VERSION, AgentRef, FarmClient, JobRef
from farm_client.errors import (
    BadRequest,
    BadResponse,
    ConfigurationError,
    Conflict,
    FarmError,
    Forbidden,
    NotFound,
    ResponseTooLarge,
    ServerError,
    TooLargeRequest,
    TooManyRequests,
    Unauthorized,
    Unreachable,
    UnsupportedMediaType,
)
from farm_client.models import (
    Agent,
    AgentSummary,
    Block,
    Event,
    Job,
    JobType,
    Requirement,
    Software,
    SoftwareRef,
    SoftwareVersion,
    TagRequirement,
    Task,
    TaskJob,
    TaskLog,
)

__version__ = VERSION

__all__ = [
    "Agent",
    "AgentRef",
    "AgentSummary",
    "BadRequest",
    "BadResponse",
    "Block",
    "ConfigurationError",
    "Conflict",
    "Event",
    "FarmClient",
    "FarmError",
    "Forbidden",
    "Job",
    "JobRef",
    "JobType",
    "NotFound",
    "Requirement",
    "ResponseTooLarge",
    "ServerError",
    "Software",
    "SoftwareRef",
    "SoftwareVersion",
    "TagRequirement",
    "Task",
    "TaskJob",
    "TaskLog",
    "TooLargeRequest",
    "TooManyRequests",
    "Unauthorized",
    "Unreachable",
    "UnsupportedMediaType",
    "__version__",
]
