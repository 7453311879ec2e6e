"""The Falcon application: ``create_app(farm, options)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs
import falcon
import falcon.media
import orjson

from farm_domain.farm import Farm
from farm_http import agents, dashboard, errors, events, files, jobs, jobtypes, software
from farm_http.open_access import OpenAccess
from farm_http.peers import Network, PeerResolver
from farm_http.request_log import RequestLog

# Ids are 32-bit integers in storage: a larger number in a path matches no route (404).
ID = "int(min=0, max=2147483647)"


class HttpSettings(Protocol):
    """The settings the HTTP layer reads (the master's Settings has them, with their defaults:
    this layer keeps none of its own)."""

    @property
    def trusted_proxies(self) -> Sequence[Network]: ...
    @property
    def access_log(self) -> str: ...
    @property
    def slow_request_ms(self) -> float: ...
    @property
    def dashboard_refresh_seconds(self) -> int: ...
    @property
    def secure_cookies(self) -> bool: ...


@attrs.frozen
class HttpOptions:
    trusted_proxies: Sequence[Network]
    access_log: str
    """Which requests get an access-log line: all, errors (and slow ones), off."""
    slow_request_ms: float
    dashboard_refresh_seconds: int
    """How often dashboard pages reload themselves; 0 never."""
    secure_cookies: bool
    """Mark the session cookie Secure on every response, not only on https requests."""

    @classmethod
    def of(cls, settings: HttpSettings) -> HttpOptions:
        return cls(
            trusted_proxies=settings.trusted_proxies,
            access_log=settings.access_log,
            slow_request_ms=settings.slow_request_ms,
            dashboard_refresh_seconds=settings.dashboard_refresh_seconds,
            secure_cookies=settings.secure_cookies,
        )


def _dumps(value: object) -> bytes:
    return orjson.dumps(value)


def create_app(farm: Farm, options: HttpOptions) -> falcon.App[falcon.Request, falcon.Response]:
    peers = PeerResolver(options.trusted_proxies)
    middleware: list[RequestLog | OpenAccess] = (
        []
        if options.access_log == "off"
        else [RequestLog(options.access_log, options.slow_request_ms)]
    )
    # INTERIM, until the authentication middleware replaces it: see farm_http.open_access.
    middleware.append(OpenAccess(peers))
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    json_handler = falcon.media.JSONHandler(dumps=_dumps, loads=orjson.loads)
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    errors.install(app)

    peers = PeerResolver(options.trusted_proxies)
    app.add_route("/api/v1/agents", agents.AgentCollectionResource(farm.agents, peers))
    app.add_route("/api/v1/agents/schema", agents.AgentSchemaResource())
    app.add_route("/api/v1/agents/{agent_id:uuid}", agents.AgentResource(farm.agents))
    app.add_route("/api/v1/agents/{agent_id:uuid}/tasks", agents.AgentTasksResource(farm.agents))
    app.add_route("/api/v1/agents/{agent_id:uuid}/tags", agents.AgentTagsResource(farm.agents))
    catalogue = farm.software
    app.add_route("/api/v1/software", software.SoftwareCollectionResource(catalogue))
    app.add_route("/api/v1/software/{name}", software.SoftwareResource(catalogue))
    app.add_route("/api/v1/software/{name}/versions", software.SoftwareVersionsResource(catalogue))
    app.add_route(
        "/api/v1/software/{name}/versions/{version}", software.SoftwareVersionResource(catalogue)
    )
    app.add_route(
        "/api/v1/agents/{agent_id:uuid}/software", software.AgentSoftwareResource(catalogue)
    )
    app.add_route(
        "/api/v1/agents/{agent_id:uuid}/software/{name}/versions/{version}",
        software.AgentSoftwareVersionResource(catalogue),
    )
    app.add_route("/api/v1/jobtypes", jobtypes.JobTypeCollectionResource(farm.jobtypes))
    app.add_route("/api/v1/jobtypes/{name}", jobtypes.JobTypeResource(farm.jobtypes))
    app.add_route(
        "/api/v1/jobtypes/{name}/versions", jobtypes.JobTypeVersionsResource(farm.jobtypes)
    )
    app.add_route(
        f"/api/v1/jobtypes/{{name}}/versions/{{version:{ID}}}",
        jobtypes.JobTypeVersionResource(farm.jobtypes),
    )
    app.add_route("/api/v1/jobs", jobs.JobCollectionResource(farm.jobs))
    app.add_route("/api/v1/jobs/{job}", jobs.JobResource(farm.jobs))
    app.add_route("/api/v1/jobs/{job}/tasks", jobs.JobTasksResource(farm.jobs))
    app.add_route("/api/v1/jobs/{job}/blocklist", jobs.JobBlocklistResource(farm.jobs))
    app.add_route("/api/v1/jobs/{job}/blocklist/{agent_id:uuid}", jobs.JobBlockResource(farm.jobs))
    app.add_route(f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}", jobs.JobTaskResource(farm.jobs))
    attempt = f"/api/v1/jobs/{{job}}/tasks/{{task_id:{ID}}}/attempts/{{attempt:{ID}}}"
    app.add_route(f"{attempt}/logs", files.TaskLogsResource(farm.logs))
    app.add_route(f"{attempt}/logs/{{identifier}}", files.TaskLogResource(farm.logs))
    app.add_route(f"{attempt}/logs/{{identifier}}/logfile", files.TaskLogFileResource(farm.logs))
    app.add_route("/api/v1/agents/updates/{version}", files.AgentUpdateResource(farm.updates))
    app.add_route("/api/v1/events", events.EventCollectionResource(farm.events))
    dashboard.add_routes(app, farm, ID, options)
    return app
