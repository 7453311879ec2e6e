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
from farm_domain.catalogue import VersionSpec
from farm_domain.controls import Controls, JobAction, TaskAction
from farm_domain.farm import Farm
from farm_domain.job_requests import JobChanges
from farm_domain.jobtypes import JobTypeSpec
from farm_http import (
    agents,
    controls,
    events,
    explain,
    files,
    history,
    jobs,
    jobtypes,
    monitoring,
    reference,
    software,
)
from farm_http.controls import NoBodyJson, ResultsJson, TasksJson
from farm_http.monitoring import HealthJson, ReadinessJson
from farm_http.openapi import Answer, MayOmit, Raw
from farm_http.peers import PeerResolver
from farm_http.schemas.agents import (
    AGENT_BODY,
    AgentFilters,
    AgentJson,
    AgentSummaryJson,
    AnnouncedJson,
    TaskIdJson,
)
from farm_http.schemas.events import EventFilters, EventJson
from farm_http.schemas.explain import AgentExplanationJson, JobExplanationJson
from farm_http.schemas.files import (
    ChunkJson,
    ChunkQuery,
    LogBody,
    LogFileQuery,
    LogJson,
    LogStateBody,
    UpdateJson,
)
from farm_http.schemas.history import AgentChangeJson, HistoryFilters, TaskChangeJson
from farm_http.schemas.jobs import (
    JOB_SPEC_BODY,
    BlockJson,
    FailureJson,
    JobFilters,
    JobJson,
    TaskJson,
    TaskPage,
    TaskReportJson,
    UnblockedJson,
)
from farm_http.schemas.jobtypes import JobTypeJson
from farm_http.schemas.software import (
    AgentSoftwareBody,
    SoftwareBody,
    SoftwareJson,
    SoftwareRefJson,
    SoftwareUpdateBody,
    VersionJson,
)

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
STATIC = Need((), "a static description, the same for everyone")
NO_CONTENT = Answer(None, (204,))
OPENAPI_PATH = "/api/v1/openapi.json"

ResourceFactory = Callable[[Farm, PeerResolver], object]


@attrs.frozen(eq=False)
class Route:
    """One path of the API (compared by identity: its tables are not hashable)."""

    template: str
    resource: ResourceFactory
    needs: Mapping[str, Need]
    """Method -> what it needs."""
    raw_bodies: frozenset[str] = frozenset()
    """Methods whose body is an upload of its own type, not JSON."""
    creates: frozenset[str] = frozenset()
    """Methods that may create (answering 201): each client's create budget applies."""
    bodies: Mapping[str, object] = attrs.field(factory=dict)
    """Method -> the type its JSON body is parsed as (the very type the responder structures
    it into, or the TypedDict a hand-written parser reads), or ``Raw`` for an upload."""
    answers: Mapping[str, Answer] = attrs.field(factory=dict)
    """Method -> its successful answer (the type its representation function returns)."""
    queries: Mapping[str, type[Any]] = attrs.field(factory=dict)
    """Method -> the TypedDict of its query string."""
    summaries: Mapping[str, str] = attrs.field(factory=dict)
    """Method -> one line for the API reference."""

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
        bodies={"POST": AGENT_BODY},
        answers={
            "GET": Answer(list[AgentSummaryJson]),
            "POST": Answer(AnnouncedJson, (200, 201), description="Announced (201: a new agent)"),
        },
        queries={"GET": AgentFilters},
        summaries={"GET": "List agents", "POST": "Announce an agent (or enroll a new one)"},
    ),
    Route(
        "/api/v1/agents/schema",
        lambda farm, peers: agents.AgentSchemaResource(),
        {"GET": STATIC},
        answers={"GET": Answer(dict[str, str])},
        summaries={"GET": "The agent fields' storage types (PyFarm's)"},
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
        bodies={"POST": AGENT_BODY},
        answers={"GET": Answer(AgentJson), "POST": Answer(AgentJson), "DELETE": NO_CONTENT},
        summaries={
            "GET": "An agent",
            "POST": "Update an agent (its report, or an operator's change)",
            "DELETE": "Remove an agent",
        },
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/history",
        lambda farm, peers: history.AgentHistoryResource(farm.history),
        {"GET": READ},
        answers={"GET": Answer(list[AgentChangeJson])},
        queries={"GET": HistoryFilters},
        summaries={"GET": "The agent's changes of state, newest first"},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/tasks",
        lambda farm, peers: agents.AgentTasksResource(farm.agents),
        {"GET": READ, "POST": AS_THIS_AGENT},
        bodies={"POST": TaskIdJson},
        answers={"GET": Answer(list[TaskJson]), "POST": Answer(TaskJson)},
        summaries={"GET": "The agent's tasks", "POST": "Assign a task to the agent"},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/explain",
        lambda farm, peers: explain.AgentExplanationResource(farm.explain),
        {"GET": READ},
        answers={"GET": Answer(AgentExplanationJson)},
        summaries={"GET": "Why the agent is idle"},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/tags",
        lambda farm, peers: agents.AgentTagsResource(farm.agents),
        {"GET": READ, "PUT": Need((Permission.MANAGE_AGENTS,))},
        bodies={"PUT": list[str]},
        answers={"GET": Answer(list[str]), "PUT": Answer(list[str])},
        summaries={"GET": "The agent's tags", "PUT": "Set the agent's tags"},
    ),
    Route(
        "/api/v1/software",
        lambda farm, peers: software.SoftwareCollectionResource(farm.software),
        {"GET": READ, "POST": ADMINISTER},
        creates=frozenset({"POST"}),
        bodies={"POST": SoftwareBody},
        answers={"GET": Answer(list[SoftwareJson]), "POST": Answer(SoftwareJson, (201,))},
        summaries={"GET": "The software catalogue", "POST": "Add a software (and its versions)"},
    ),
    Route(
        "/api/v1/software/{name}",
        lambda farm, peers: software.SoftwareResource(farm.software),
        {"GET": READ, "PUT": ADMINISTER, "DELETE": ADMINISTER},
        bodies={"PUT": SoftwareUpdateBody},
        answers={"GET": Answer(SoftwareJson), "PUT": Answer(SoftwareJson), "DELETE": NO_CONTENT},
        summaries={
            "GET": "A software",
            "PUT": "Rename a software or replace its versions",
            "DELETE": "Remove a software",
        },
    ),
    Route(
        "/api/v1/software/{name}/versions",
        lambda farm, peers: software.SoftwareVersionsResource(farm.software),
        {"GET": READ, "POST": ADMINISTER},
        creates=frozenset({"POST"}),
        bodies={"POST": VersionSpec},
        answers={"GET": Answer(list[VersionJson]), "POST": Answer(VersionJson, (201,))},
        summaries={"GET": "A software's versions", "POST": "Add a version"},
    ),
    Route(
        "/api/v1/software/{name}/versions/{version}",
        lambda farm, peers: software.SoftwareVersionResource(farm.software),
        {"GET": READ, "DELETE": ADMINISTER},
        answers={"GET": Answer(VersionJson), "DELETE": NO_CONTENT},
        summaries={"GET": "A version", "DELETE": "Remove a version"},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/software",
        lambda farm, peers: software.AgentSoftwareResource(farm.software),
        {"GET": READ, "POST": THIS_AGENT_OR_MANAGER},
        bodies={"POST": AgentSoftwareBody},
        answers={
            "GET": Answer(list[SoftwareRefJson]),
            "POST": Answer(list[SoftwareRefJson], (201,)),
        },
        summaries={"GET": "The agent's software", "POST": "Record a version the agent has"},
    ),
    Route(
        "/api/v1/agents/{agent_id:uuid}/software/{name}/versions/{version}",
        lambda farm, peers: software.AgentSoftwareVersionResource(farm.software),
        {"DELETE": THIS_AGENT_OR_MANAGER},
        answers={"DELETE": NO_CONTENT},
        summaries={"DELETE": "Forget a version the agent had"},
    ),
    Route(
        "/api/v1/jobtypes",
        lambda farm, peers: jobtypes.JobTypeCollectionResource(farm.jobtypes),
        {"GET": READ, "POST": ADMINISTER},
        creates=frozenset({"POST"}),
        bodies={"POST": JobTypeSpec},
        answers={"GET": Answer(list[JobTypeJson]), "POST": Answer(JobTypeJson, (201,))},
        summaries={"GET": "Job types (their newest versions)", "POST": "Add a job type"},
    ),
    Route(
        "/api/v1/jobtypes/{name}",
        lambda farm, peers: jobtypes.JobTypeResource(farm.jobtypes),
        {"GET": READ, "PUT": ADMINISTER, "DELETE": ADMINISTER},
        creates=frozenset({"PUT"}),
        bodies={"PUT": JobTypeSpec},
        answers={
            "GET": Answer(JobTypeJson),
            "PUT": Answer(JobTypeJson, (200, 201), description="201: a new version"),
            "DELETE": NO_CONTENT,
        },
        summaries={
            "GET": "A job type (its newest version)",
            "PUT": "Add a version of a job type",
            "DELETE": "Remove a job type",
        },
    ),
    Route(
        "/api/v1/jobtypes/{name}/versions",
        lambda farm, peers: jobtypes.JobTypeVersionsResource(farm.jobtypes),
        {"GET": READ},
        answers={"GET": Answer(list[JobTypeJson])},
        summaries={"GET": "Every version of a job type"},
    ),
    Route(
        f"/api/v1/jobtypes/{{name}}/versions/{{version:{ID}}}",
        lambda farm, peers: jobtypes.JobTypeVersionResource(farm.jobtypes),
        {"GET": READ},
        answers={"GET": Answer(JobTypeJson)},
        summaries={"GET": "A version of a job type"},
    ),
    Route(
        "/api/v1/jobs",
        lambda farm, peers: jobs.JobCollectionResource(farm.jobs),
        {"GET": READ, "POST": Need((Permission.SUBMIT_JOBS,))},
        creates=frozenset({"POST"}),
        bodies={"POST": JOB_SPEC_BODY},
        answers={"GET": Answer(list[JobJson]), "POST": Answer(JobJson, (201,))},
        queries={"GET": JobFilters},
        summaries={"GET": "List jobs", "POST": "Submit a job"},
    ),
    Route(
        "/api/v1/jobs/{job}",
        lambda farm, peers: jobs.JobResource(farm.jobs),
        {"GET": READ, "POST": OWN_JOB, "DELETE": OWN_JOB},
        bodies={"POST": JobChanges},
        answers={"GET": Answer(JobJson), "POST": Answer(JobJson), "DELETE": NO_CONTENT},
        summaries={
            "GET": "A job (by id or title)",
            "POST": "Change a job",
            "DELETE": "Delete a job",
        },
    ),
    Route(
        "/api/v1/jobs/{job}/tasks",
        lambda farm, peers: jobs.JobTasksResource(farm.jobs),
        {"GET": READ},
        answers={"GET": Answer(list[TaskJson])},
        queries={"GET": TaskPage},
        summaries={"GET": "A job's tasks"},
    ),
    Route(
        "/api/v1/jobs/{job}/explain",
        lambda farm, peers: explain.JobExplanationResource(farm.explain),
        {"GET": READ},
        answers={"GET": Answer(JobExplanationJson)},
        summaries={"GET": "Whether the job can run now, and why not"},
    ),
    Route(
        "/api/v1/jobs/{job}/blocklist",
        lambda farm, peers: jobs.JobBlocklistResource(farm.jobs),
        {"GET": READ, "DELETE": Need((Permission.MANAGE_BLOCKLISTS,))},
        answers={"GET": Answer(list[BlockJson]), "DELETE": Answer(UnblockedJson)},
        summaries={"GET": "The job's blocklist", "DELETE": "Lift every agent's block"},
    ),
    Route(
        "/api/v1/jobs/{job}/blocklist/{agent_id:uuid}",
        lambda farm, peers: jobs.JobBlockResource(farm.jobs),
        {"DELETE": Need((Permission.MANAGE_BLOCKLISTS,))},
        answers={"DELETE": NO_CONTENT},
        summaries={"DELETE": "Lift one agent's block"},
    ),
    Route(
        f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}",
        lambda farm, peers: jobs.JobTaskResource(farm.jobs),
        {"GET": READ, "POST": AS_THE_TASKS_AGENT},
        bodies={"POST": TaskReportJson},
        answers={"GET": Answer(TaskJson), "POST": Answer(TaskJson)},
        summaries={"GET": "A task", "POST": "Report on a task (its agent)"},
    ),
    Route(
        f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}/failures",
        lambda farm, peers: jobs.JobTaskFailuresResource(farm.jobs),
        {"GET": READ},
        answers={"GET": Answer(list[FailureJson])},
        summaries={"GET": "Why each failed attempt at the task failed"},
    ),
    Route(
        f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}/history",
        lambda farm, peers: history.TaskHistoryResource(farm.history),
        {"GET": READ},
        answers={"GET": Answer(list[TaskChangeJson])},
        queries={"GET": HistoryFilters},
        summaries={"GET": "The task's changes of state, newest first"},
    ),
    Route(
        f"{_ATTEMPT}/logs",
        lambda farm, peers: files.TaskLogsResource(farm.logs),
        {"GET": READ, "POST": AS_THE_TASKS_AGENT},
        creates=frozenset({"POST"}),
        bodies={"POST": LogBody},
        answers={
            "GET": Answer(list[LogJson]),
            "POST": Answer(LogJson, (200, 201), description="Registered (201: a new log)"),
        },
        summaries={"GET": "The logs of an attempt", "POST": "Register a log"},
    ),
    Route(
        f"{_ATTEMPT}/logs/{{identifier}}",
        lambda farm, peers: files.TaskLogResource(farm.logs),
        {"POST": AS_THE_TASKS_AGENT},
        bodies={"POST": LogStateBody},
        answers={"POST": Answer(LogJson)},
        summaries={"POST": "Set a log's state"},
    ),
    Route(
        f"{_ATTEMPT}/logs/{{identifier}}/logfile",
        lambda farm, peers: files.TaskLogFileResource(farm.logs),
        {"GET": READ, "PUT": AS_THE_TASKS_AGENT},
        raw_bodies=frozenset({"PUT"}),
        creates=frozenset({"PUT"}),
        bodies={"PUT": Raw(files.LOG_TYPES, "The log's text")},
        answers={
            "GET": Answer(
                bytes,
                media_type="text/plain",
                description="The log's text from `offset` on (a running frame's: so far)",
            ),
            "PUT": Answer(LogJson, (201,)),
        },
        queries={"GET": LogFileQuery},
        summaries={"GET": "Download a log", "PUT": "Upload a log's text"},
    ),
    Route(
        f"{_ATTEMPT}/logs/{{identifier}}/chunks",
        lambda farm, peers: files.TaskLogChunksResource(farm.logs),
        {"POST": AS_THE_TASKS_AGENT},
        raw_bodies=frozenset({"POST"}),
        bodies={"POST": Raw(files.LOG_TYPES, "The next bytes of the log (at most 1 MiB)")},
        answers={
            "POST": Answer(
                ChunkJson,
                (200, 409),
                description="Appended, or had already (200); a gap, resend from `offset` (409)",
            )
        },
        queries={"POST": ChunkQuery},
        summaries={"POST": "Append a chunk of a running frame's log"},
    ),
    Route(
        "/api/v1/agents/updates/{version}",
        lambda farm, peers: files.AgentUpdateResource(farm.updates),
        {"GET": READ, "PUT": ADMINISTER},
        raw_bodies=frozenset({"PUT"}),
        creates=frozenset({"PUT"}),
        bodies={"PUT": Raw(("application/zip",), "The agent's update archive")},
        answers={
            "GET": Answer(bytes, media_type="application/zip", description="The archive"),
            "PUT": Answer(UpdateJson, (201,)),
        },
        summaries={"GET": "Download an agent update", "PUT": "Upload an agent update"},
    ),
    *(
        Route(
            f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}/{action}",
            _control(controls.TaskControlResource, action),
            {"POST": OWN_JOB},
            bodies={"POST": MayOmit(NoBodyJson)},
            answers={"POST": Answer(TaskJson)},
            summaries={"POST": f"{str(action).capitalize()} a task"},
        )
        for action in TaskAction
    ),
    *(
        Route(
            f"/api/v1/jobs/{{job}}/tasks/{action}",
            _control(controls.TasksControlResource, action),
            {"POST": OWN_JOB},
            bodies={"POST": TasksJson},
            answers={"POST": Answer(ResultsJson)},
            summaries={"POST": f"{str(action).capitalize()} some of a job's tasks"},
        )
        for action in TaskAction
    ),
    *(
        Route(
            f"/api/v1/jobs/{{job}}/{action}",
            _control(controls.JobControlResource, action),
            {"POST": OWN_JOB},
            bodies={"POST": MayOmit(controls.job_control_body(action))},
            answers={"POST": Answer(controls.JobControlJson)},
            summaries={"POST": f"{str(action).capitalize()} a job"},
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
            bodies={"POST": controls.jobs_control_body(action)},
            answers={"POST": Answer(ResultsJson)},
            summaries={"POST": f"{str(action).capitalize()} several jobs"},
        )
        for action in JobAction
    ),
    Route(
        "/api/v1/events",
        lambda farm, peers: events.EventCollectionResource(farm.events),
        {"GET": READ},
        answers={"GET": Answer(list[EventJson])},
        queries={"GET": EventFilters},
        summaries={"GET": "The audit trail, newest first"},
    ),
    Route(
        OPENAPI_PATH,
        lambda farm, peers: reference.OpenApiResource(ROUTES),
        {"GET": STATIC},
        answers={"GET": Answer(dict[str, Any], description="This document")},
        summaries={"GET": "The API's OpenAPI 3.1 document"},
    ),
    # Outside /api/, where scrapers and orchestrators look for them.
    Route(
        "/healthz",
        lambda farm, peers: monitoring.HealthResource(),
        {"GET": Need((), "anyone: the process answers")},
        answers={"GET": Answer(HealthJson)},
        summaries={"GET": "Liveness: the process answers"},
    ),
    Route(
        "/readyz",
        lambda farm, peers: monitoring.ReadinessResource(farm.monitoring),
        {"GET": Need((), "anyone: the database and the queue answer")},
        answers={
            "GET": Answer(
                ReadinessJson,
                statuses=(200, 503),
                description="ready (200), or not (503) and why",
            )
        },
        summaries={"GET": "Readiness: the database and the queue answer, the schema is current"},
    ),
    Route(
        "/metrics",
        lambda farm, peers: monitoring.MetricsResource(farm.monitoring, peers),
        {"GET": Need((Permission.READ,), "or no credential from FARM_METRICS_NETWORKS")},
        answers={
            "GET": Answer(
                bytes, media_type="text/plain", description="Prometheus' text exposition format"
            )
        },
        summaries={"GET": "The farm's metrics, for Prometheus"},
    ),
)


def responders(resource: object) -> set[str]:
    """The methods ``resource`` answers (its ``on_<method>`` responders)."""
    return {
        method for method in METHODS if callable(getattr(resource, f"on_{method.lower()}", None))
    }
