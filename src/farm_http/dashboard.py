"""The web dashboard: server-rendered pages over the same services as the API.

Pages refresh themselves (a meta refresh, no script; every ``FARM_DASHBOARD_REFRESH`` seconds,
0 for never); actions are plain form posts that redirect to the page of what they changed
(post/redirect/get). Lists are paged, and each page costs a fixed number of queries whatever its
size. Who may see and post what: ``farm_http.dashboard_auth``; a page shows only the actions its
identity may take, and the services refuse the rest anyway.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import attrs
import falcon
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.agents import AgentChanges, AgentQuery, AgentSort
from farm_domain.controls import MAX_BULK, Running
from farm_domain.controls import JobAction as Control
from farm_domain.controls import TaskAction as TaskControl
from farm_domain.errors import Forbidden, TooManyRequests, Unauthenticated, ValidationError
from farm_domain.events import EventQuery
from farm_domain.farm import Farm
from farm_domain.history import HistoryPage
from farm_domain.identities import MAX_NAME, MAX_PASSWORD
from farm_domain.job_requests import JobChanges
from farm_domain.validation import parse_id
from farm_domain.work import Job, JobQuery, JobSort, TaskStatus
from farm_http import list_filters, log_page
from farm_http.dashboard_auth import (
    LOGIN_PAGE,
    SESSION,
    DashboardSessions,
    clear_session_cookie,
    is_dashboard,
    may_post,
    page_identity,
    posted_form,
    read_form,
    set_session_cookie,
    viewer,
)
from farm_http.history_pages import TaskPage
from farm_http.live import ChangeWatch, EventStream
from farm_http.peers import PeerResolver
from farm_http.reference import openapi_document, reference
from farm_http.routes import OPENAPI_PATH, ROUTES

if TYPE_CHECKING:
    from farm_http.app import HttpOptions

PAGE = 100
AGENT_PAGE_CHANGES = HistoryPage(limit=50)
POLICY = AccessPolicy()


def _state_of(job: Job) -> str:
    return job.state.value if job.state else "queued"


class Pages:
    def __init__(self, farm: Farm, refresh_seconds: int) -> None:
        self._farm = farm
        self._refresh = refresh_seconds
        self._templates = Environment(
            loader=PackageLoader("farm_http", "templates"), autoescape=select_autoescape(["html"])
        )

    def render(
        self, req: falcon.Request, resp: falcon.Response, template: str, **context: Any
    ) -> None:
        identity = viewer(req)
        posts = may_post(req)
        resp.content_type = falcon.MEDIA_HTML
        context.setdefault("refresh", self._refresh)  # a static page passes 0
        resp.text = self._templates.get_template(template).render(
            now=datetime.now(UTC).strftime("%H:%M:%S UTC"),
            statuses=list(TaskStatus),
            state_of=_state_of,
            duration=_duration,
            done=TaskStatus.DONE,
            failed=TaskStatus.FAILED,
            canceled=TaskStatus.CANCELED,
            who=identity,
            session=getattr(req.context, "credential", None) == SESSION,
            csrf=getattr(req.context, "csrf_token", None) or "",
            may_manage_agents=posts
            and identity is not None
            and identity.may(Permission.MANAGE_AGENTS),
            may_change=lambda job: posts and identity is not None and _may_change(identity, job),
            **context,
        )

    def error_page(self, req: falcon.Request, resp: falcon.Response, message: str) -> bool:
        """An error on a dashboard route, to a browser (it prefers HTML to JSON), as a page
        with the message; the status is already set. Other clients keep the JSON answer."""
        if not is_dashboard(req.path) or req.path.startswith("/static/"):
            return False
        if req.client_prefers([falcon.MEDIA_JSON, falcon.MEDIA_HTML]) != falcon.MEDIA_HTML:
            return False
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self._templates.get_template("error.html").render(
            title=str(resp.status),
            status=str(resp.status),
            message=message,
            back=req.path if req.method == "GET" else None,
            who=viewer(req),
            refresh=0,
            now=datetime.now(UTC).strftime("%H:%M:%S UTC"),
        )
        return True

    def render_login(
        self, resp: falcon.Response, name: str = "", message: str | None = None
    ) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self._templates.get_template("login.html").render(
            name=name, message=message, max_name=MAX_NAME, max_password=MAX_PASSWORD
        )


def _may_change(identity: Identity, job: Job) -> bool:
    """Whether the page offers ``job``'s actions: the services' own rule, asked in advance."""
    try:
        POLICY.require_job(identity, Permission.CHANGE_JOBS, job.submitted_by)
    except Forbidden:
        return False
    return True


MAX_PAGE = 100000


def _page(req: falcon.Request) -> int:
    value = req.get_param_as_int("page", min_value=1, max_value=MAX_PAGE)
    return value or 1


def _offset(req: falcon.Request) -> int:
    """The offset of the page the URL names (each read takes one more row than a page shows:
    whether there is a next page)."""
    return (_page(req) - 1) * PAGE


TASK_STATUSES = {s.value: s for s in TaskStatus}


class Filters:
    """A list page's validated filters, as the form shows them and its links keep them."""

    def __init__(
        self, values: dict[str, str | None], sort: str | None = None, order: str = "asc"
    ) -> None:
        self.values = values
        self._sort = sort  # the sort and order the page has when the URL names none
        self._order = order

    def get(self, name: str) -> str:
        return self.values.get(name) or ""

    def link(self, **changes: str | int | None) -> str:
        """This page's URL with ``changes`` to its filters (a changed filter starts at page 1)."""
        merged: dict[str, str | int | None] = {**self.values, "page": None, **changes}
        kept = {k: v for k, v in merged.items() if v not in (None, "")}
        return "?" + urlencode(kept) if kept else "?"

    def sort_link(self, column: str) -> Markup:
        """A column header's link: sorts by it, or turns the order round when it is the sort."""
        current = self.values.get("sort") or self._sort
        order = self.values.get("order") or self._order
        flipped = "desc" if current == column and order != "desc" else "asc"
        mark = ("▼" if order == "desc" else "▲") if current == column else ""
        return Markup('<a class="sort" href="{}">{}{}</a>').format(
            self.link(sort=column, order=flipped), column.replace("_", " "), mark
        )


def _refused(req: falcon.Request) -> int:
    """How many of the items a bulk action named were refused (after its redirect)."""
    return req.get_param_as_int("refused", min_value=0, max_value=MAX_BULK) or 0


def _agent_filters(req: falcon.Request) -> tuple[AgentQuery, Filters]:
    query = list_filters.agent_filters(req.params)
    shown = Filters(list_filters.agent_filter_values(query), AgentSort.HOSTNAME.value, "asc")
    return attrs.evolve(query, limit=PAGE + 1, offset=_offset(req)), shown


def _job_filters(req: falcon.Request) -> tuple[JobQuery, Filters]:
    query = list_filters.job_filters(req.params)
    shown = Filters(list_filters.job_filter_values(query), JobSort.ID.value, "desc")
    return attrs.evolve(query, limit=PAGE + 1, offset=_offset(req)), shown


class AgentsPage:
    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        identity = page_identity(req)
        query, filters = _agent_filters(req)
        agents = self._farm.agents.overview(identity, query)
        self._pages.render(
            req,
            resp,
            "agents.html",
            title="Agents",
            section="agents",
            agents=agents[:PAGE],
            page=_page(req),
            more=len(agents) > PAGE,
            filters=filters,
            agent_states=list(list_filters.AGENT_STATES),
            agent_sorts=list(list_filters.AGENT_SORTS),
            refused=_refused(req),
        )


class JobsPage:
    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        identity = page_identity(req)
        query, filters = _job_filters(req)
        views = self._farm.jobs.query(identity, query)
        self._pages.render(
            req,
            resp,
            "jobs.html",
            title="Jobs",
            section="jobs",
            views=views[:PAGE],
            page=_page(req),
            more=len(views) > PAGE,
            filters=filters,
            job_states=list(list_filters.JOB_STATES),
            job_sorts=list(list_filters.JOB_SORTS),
            refused=_refused(req),
        )


class JobPage:
    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: int) -> None:
        identity = page_identity(req)
        view = self._farm.jobs.get(identity, job_id)
        page = _page(req)
        status = list_filters.choice(req.params, "status", TASK_STATUSES)
        filters = Filters({"status": status.value if status else None})
        tasks = self._farm.jobs.tasks(
            identity, job_id, limit=PAGE + 1, offset=(page - 1) * PAGE, status=status
        )
        more = len(tasks) > PAGE
        tasks = tasks[:PAGE]
        blocks = self._farm.jobs.blocklist(identity, job_id)
        explained = self._farm.explain.job(identity, job_id)
        may_unblock = may_post(req) and identity.may(Permission.MANAGE_BLOCKLISTS)
        agents = self._farm.agents.summaries(
            identity, [t.agent_id for t in tasks if t.agent_id] + [b.block.agent_id for b in blocks]
        )
        parents, children = self._farm.jobs.relatives(identity, job_id)
        self._pages.render(
            req,
            resp,
            "job.html",
            title=view.job.title,
            section="jobs",
            view=view,
            tasks=tasks,
            page=page,
            more=more,
            blocks=blocks,
            agents=agents,
            parents=parents,
            children=children,
            remaining=self._farm.jobs.remaining_time(identity, job_id),
            command=_command(view.job),
            may_unblock=may_unblock,
            refused=_refused(req),
            explained=explained,
            filters=filters,
        )


def _command(job: Job) -> str | None:
    """What the job runs, for the page: its command line or its scene, if its data says."""
    data = job.data
    command = data.get("command")
    if isinstance(command, list):
        return " ".join(str(part) for part in command)
    for key in ("command", "scene", "blend", "file"):
        if isinstance(data.get(key), str):
            return str(data[key])
    return None


def _duration(value: timedelta | None) -> str:
    """A duration as a wrangler reads it: 2h 05m, 3m 07s, 41s."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02}s"
    return f"{seconds}s"


class AgentPage:
    """An agent, and why it is idle (or what it would get)."""

    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        identity = page_identity(req)
        agent = self._farm.agents.get(identity, agent_id)
        self._pages.render(
            req,
            resp,
            "agent.html",
            title=agent.hostname,
            section="agents",
            agent=agent,
            explained=self._farm.explain.agent(identity, agent_id),
            changes=self._farm.history.of_agent(identity, agent_id, AGENT_PAGE_CHANGES),
        )


class OverviewPage:
    """The farm at a glance: agents by state, frames done per hour, failures by reason (SVG
    drawn here, no script)."""

    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        identity = page_identity(req)
        snapshot = self._farm.overview.snapshot(identity)
        done = [n for _, n in snapshot.done_per_hour]
        self._pages.render(
            req,
            resp,
            "overview.html",
            title="Overview",
            section="overview",
            snapshot=snapshot,
            done_max=max(done),
            done_total=sum(done),
        )


class EventsPage:
    """The newest changes on the farm (the audit trail), optionally of one target."""

    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        identity = page_identity(req)
        target = req.get_param("target") or None
        if target is not None and len(target) > 200:
            raise ValidationError("`target` must be at most 200 characters", field="target")
        events = self._farm.events.query(identity, EventQuery(target=target, limit=PAGE))
        self._pages.render(
            req, resp, "events.html", title="Events", section="events", events=events, target=target
        )


class ReferencePage:
    """The API reference: the OpenAPI document (``/api/v1/openapi.json``) for people to read."""

    def __init__(self, pages: Pages) -> None:
        self._pages = pages
        built = openapi_document(ROUTES)
        self._info = built["info"]
        self._openapi = built["openapi"]
        self._groups, self._schemas = reference(built)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page_identity(req)
        self._pages.render(
            req,
            resp,
            "reference.html",
            title="API reference",
            section="reference",
            info=self._info,
            openapi=self._openapi,
            groups=self._groups,
            schemas=self._schemas,
            base=req.prefix,
            document_path=OPENAPI_PATH,
            refresh=0,
        )


class AgentAction:
    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID, action: str
    ) -> None:
        states = {"disable": "disabled", "enable": "online"}
        if action not in states:
            raise falcon.HTTPNotFound(description=f"no action {action}")
        identity, _ = posted_form(req)
        self._farm.agents.update(identity, agent_id, AgentChanges(state=states[action]))
        raise falcon.HTTPSeeOther("/")


class JobAction:
    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: int, action: str) -> None:
        if action not in ("pause", "resume", "requeue", "priority", "unblock", "cancel", "delete"):
            raise falcon.HTTPNotFound(description=f"no action {action}")
        identity, form = posted_form(req)
        jobs = self._farm.jobs
        if action == "delete":
            jobs.delete(identity, job_id)
            raise falcon.HTTPSeeOther("/jobs")
        if action == "cancel":
            self._farm.controls.job(identity, Control.CANCEL, job_id)
        elif action == "pause" and form.get("running") == "stop":
            self._farm.controls.job(identity, Control.PAUSE, job_id, Running.STOP)
        elif action == "pause":
            jobs.update(identity, job_id, JobChanges(state="paused"))
        elif action == "resume":
            jobs.update(identity, job_id, JobChanges(state="queued"))
        elif action == "requeue":
            jobs.requeue_failed(identity, job_id)
        elif action == "unblock":
            # One agent (its id in the form), or every agent blocked for the job.
            text = form.get("agent", "")[:64]
            try:
                agent_id = uuid.UUID(text) if text else None
            except ValueError:
                raise ValidationError(f"{text!r} is not an agent id", field="agent") from None
            jobs.unblock(identity, job_id, agent_id)
        else:
            text = form.get("priority", "")[:32]
            try:
                priority = int(text)
            except ValueError:
                raise ValidationError(f"priority {text!r} is not a whole number") from None
            jobs.update(identity, job_id, JobChanges(priority=priority))
        raise falcon.HTTPSeeOther(f"/jobs/{job_id}")


BULK_JOB_ACTIONS = ("pause", "resume", "cancel", "requeue", "delete")
BULK_AGENT_ACTIONS = {"enable": "online", "disable": "disabled"}
MAX_BACK = 2000


def _ticked(form: dict[str, str], prefix: str) -> list[str]:
    """The names after ``prefix`` of the ticked boxes (``<prefix><id>`` fields), 1 to
    MAX_BULK of them."""
    ticked = [key[len(prefix) :] for key in form if key.startswith(prefix)]
    if not ticked:
        raise ValidationError("nothing was selected", field=prefix.rstrip("-"))
    if len(ticked) > MAX_BULK:
        raise ValidationError(f"at most {MAX_BULK} can be selected at once")
    return ticked


def _back_to(page: str, form: dict[str, str], refused: int) -> str:
    """The list page the form came from, with its filters (``back``, its query string) and how
    many items were refused. Only that page's query is kept, re-encoded: never another place."""
    back = form.get("back", "")[:MAX_BACK]
    kept = [(k, v) for k, v in parse_qsl(back.removeprefix("?")) if k != "refused"]
    if refused:
        kept.append(("refused", str(refused)))
    return page + ("?" + urlencode(kept) if kept else "")


class JobsBulkAction:
    """Pause, resume, cancel, requeue or delete the jobs ticked on the jobs page (``job-<id>``
    fields; at most MAX_BULK). Pause, resume, cancel and requeue are the controls' bulk request
    (``Controls.jobs``): each job done or refused on its own, a refused one unchanged; a
    deletion is refused for a job that is gone or not the caller's. The refusals are counted on
    the page (``?refused=``); a caller who may change no job is refused whole."""

    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        identity, form = posted_form(req)
        action = form.get("action", "")
        if action not in BULK_JOB_ACTIONS:
            raise ValidationError(
                f"`action` must be one of {', '.join(BULK_JOB_ACTIONS)}", field="action"
            )
        ticked = [parse_id(text) for text in _ticked(form, "job-")]
        job_ids = list(dict.fromkeys(job_id for job_id in ticked if job_id is not None))
        refused = len(ticked) - len(job_ids)
        if not job_ids:
            raise ValidationError("no job was selected", field="job")
        if action == "delete":
            outcomes = self._farm.controls.delete_jobs(identity, job_ids)
        else:
            outcomes = self._farm.controls.jobs(identity, Control(action), job_ids)
        refused += sum(not outcome.ok for outcome in outcomes)
        raise falcon.HTTPSeeOther(_back_to("/jobs", form, refused))


class AgentsBulkAction:
    """Enable or disable the agents ticked on the agents page (``agent-<id>`` fields; at most
    MAX_BULK). One who may not manage agents is refused whole; an agent gone meanwhile is
    counted refused (``?refused=``)."""

    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        identity, form = posted_form(req)
        action = form.get("action", "")
        if action not in BULK_AGENT_ACTIONS:
            raise ValidationError(
                f"`action` must be one of {', '.join(BULK_AGENT_ACTIONS)}", field="action"
            )
        POLICY.require(identity, Permission.MANAGE_AGENTS)
        wanted: list[uuid.UUID] = []
        refused = 0
        for text in _ticked(form, "agent-"):
            try:
                wanted.append(uuid.UUID(text[:64]))
            except ValueError:
                refused += 1
        found = self._farm.agents.summaries(identity, wanted)
        refused += len(set(wanted) - found.keys())
        changes = AgentChanges(state=BULK_AGENT_ACTIONS[action])
        for agent_id in dict.fromkeys(a for a in wanted if a in found):
            self._farm.agents.update(identity, agent_id, changes)
        raise falcon.HTTPSeeOther(_back_to("/", form, refused))


class TaskActions:
    """Retry, skip or stop tasks from the job page: one (its row's button, ``only``) or those
    ticked (``task-<id>`` fields). Refusals of some of the ticked tasks are counted on the page
    (``?refused=``); a refusal of the one task, or of the whole, is the error answer."""

    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: int, action: str) -> None:
        try:
            control = TaskControl(action)
        except ValueError:
            raise falcon.HTTPNotFound(description=f"no action {action}") from None
        identity, form = posted_form(req)
        controls = self._farm.controls
        if "only" in form:
            task_id = parse_id(form["only"])
            if task_id is None:
                raise ValidationError(f"{form['only'][:32]!r} is not a task id", field="only")
            controls.task(identity, control, job_id, task_id)
            raise falcon.HTTPSeeOther(f"/jobs/{job_id}")
        ticked = [parse_id(key[5:]) for key in form if key.startswith("task-")]
        task_ids = [task_id for task_id in ticked if task_id is not None]
        if not task_ids:
            raise ValidationError("no task was selected", field="task")
        refused = sum(not o.ok for o in controls.tasks(identity, control, job_id, task_ids))
        raise falcon.HTTPSeeOther(f"/jobs/{job_id}" + (f"?refused={refused}" if refused else ""))


class LoginPage:
    """The login form (public) and the login itself: a session cookie, then the agents page."""

    def __init__(self, pages: Pages, farm: Farm, peers: PeerResolver, secure: bool) -> None:
        self._pages = pages
        self._farm = farm
        self._peers = peers
        self._secure = secure

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._pages.render_login(resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = read_form(req)
        name, password = form.get("name", ""), form.get("password", "")
        if len(name) > MAX_NAME:
            raise ValidationError(f"a user name is at most {MAX_NAME} characters", field="name")
        if len(password) > MAX_PASSWORD:
            raise ValidationError(
                f"a password is at most {MAX_PASSWORD} characters", field="password"
            )
        try:
            _, secret = self._farm.identities.login(name, password, self._peers.client_address(req))
        except Unauthenticated as refused:
            # The form again, with the one message whatever was wrong (not the API's JSON).
            resp.status = falcon.HTTP_401
            self._pages.render_login(resp, name=name, message=refused.message)
            return
        except TooManyRequests as refused:
            resp.status = falcon.HTTP_429
            resp.set_header("Retry-After", str(refused.retry_after))
            self._pages.render_login(resp, name=name, message=refused.message)
            return
        set_session_cookie(req, resp, secret, self._secure)
        raise falcon.HTTPSeeOther("/")


class Logout:
    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        posted_form(req)
        secret = getattr(req.context, "session_secret", None)
        if secret:
            self._farm.identities.logout(secret)
        clear_session_cookie(resp)
        raise falcon.HTTPSeeOther(LOGIN_PAGE)


class LiveStream:
    """``GET /live``: the server-sent events that tell an open page the farm changed (see
    farm_http.live); the page's script then fetches the page again and updates it in place."""

    def __init__(self, watch: ChangeWatch, lifetime: float) -> None:
        self._watch = watch
        self._lifetime = lifetime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page_identity(req)
        if not self._watch.connect():
            raise falcon.HTTPServiceUnavailable(
                description="too many pages are listening to this worker: retry shortly",
                retry_after=5,
            )
        resp.content_type = "text/event-stream; charset=utf-8"
        resp.cache_control = ["no-cache"]
        resp.set_header("X-Accel-Buffering", "no")  # nginx: pass each event on at once
        resp.stream = EventStream(self._watch, lifetime=self._lifetime)


class StaticFile:
    """A file of the app's own under /static (the CSP allows scripts and styles from here
    only)."""

    def __init__(self, name: str, content_type: str) -> None:
        self._data = (resources.files("farm_http") / "static" / name).read_bytes()
        self._type = content_type

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = self._type
        resp.cache_control = ["max-age=300"]
        resp.data = self._data


class Stylesheet:
    """The dashboard's one stylesheet: a file of the app's own, as the CSP wants (no inline
    styles)."""

    def __init__(self) -> None:
        self._css = (resources.files("farm_http") / "static" / "farm.css").read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/css; charset=utf-8"
        resp.cache_control = ["max-age=300"]
        resp.data = self._css


def add_routes(
    app: falcon.App[falcon.Request, falcon.Response],
    farm: Farm,
    id_converter: str,
    options: HttpOptions,
    pages: Pages | None = None,
) -> None:
    pages = pages or Pages(farm, options.dashboard_refresh_seconds)
    peers = PeerResolver(options.trusted_proxies)
    app.add_middleware(DashboardSessions(farm.identities, peers))
    app.add_route(LOGIN_PAGE, LoginPage(pages, farm, peers, options.secure_cookies))
    app.add_route("/logout", Logout(farm))
    app.add_route("/static/farm.css", Stylesheet())
    app.add_route(
        "/static/dashboard.js", StaticFile("dashboard.js", "text/javascript; charset=utf-8")
    )
    watch = ChangeWatch(farm.live.marker)
    app.add_route("/live", LiveStream(watch, options.live_stream_seconds))
    app.add_route("/", AgentsPage(pages, farm))
    app.add_route("/agents/{agent_id:uuid}", AgentPage(pages, farm))
    app.add_route("/jobs", JobsPage(pages, farm))
    app.add_route(f"/jobs/{{job_id:{id_converter}}}", JobPage(pages, farm))
    app.add_route(
        f"/jobs/{{job_id:{id_converter}}}/tasks/{{task_id:{id_converter}}}", TaskPage(pages, farm)
    )
    app.add_route("/events", EventsPage(pages, farm))
    app.add_route("/overview", OverviewPage(pages, farm))
    app.add_route("/reference", ReferencePage(pages))
    log_page.add_routes(app, pages, farm, id_converter)
    app.add_route("/ui/agents/bulk", AgentsBulkAction(farm))
    app.add_route("/ui/jobs/bulk", JobsBulkAction(farm))
    app.add_route("/ui/agents/{agent_id:uuid}/{action}", AgentAction(farm))
    app.add_route(f"/ui/jobs/{{job_id:{id_converter}}}/{{action}}", JobAction(farm))
    app.add_route(f"/ui/jobs/{{job_id:{id_converter}}}/tasks/{{action}}", TaskActions(farm))
