"""The web dashboard: server-rendered pages over the same services as the API.

Pages refresh themselves (a meta refresh, no script; every ``FARM_DASHBOARD_REFRESH`` seconds,
0 for never); actions are plain form posts that redirect back (post/redirect/get). Lists are
paged, and each page costs a fixed number of queries whatever its size.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import falcon
from jinja2 import Environment, PackageLoader, select_autoescape

from farm_domain.agents import AgentChanges, AgentQuery
from farm_domain.errors import ValidationError
from farm_domain.events import EventQuery
from farm_domain.farm import Farm
from farm_domain.jobs import JobChanges
from farm_domain.work import Job, JobQuery, TaskStatus
from farm_http.identity import actor

PAGE = 100


def _state_of(job: Job) -> str:
    return job.state.value if job.state else "queued"


class Pages:
    def __init__(self, farm: Farm, refresh_seconds: int) -> None:
        self._farm = farm
        self._refresh = refresh_seconds
        self._templates = Environment(
            loader=PackageLoader("farm_http", "templates"), autoescape=select_autoescape(["html"])
        )

    def render(self, resp: falcon.Response, template: str, **context: Any) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self._templates.get_template(template).render(
            refresh=self._refresh,
            now=datetime.now(UTC).strftime("%H:%M:%S UTC"),
            statuses=list(TaskStatus),
            state_of=_state_of,
            done=TaskStatus.DONE,
            failed=TaskStatus.FAILED,
            **context,
        )


def _page(req: falcon.Request) -> int:
    value = req.get_param_as_int("page", min_value=1, max_value=100000)
    return value or 1


class AgentsPage:
    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = _page(req)
        agents = self._farm.agents.overview(
            actor(req), AgentQuery(limit=PAGE + 1, offset=(page - 1) * PAGE)
        )
        self._pages.render(
            resp,
            "agents.html",
            title="Agents",
            section="agents",
            agents=agents[:PAGE],
            page=page,
            more=len(agents) > PAGE,
        )


class JobsPage:
    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = _page(req)
        views = self._farm.jobs.query(
            actor(req), JobQuery(limit=PAGE + 1, offset=(page - 1) * PAGE)
        )
        self._pages.render(
            resp,
            "jobs.html",
            title="Jobs",
            section="jobs",
            views=views[:PAGE],
            page=page,
            more=len(views) > PAGE,
        )


class JobPage:
    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: int) -> None:
        identity = actor(req)
        view = self._farm.jobs.get(identity, job_id)
        tasks = self._farm.jobs.tasks(identity, job_id)
        blocks = self._farm.jobs.blocklist(identity, job_id)
        hostnames = self._farm.agents.hostnames(
            identity, [t.agent_id for t in tasks if t.agent_id] + [b.block.agent_id for b in blocks]
        )
        self._pages.render(
            resp,
            "job.html",
            title=view.job.title,
            section="jobs",
            view=view,
            tasks=tasks,
            blocks=blocks,
            hostnames=hostnames,
        )


class EventsPage:
    """The newest changes on the farm (the audit trail), optionally of one target."""

    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        target = req.get_param("target") or None
        if target is not None and len(target) > 200:
            raise ValidationError("`target` must be at most 200 characters", field="target")
        events = self._farm.events.query(actor(req), EventQuery(target=target, limit=PAGE))
        self._pages.render(
            resp, "events.html", title="Events", section="events", events=events, target=target
        )


def _form(req: falcon.Request) -> dict[str, str]:
    raw = req.bounded_stream.read(64 * 1024).decode(errors="replace")
    return {key: values[-1] for key, values in parse_qs(raw).items()}


def _back(req: falcon.Request, default: str) -> None:
    referer = req.get_header("Referer") or ""
    path = referer.split("//", 1)[-1].partition("/")[2] if referer else ""
    raise falcon.HTTPSeeOther("/" + path if path else default)


class AgentAction:
    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID, action: str
    ) -> None:
        states = {"disable": "disabled", "enable": "online"}
        if action not in states:
            raise falcon.HTTPNotFound(description=f"no action {action}")
        self._farm.agents.update(actor(req), agent_id, AgentChanges(state=states[action]))
        _back(req, "/")


class JobAction:
    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: int, action: str) -> None:
        jobs = self._farm.jobs
        identity = actor(req)
        if action == "pause":
            jobs.update(identity, job_id, JobChanges(state="paused"))
        elif action == "resume":
            jobs.update(identity, job_id, JobChanges(state="queued"))
        elif action == "requeue":
            jobs.requeue_failed(identity, job_id)
        elif action == "priority":
            text = _form(req).get("priority", "")
            try:
                priority = int(text)
            except ValueError:
                raise ValidationError(f"priority {text!r} is not a whole number") from None
            jobs.update(identity, job_id, JobChanges(priority=priority))
        else:
            raise falcon.HTTPNotFound(description=f"no action {action}")
        _back(req, "/jobs")


def add_routes(
    app: falcon.App[falcon.Request, falcon.Response],
    farm: Farm,
    id_converter: str,
    refresh_seconds: int,
) -> None:
    pages = Pages(farm, refresh_seconds)
    app.add_route("/", AgentsPage(pages, farm))
    app.add_route("/jobs", JobsPage(pages, farm))
    app.add_route(f"/jobs/{{job_id:{id_converter}}}", JobPage(pages, farm))
    app.add_route("/events", EventsPage(pages, farm))
    app.add_route("/ui/agents/{agent_id:uuid}/{action}", AgentAction(farm))
    app.add_route(f"/ui/jobs/{{job_id:{id_converter}}}/{{action}}", JobAction(farm))
