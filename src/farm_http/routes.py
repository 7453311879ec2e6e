"""Every API route: its path, its resource, and what each method needs.

``create_app`` adds the routes from this table (the dashboard adds its own pages), and the
authorization matrix test is keyed by it: a route or a method missing here is missing from the
app, and a responder without an entry stops the app from starting.

What a method needs is documentation of the policy the services apply (the services decide; this
table does not): ``Need(permissions, scope)``, any one of ``permissions``, narrowed by ``scope``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from farm_domain.access import Permission
from farm_domain.controls import Controls, JobAction, TaskAction
from farm_domain.farm import Farm
from farm_http import (
    agents,
    controls,
    events,
    explain,
    files,
    jobs,
    jobtypes,
    monitoring,
    software,
)
from farm_http.peers import PeerResolver

# Ids are 32-bit integers in storage: a larger number in a path matches no route (404).
ID = "int(min=0, max=2147483647)"

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@attrs.frozen
class Need:
    permissions: tuple[Permission, ...]
    """Any one of these; none: any credential."""
    scope: str = ""
    """How the services narrow it (whose job, which agent)."""

    def __str__(self) -> str:
        needed = " or ".join(str(p) for p in self.permissions) or "any credential"
        return f"{needed} ({self.scope})" if self.scope else needed


READ = Need((Permission.READ,))
ADMINISTER = Need((Permission.ADMINISTER,))
AS_THIS_AGENT = Need((Permission.ACT_AS_AGENT,), "an agent's own credential: this agent only")
AS_THE_TASKS_AGENT = Need(
    (Permission.ACT_AS_AGENT,), "an agent's own credential: its own tasks only"
)
THIS_AGENT_OR_MANAGER = Need(
    (Permission.ACT_AS_AGENT, Permission.MANAGE_AGENTS),
    "an agent's own credential: this agent only",
)
OWN_JOB = Need((Permission.CHANGE_JOBS,), "artists: the jobs they submitted")

ResourceFactory = Callable[[Farm, PeerResolver], object]


@attrs.frozen
class Route:
    template: str
    resource: ResourceFactory
    needs: Mapping[str, Need]
    """Method -> what it needs."""
    raw_bodies: frozenset[str] = frozenset()
    """Methods whose body is an upload of its own type, not JSON."""
    creates: frozenset[str] = frozenset()
    """Methods that may create (answering 201): each client's create budget applies."""

    @property
    def json_bodies(self) -> frozenset[str]:
        """The methods whose body must be ``application/json``."""
        return frozenset(set(self.needs) & BODY_METHODS) - self.raw_bodies


def _control(
    resource: Callable[[Controls, Any], object], action: TaskAction | JobAction
) -> ResourceFactory:
    """The factory of a control's resource: one route per action."""
    return lambda farm, peers: resource(farm.controls, action)


_ATTEMPT = f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}/attempts/{{attempt:{ID}}}"

ROUTES: tuple[Route, ...] = (
    Route(
        "/api/v1/agents",
        lambda farm, peers: agents.AgentCollectionResource(farm.agents, peers),
        {
            "GET": READ,
            "POST": Need(
                (Permission.ACT_AS_AGENT, Permission.ENROLL_AGENTS),
                "announce: as this agent; enroll agents: a new agent only",
            ),
        },
        creates=frozenset({"POST"}),
    ),
    Route(
        "/api/v1/agents/schema",
        lambda farm, peers: agents.AgentSchemaResource(),
        {"GET": Need((), "a static description, the same for everyone")},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}",
        lambda farm, peers: agents.AgentResource(farm.agents),
        {
            "GET": READ,
            "POST": Need(
                (Permission.ACT_AS_AGENT, Permission.MANAGE_AGENTS),
                "what the agent reports: this agent only; enable, upgrade, restart: manage agents",
            ),
            "DELETE": THIS_AGENT_OR_MANAGER,
        },
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/tasks",
        lambda farm, peers: agents.AgentTasksResource(farm.agents),
        {"GET": READ, "POST": AS_THIS_AGENT},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/explain",
        lambda farm, peers: explain.AgentExplanationResource(farm.explain),
        {"GET": READ},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/tags",
        lambda farm, peers: agents.AgentTagsResource(farm.agents),
        {"GET": READ, "PUT": Need((Permission.MANAGE_AGENTS,))},
    ),
    Route(
        "/api/v1/software",
        lambda farm, peers: software.SoftwareCollectionResource(farm.software),
        {"GET": READ, "POST": ADMINISTER},
        creates=frozenset({"POST"}),
    ),
    Route(
        "/api/v1/software/{name}",
        lambda farm, peers: software.SoftwareResource(farm.software),
        {"GET": READ, "PUT": ADMINISTER, "DELETE": ADMINISTER},
    ),
    Route(
        "/api/v1/software/{name}/versions",
        lambda farm, peers: software.SoftwareVersionsResource(farm.software),
        {"GET": READ, "POST": ADMINISTER},
        creates=frozenset({"POST"}),
    ),
    Route(
        "/api/v1/software/{name}/versions/{version}",
        lambda farm, peers: software.SoftwareVersionResource(farm.software),
        {"GET": READ, "DELETE": ADMINISTER},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/software",
        lambda farm, peers: software.AgentSoftwareResource(farm.software),
        {"GET": READ, "POST": THIS_AGENT_OR_MANAGER},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/software/{name}/versions/{version}",
        lambda farm, peers: software.AgentSoftwareVersionResource(farm.software),
        {"DELETE": THIS_AGENT_OR_MANAGER},
    ),
    Route(
        "/api/v1/jobtypes",
        lambda farm, peers: jobtypes.JobTypeCollectionResource(farm.jobtypes),
        {"GET": READ, "POST": ADMINISTER},
        creates=frozenset({"POST"}),
    ),
    Route(
        "/api/v1/jobtypes/{name}",
        lambda farm, peers: jobtypes.JobTypeResource(farm.jobtypes),
        {"GET": READ, "PUT": ADMINISTER, "DELETE": ADMINISTER},
        creates=frozenset({"PUT"}),
    ),
    Route(
        "/api/v1/jobtypes/{name}/versions",
        lambda farm, peers: jobtypes.JobTypeVersionsResource(farm.jobtypes),
        {"GET": READ},
    ),
    Route(
        f"/api/v1/jobtypes/{{name}}/versions/{{version:{ID}}}",
        lambda farm, peers: jobtypes.JobTypeVersionResource(farm.jobtypes),
        {"GET": READ},
    ),
    Route(
        "/api/v1/jobs",
        lambda farm, peers: jobs.JobCollectionResource(farm.jobs),
        {"GET": READ, "POST": Need((Permission.SUBMIT_JOBS,))},
        creates=frozenset({"POST"}),
    ),
    Route(
        "/api/v1/jobs/{job}",
        lambda farm, peers: jobs.JobResource(farm.jobs),
        {"GET": READ, "POST": OWN_JOB, "DELETE": OWN_JOB},
    ),
    Route(
        "/api/v1/jobs/{job}/tasks",
        lambda farm, peers: jobs.JobTasksResource(farm.jobs),
        {"GET": READ},
    ),
    Route(
        "/api/v1/jobs/{job}/explain",
        lambda farm, peers: explain.JobExplanationResource(farm.explain),
        {"GET": READ},
    ),
    Route(
        "/api/v1/jobs/{job}/blocklist",
        lambda farm, peers: jobs.JobBlocklistResource(farm.jobs),
        {"GET": READ, "DELETE": Need((Permission.MANAGE_BLOCKLISTS,))},
    ),
    Route(
        "/api/v1/jobs/{job}/blocklist/{agent_id:uuid}",
        lambda farm, peers: jobs.JobBlockResource(farm.jobs),
        {"DELETE": Need((Permission.MANAGE_BLOCKLISTS,))},
    ),
    Route(
        f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}",
        lambda farm, peers: jobs.JobTaskResource(farm.jobs),
        {"GET": READ, "POST": AS_THE_TASKS_AGENT},
    ),
    Route(
        f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}/failures",
        lambda farm, peers: jobs.JobTaskFailuresResource(farm.jobs),
        {"GET": READ},
    ),
    Route(
        f"{_ATTEMPT}/logs",
        lambda farm, peers: files.TaskLogsResource(farm.logs),
        {"GET": READ, "POST": AS_THE_TASKS_AGENT},
        creates=frozenset({"POST"}),
    ),
    Route(
        f"{_ATTEMPT}/logs/{{identifier}}",
        lambda farm, peers: files.TaskLogResource(farm.logs),
        {"POST": AS_THE_TASKS_AGENT},
    ),
    Route(
        f"{_ATTEMPT}/logs/{{identifier}}/logfile",
        lambda farm, peers: files.TaskLogFileResource(farm.logs),
        {"GET": READ, "PUT": AS_THE_TASKS_AGENT},
        raw_bodies=frozenset({"PUT"}),
        creates=frozenset({"PUT"}),
    ),
    Route(
        "/api/v1/agents/updates/{version}",
        lambda farm, peers: files.AgentUpdateResource(farm.updates),
        {"GET": READ, "PUT": ADMINISTER},
        raw_bodies=frozenset({"PUT"}),
        creates=frozenset({"PUT"}),
    ),
    *(
        Route(
            f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}/{action}",
            _control(controls.TaskControlResource, action),
            {"POST": OWN_JOB},
        )
        for action in TaskAction
    ),
    *(
        Route(
            f"/api/v1/jobs/{{job}}/tasks/{action}",
            _control(controls.TasksControlResource, action),
            {"POST": OWN_JOB},
        )
        for action in TaskAction
    ),
    *(
        Route(
            f"/api/v1/jobs/{{job}}/{action}",
            _control(controls.JobControlResource, action),
            {"POST": OWN_JOB},
        )
        for action in JobAction
    ),
    *(
        Route(
            f"/api/v1/bulk/jobs/{action}",
            _control(controls.JobsControlResource, action),
            {
                "POST": Need(
                    (Permission.CHANGE_JOBS,), "artists: each job must be one they submitted"
                )
            },
        )
        for action in JobAction
    ),
    Route(
        "/api/v1/events",
        lambda farm, peers: events.EventCollectionResource(farm.events),
        {"GET": READ},
    ),
    # Outside /api/, where scrapers and orchestrators look for them.
    Route(
        "/healthz",
        lambda farm, peers: monitoring.HealthResource(),
        {"GET": Need((), "anyone: the process answers")},
    ),
    Route(
        "/readyz",
        lambda farm, peers: monitoring.ReadinessResource(farm.monitoring),
        {"GET": Need((), "anyone: the database and the queue answer")},
    ),
    Route(
        "/metrics",
        lambda farm, peers: monitoring.MetricsResource(farm.monitoring, peers),
        {"GET": Need((Permission.READ,), "or no credential from FARM_METRICS_NETWORKS")},
    ),
)


def responders(resource: object) -> set[str]:
    """The methods ``resource`` answers (its ``on_<method>`` responders)."""
    return {
        method for method in METHODS if callable(getattr(resource, f"on_{method.lower()}", None))
    }
