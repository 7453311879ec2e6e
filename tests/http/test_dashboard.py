"""The dashboard's pages and actions through falcon.testing, on SQLite and PostgreSQL: logging
in, sessions and their CSRF tokens, who sees which actions, and the pages' headers."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import pytest

from farm_domain.access import Role
from farm_domain.agents import AgentQuery
from farm_domain.enums import WorkState
from farm_domain.events import EventQuery
from farm_domain.work import JobQuery, TaskOutput
from farm_http.dashboard_auth import SECURITY_HEADERS, SESSION_COOKIE
from tests.support.dashboard import (
    FORM,
    PASSWORD,
    Session,
    add_user,
    bearer,
    dashboard_client,
)
from tests.support.http_harness import Harness

PAGES = ("/", "/jobs", "/events")


class Farm:
    """The harness's farm behind a dashboard client, set up through the API as an admin."""

    def __init__(self, harness: Harness, anonymous_role: Role | None = None, **options: Any):
        self.harness = harness
        self.client = dashboard_client(harness, anonymous_role, **options)
        self.admin = bearer(harness, Role.ADMIN, "setup-admin")

    def api(self, method: str, path: str, token: dict[str, str] | None = None, **kw: Any) -> Any:
        answer = self.client.simulate_request(
            method, f"/api/v1{path}", headers=token or self.admin, **kw
        )
        assert answer.status_code < 300, answer.text
        return answer.json

    def announce(self, agent_id: uuid.UUID, hostname: str = "node1") -> None:
        self.api(
            "POST",
            "/agents/",
            json={
                "id": str(agent_id),
                "hostname": hostname,
                "ram": 4096,
                "free_ram": 2048,
                "cpus": 8,
                "port": 50000,
            },
        )

    def submit(self, title: str = "shot", token: dict[str, str] | None = None) -> Any:
        if not self.api("GET", "/jobtypes/"):
            self.api("POST", "/jobtypes", json={"name": "render"})
        return self.api(
            "POST",
            "/jobs",
            token,
            json={"title": title, "jobtype": "render", "start": 1, "end": 4, "requeue": 0},
        )

    def job(self, job_id: int) -> Any:
        return self.api("GET", f"/jobs/{job_id}")

    def session(self, name: str, role: Role) -> Session:
        add_user(self.harness, name, role)
        return Session(self.client, name)


@pytest.fixture
def dash(farm: Harness) -> Farm:
    return Farm(farm)


def test_the_agents_page_lists_agents_and_disables_them(dash: Farm) -> None:
    agent_id = uuid.uuid4()
    dash.announce(agent_id, hostname="render-07")
    wendy = dash.session("wendy", Role.WRANGLER)
    page = wendy.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "render-07" in page.text and 'http-equiv="refresh"' in page.text
    # After an action, the page of what changed: never where the Referer points.
    done = wendy.post(f"/ui/agents/{agent_id}/disable", "go=", Referer="http://evil.example/x")
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert dash.api("GET", f"/agents/{agent_id}")["state"] == "disabled"
    assert "Enable" in wendy.get("/").text
    wendy.post(f"/ui/agents/{agent_id}/enable")
    assert dash.api("GET", f"/agents/{agent_id}")["state"] == "online"
    assert wendy.post(f"/ui/agents/{agent_id}/explode").status_code == 404


@pytest.mark.parametrize("seconds", [0, 30])
def test_pages_refresh_as_often_as_configured(farm: Harness, seconds: int) -> None:
    client = dashboard_client(farm, Role.VIEWER, dashboard_refresh_seconds=seconds)
    for path in ("/", "/jobs"):
        page = client.simulate_get(path).text
        assert ('http-equiv="refresh"' in page) is bool(seconds)
        assert (f'content="{seconds}"' in page) is bool(seconds)
        assert (f"refreshes every {seconds} s" in page) is bool(seconds)


def test_the_agents_page_is_paged_and_escapes_names(dash: Farm) -> None:
    for n in range(101):
        dash.announce(uuid.uuid4(), hostname=f"n{n:03}")
    vic = dash.session("vic", Role.VIEWER)
    first = vic.get("/").text
    assert "n099" in first and "n100" not in first and "next" in first
    second = vic.get("/", params={"page": "2"}).text
    assert "n100" in second and "previous" in second
    assert vic.get("/", params={"page": "zero"}).status_code == 400


def test_the_job_page_lists_its_tasks_a_page_at_a_time(dash: Farm) -> None:
    dash.submit()
    job = dash.api(
        "POST", "/jobs", json={"title": "long", "jobtype": "render", "start": 1, "end": 101}
    )
    vic = dash.session("vic", Role.VIEWER)
    first = vic.get(f"/jobs/{job['id']}").text
    assert first.count("<tr data-task=") == 100 and "next" in first
    second = vic.get(f"/jobs/{job['id']}", params={"page": "2"}).text
    assert second.count("<tr data-task=") == 1 and "<td>101</td>" in second
    assert "previous" in second and "next" not in second


def test_the_job_page_shows_the_files_each_frame_wrote(dash: Farm) -> None:
    job = dash.submit()
    with dash.harness.uow() as uow:
        first = uow.tasks.of_job(job["id"])[0]
        written = (TaskOutput("/renders/<shot>_0001.png", 9216),)
        done = attrs.evolve(first, state=WorkState.DONE, outputs=written)
        uow.tasks.save(done, first, reason="test", at=dash.harness.clock.now())
        uow.commit()
    page = dash.session("vic", Role.VIEWER).get(f"/jobs/{job['id']}").text
    assert 'title="/renders/&lt;shot&gt;_0001.png"' in page  # the whole path, escaped
    assert '&lt;shot&gt;_0001.png <span class="dim">9.2 kB</span>' in page
    assert page.count('<td class="outputs"><span class="dim">-</span></td>') == 3


def test_jobs_pages_and_actions(dash: Farm) -> None:
    job = dash.submit("<b>shot</b>")
    agent_id = uuid.uuid4()
    dash.announce(agent_id, hostname="render-42")
    tasks = dash.api("GET", f"/jobs/{job['id']}/tasks")
    dash.api("POST", f"/agents/{agent_id}/tasks", json={"id": tasks[0]["id"]})
    dash.api(
        "POST",
        f"/jobs/{job['id']}/tasks/{tasks[0]['id']}",
        json={"state": "failed", "last_error": "exit 3: no license"},
    )
    wendy = dash.session("wendy", Role.WRANGLER)
    listing = wendy.get("/jobs").text
    assert "&lt;b&gt;shot&lt;/b&gt;" in listing and "<b>shot</b>" not in listing
    assert 'class="b-failed"' in listing and "Requeue failed" in listing
    detail = wendy.get(f"/jobs/{job['id']}").text
    assert "exit 3: no license" in detail and "Blocklist" in detail
    # Agents are named by hostname (the id on hover): on its failed task and on the blocklist.
    named = f'<span title="{agent_id}"><a href="/agents/{agent_id}">render-42</a><span class="dim">:50000</span></span>'
    assert detail.count(named) == 2
    assert "Requeue failed" in detail and 'id="actions"' in detail
    base = f"/ui/jobs/{job['id']}"
    done = wendy.post(f"{base}/priority", "priority=42", Referer="http://farm/jobs?page=3")
    assert done.status_code == 303 and done.headers["location"] == f"/jobs/{job['id']}"
    assert dash.job(job["id"])["priority"] == 42
    bad = wendy.post(f"{base}/priority", "priority=lots")
    assert bad.status_code == 400 and "not a whole number" in bad.json["error"]
    wendy.post(f"{base}/pause")
    assert dash.job(job["id"])["state"] == "paused"
    wendy.post(f"{base}/resume")
    wendy.post(f"{base}/requeue")
    assert dash.harness.get_task(tasks[0]["id"]).state is None
    assert wendy.post(f"{base}/explode").status_code == 404
    assert wendy.get("/jobs/999999").status_code == 404


def test_logging_in_sets_a_strict_http_only_session_cookie(dash: Farm) -> None:
    add_user(dash.harness, "wendy", Role.WRANGLER)
    form = dash.client.simulate_get("/login")
    assert form.status_code == 200 and 'name="password"' in form.text
    answer = dash.client.simulate_post(
        "/login", body=f"name=wendy&password={PASSWORD}", headers=FORM
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.cookies[SESSION_COOKIE]
    assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/"
    assert not cookie.secure and cookie.max_age is None
    header = answer.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" not in header
    page = dash.client.simulate_get("/", cookies={SESSION_COOKIE: cookie.value})
    assert page.status_code == 200
    assert "wendy (wrangler)" in page.text and "Log out" in page.text


def test_the_cookie_is_secure_over_https_or_when_configured(farm: Harness) -> None:
    add_user(farm, "wendy", Role.WRANGLER)
    body = f"name=wendy&password={PASSWORD}"
    over_https = dashboard_client(farm).simulate_post(
        "/login", body=body, headers=FORM, protocol="https"
    )
    assert over_https.cookies[SESSION_COOKIE].secure
    configured = dashboard_client(farm, secure_cookies=True).simulate_post(
        "/login", body=body, headers=FORM
    )
    assert configured.cookies[SESSION_COOKIE].secure
    assert "Secure" in configured.headers["set-cookie"]


@pytest.mark.parametrize(
    "body",
    [f"name=wendy&password=wrong+{PASSWORD}", f"name=nobody&password={PASSWORD}", "", "name=wendy"],
)
def test_a_failed_login_shows_the_form_with_one_message(dash: Farm, body: str) -> None:
    add_user(dash.harness, "wendy", Role.WRANGLER)
    answer = dash.client.simulate_post("/login", body=body, headers=FORM)
    assert answer.status_code == 401 and SESSION_COOKIE not in answer.cookies
    assert "wrong name or password" in answer.text and 'name="password"' in answer.text
    assert answer.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]


def test_guessing_a_password_is_refused_with_the_form_and_a_retry_after(
    database_url: str, tmp_path
) -> None:
    from tests.support.http_harness import make_harness

    for harness in make_harness(database_url, tmp_path, FARM_LOGIN_FAILURES="2"):
        dash = Farm(harness)
        add_user(harness, "wendy", Role.WRANGLER)
        post = dash.client.simulate_post
        for _ in range(2):
            assert post("/login", body="name=wendy&password=guess", headers=FORM).status_code == 401
        right = post("/login", body=f"name=wendy&password={PASSWORD}", headers=FORM)
        assert right.status_code == 429 and SESSION_COOKIE not in right.cookies
        assert "too many failed logins" in right.text and 'name="password"' in right.text
        assert 1 <= int(right.headers["retry-after"]) <= 900


def test_login_fields_and_forms_are_bounded(dash: Farm) -> None:
    post = dash.client.simulate_post
    assert post("/login", body="name=" + "a" * 65 + "&password=x", headers=FORM).status_code == 400
    too_long = "name=a&password=" + "x" * 1025
    assert post("/login", body=too_long, headers=FORM).status_code == 400
    huge = "name=a&password=x&pad=" + "x" * 8192
    assert post("/login", body=huge, headers=FORM).status_code == 413
    wendy = dash.session("wendy", Role.WRANGLER)
    agent_id = uuid.uuid4()
    dash.announce(agent_id)
    assert wendy.post(f"/ui/agents/{agent_id}/disable", "pad=" + "x" * 8192).status_code == 413
    assert dash.api("GET", f"/agents/{agent_id}")["state"] == "online"


@pytest.mark.parametrize("path", [*PAGES, "/jobs/1"])
def test_pages_without_an_identity_lead_to_the_login_page(dash: Farm, path: str) -> None:
    dash.submit()
    for headers, params in [
        ({}, {}),
        ({"Referer": "http://evil.example/"}, {"next": "http://evil.example/"}),
    ]:
        answer = dash.client.simulate_get(path, headers=headers, params=params)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    stale = dash.client.simulate_get(path, cookies={SESSION_COOKIE: "not-a-session"})
    assert stale.status_code == 303 and stale.headers["location"] == "/login"


def _rows(farm: Harness) -> tuple[Any, ...]:
    with farm.uow(read_only=True) as uow:
        return (
            tuple(uow.agents.query(AgentQuery(limit=1000))),
            tuple(uow.jobs.query(JobQuery(limit=1000))),
            tuple(uow.tasks.of_job(job_id) for job_id in range(1, 5)),
            tuple(uow.events.query(EventQuery(limit=1000))),
        )


@pytest.mark.parametrize("csrf", ["", "wrong"])
def test_a_form_post_without_its_csrf_token_changes_nothing(dash: Farm, csrf: str) -> None:
    agent_id = uuid.uuid4()
    dash.announce(agent_id)
    job = dash.submit()
    wendy = dash.session("wendy", Role.WRANGLER)
    vic = dash.session("vic", Role.VIEWER)
    before = _rows(dash.harness)
    for path, body in [
        (f"/ui/agents/{agent_id}/disable", ""),
        (f"/ui/jobs/{job['id']}/pause", ""),
        (f"/ui/jobs/{job['id']}/priority", "priority=99"),
        (f"/ui/jobs/{job['id']}/requeue", ""),
    ]:
        answer = wendy.post(path, body, csrf=csrf)
        assert answer.status_code == 403 and "csrf" in answer.json["error"]
    # Another session's token is no better.
    assert wendy.post(f"/ui/jobs/{job['id']}/pause", csrf=vic.csrf).status_code == 403
    assert wendy.post("/logout", csrf=csrf).status_code == 403
    assert _rows(dash.harness) == before
    assert wendy.get("/").status_code == 200  # the session still stands


def test_a_bearer_identity_posts_without_a_csrf_token(dash: Farm) -> None:
    job = dash.submit()
    wrangler = bearer(dash.harness, Role.WRANGLER, "script")
    answer = dash.client.simulate_post(
        f"/ui/jobs/{job['id']}/pause", body="", headers={**FORM, **wrangler}
    )
    assert answer.status_code == 303 and dash.job(job["id"])["state"] == "paused"
    page = dash.client.simulate_get("/jobs", headers=wrangler)
    assert page.status_code == 200 and "script (wrangler)" in page.text
    assert "Resume" in page.text and "Log out" not in page.text


def test_an_anonymous_identity_sees_the_pages_but_posts_nothing(farm: Harness) -> None:
    dash = Farm(farm, anonymous_role=Role.ADMIN)
    agent_id = uuid.uuid4()
    dash.announce(agent_id)
    job = dash.submit()
    page = dash.client.simulate_get("/jobs")
    assert page.status_code == 200 and "anonymous (admin)" in page.text
    assert (
        '<form method="post"' not in page.text
        and "Disable" not in dash.client.simulate_get("/").text
    )
    before = _rows(farm)
    for path in (f"/ui/jobs/{job['id']}/pause", f"/ui/agents/{agent_id}/disable", "/logout"):
        answer = dash.client.simulate_post(path, body="", headers=FORM)
        assert answer.status_code == 403
    assert _rows(farm) == before
    # A valid session overrides the anonymous identity.
    wendy = dash.session("wendy", Role.WRANGLER)
    assert "wendy (wrangler)" in wendy.get("/").text
    assert wendy.post(f"/ui/jobs/{job['id']}/pause").status_code == 303


def test_pages_show_only_the_actions_an_identity_may_take(dash: Farm) -> None:
    agent_id = uuid.uuid4()
    dash.announce(agent_id)
    own = dash.submit("own", bearer(dash.harness, Role.ARTIST, "ana"))
    other = dash.submit("other", bearer(dash.harness, Role.ARTIST, "bob"))
    vic = dash.session("vic", Role.VIEWER)
    for path in (*PAGES, f"/jobs/{own['id']}"):
        page = vic.get(path).text
        assert (
            page.count('<form method="post"') == 1 and 'action="/logout"' in page
        )  # only logging out
    ana = dash.session("ana", Role.ARTIST)
    assert "Disable" not in ana.get("/").text
    jobs = ana.get("/jobs").text
    assert f'action="/ui/jobs/{own["id"]}/pause"' in jobs
    assert f"/ui/jobs/{other['id']}/" not in jobs
    assert 'id="actions"' in ana.get(f"/jobs/{own['id']}").text
    assert 'id="actions"' not in ana.get(f"/jobs/{other['id']}").text
    # The services refuse what the page does not offer.
    assert ana.post(f"/ui/jobs/{other['id']}/pause").status_code == 403
    assert ana.post(f"/ui/agents/{agent_id}/disable").status_code == 403
    assert vic.post(f"/ui/jobs/{own['id']}/pause").status_code == 403
    assert dash.job(other["id"])["state"] != "paused"
    assert ana.post(f"/ui/jobs/{own['id']}/pause").status_code == 303
    assert dash.job(own["id"])["state"] == "paused"
    wendy = dash.session("wendy", Role.WRANGLER)
    jobs = wendy.get("/jobs").text
    assert f"/ui/jobs/{own['id']}/resume" in jobs and f"/ui/jobs/{other['id']}/pause" in jobs
    assert "Disable" in wendy.get("/").text


def test_logging_out_ends_the_session_and_clears_the_cookie(dash: Farm) -> None:
    wendy = dash.session("wendy", Role.WRANGLER)
    answer = wendy.post("/logout", Referer="http://evil.example/")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    cleared = answer.cookies[SESSION_COOKIE]
    assert cleared.value == "" and cleared.path == "/"
    assert wendy.get("/").status_code == 303
    assert wendy.post("/logout").status_code == 403


@pytest.mark.parametrize("path", [*PAGES, "/login"])
def test_pages_carry_the_security_headers_and_no_inline_code(dash: Farm, path: str) -> None:
    vic = dash.session("vic", Role.VIEWER)
    page = vic.get(path)
    assert page.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    # The one script is a file of the app's own (script-src 'self'): none inline.
    text = page.text.replace('<script src="/static/dashboard.js" defer></script>', "")
    for inline in ("<style", "style=", "<script", "onclick", "onsubmit"):
        assert inline not in text
    assert '<link rel="stylesheet" href="/static/farm.css">' in page.text


def test_the_stylesheet_is_served_by_the_app(dash: Farm) -> None:
    css = dash.client.simulate_get("/static/farm.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".b-failed" in css.text and css.headers["x-content-type-options"] == "nosniff"


def test_the_api_ignores_the_session_cookie(dash: Farm) -> None:
    wendy = dash.session("wendy", Role.WRANGLER)
    answer = dash.client.simulate_get("/api/v1/jobs", cookies=wendy.cookies)
    assert answer.status_code == 401


def test_the_job_and_agent_pages_explain_why_work_runs_or_not(dash: Farm) -> None:
    vic = dash.session("vic", Role.VIEWER)
    agent_id = uuid.uuid4()
    dash.announce(agent_id, hostname="node-7")
    job = dash.submit("shot<x>")
    dash.api("POST", f"/jobs/{job['id']}", json={"state": "paused"})
    page = vic.get(f"/jobs/{job['id']}").text
    assert 'id="explain"' in page and "Cannot run now." in page
    assert "<code>paused</code> the job is paused" in page
    assert f'<a href="/agents/{agent_id}">node-7</a>' in page
    dash.api("POST", f"/jobs/{job['id']}", json={"state": "queued"})
    assert "Can run now on 1 agent(s)." in vic.get(f"/jobs/{job['id']}").text
    listing = vic.get("/").text
    assert f'href="/agents/{agent_id}"' in listing
    agent_page = vic.get(f"/agents/{agent_id}")
    assert agent_page.status_code == 200
    assert f'Would get job <a href="/jobs/{job["id"]}">shot&lt;x&gt;</a>' in agent_page.text
    assert "shot<x>" not in agent_page.text
    assert vic.get(f"/agents/{uuid.uuid4()}").status_code == 404


def test_the_job_page_shows_blocks_with_refusals_and_unblocks_them_by_role(dash: Farm) -> None:
    job = dash.submit()
    agents = [uuid.uuid4(), uuid.uuid4()]
    for n, agent_id in enumerate(agents):
        dash.announce(agent_id, hostname=f"render-{n}")
    with dash.harness.uow() as uow:
        now = dash.harness.clock.now()
        for _ in range(3):
            uow.blocks.record_failure(job["id"], agents[0], now)
        uow.blocks.record_rejection(job["id"], agents[1], "x", now, refusal="<user> not a string")
        for _ in range(3):
            uow.blocks.record_failure(job["id"], agents[1], now)
        uow.commit()
    with dash.harness.uow() as uow:
        stored = uow.jobs.get(job["id"])
        assert stored is not None
        uow.jobs.save(attrs.evolve(stored, reason="no agent has the <RAM>"))
        uow.commit()
    vic = dash.session("vic", Role.VIEWER)
    seen = vic.get(f"/jobs/{job['id']}").text
    assert "no agent has the &lt;RAM&gt;" in seen  # the job's reason, escaped
    assert 'title="no agent has the &lt;RAM&gt;"' in vic.get("/jobs").text  # and in the list
    assert "&lt;user&gt; not a string" in seen  # the agent's answer, escaped
    assert "/unblock" not in seen  # a viewer may not
    wendy = dash.session("wendy", Role.WRANGLER)
    page = wendy.get(f"/jobs/{job['id']}").text
    assert page.count(f'action="/ui/jobs/{job["id"]}/unblock"') == 3  # each, and every agent
    assert f'name="agent" value="{agents[0]}"' in page
    done = wendy.post(f"/ui/jobs/{job['id']}/unblock", f"agent={agents[0]}")
    assert done.status_code == 303 and done.headers["location"] == f"/jobs/{job['id']}"
    blocklist = dash.api("GET", f"/jobs/{job['id']}/blocklist")
    assert [b["agent_id"] for b in blocklist] == [str(agents[1])]
    assert vic.post(f"/ui/jobs/{job['id']}/unblock", "").status_code == 403
    assert wendy.post(f"/ui/jobs/{job['id']}/unblock", "agent=nope").status_code == 400
    wendy.post(f"/ui/jobs/{job['id']}/unblock", "")
    assert dash.api("GET", f"/jobs/{job['id']}/blocklist") == []


def test_task_and_job_controls_on_the_job_page(dash: Farm) -> None:
    job = dash.submit()
    agent_id = uuid.uuid4()
    dash.announce(agent_id)
    first, second, third, fourth = (t["id"] for t in dash.api("GET", f"/jobs/{job['id']}/tasks"))
    dash.api("POST", f"/agents/{agent_id}/tasks", json={"id": first})
    dash.api("POST", f"/jobs/{job['id']}/tasks/{first}", json={"state": "running"})
    wendy = dash.session("wendy", Role.WRANGLER)
    page = wendy.get(f"/jobs/{job['id']}").text
    base = f"/ui/jobs/{job['id']}/tasks"
    assert f'formaction="{base}/stop" name="only" value="{first}"' in page
    assert f'formaction="{base}/stop" name="only" value="{second}"' not in page
    assert f'name="task-{second}"' in page and f'action="/ui/jobs/{job["id"]}/cancel"' in page
    # One task by its row's button; several by their boxes.
    assert wendy.post(f"{base}/stop", f"only={first}").status_code == 303
    assert dash.api("GET", f"/jobs/{job['id']}/tasks/{first}")["reason"] == "stopped"
    done = wendy.post(f"{base}/skip", f"task-{second}=on&task-{third}=on")
    assert done.status_code == 303 and done.headers["location"] == f"/jobs/{job['id']}"
    page = wendy.get(f"/jobs/{job['id']}").text
    assert page.count(">skipped</span>") == 2
    # The ticked tasks a control does not apply to are counted on the page.
    done = wendy.post(f"{base}/stop", f"task-{second}=on&task-{fourth}=on")
    assert done.headers["location"] == f"/jobs/{job['id']}?refused=2"
    assert (
        "2 of the selected tasks could not be changed" in wendy.get(done.headers["location"]).text
    )
    assert wendy.post(f"{base}/retry", f"only={fourth}").status_code == 409
    assert wendy.post(f"{base}/retry", "").status_code == 400
    assert wendy.post(f"{base}/explode", f"only={fourth}").status_code == 404
    # Pause stopping running frames, then cancel: listed as canceled, with a requeue.
    wendy.post(f"/ui/jobs/{job['id']}/pause", "running=stop")
    assert dash.job(job["id"])["state"] == "paused"
    wendy.post(f"/ui/jobs/{job['id']}/cancel")
    assert dash.job(job["id"])["state"] == "canceled"
    listing = wendy.get("/jobs").text
    assert ">canceled</span>" in listing and "Requeue canceled and failed" in listing
    assert (
        f'formaction="{base}/retry"'
        not in wendy.get(f"/jobs/{job['id']}")
        .text.split('<table id="tasks" data-live>')[1]
        .split("</tr>", 2)[2]
    )


def test_task_controls_are_shown_and_taken_by_role(dash: Farm) -> None:
    ana_token = bearer(dash.harness, Role.ARTIST, "ana")
    own = dash.submit("own", ana_token)
    other = dash.submit("other")
    (task, *_) = (t["id"] for t in dash.api("GET", f"/jobs/{own['id']}/tasks"))
    (theirs, *_) = (t["id"] for t in dash.api("GET", f"/jobs/{other['id']}/tasks"))
    add_user(dash.harness, "ana", Role.ARTIST)
    ana = Session(dash.client, "ana")
    vic = dash.session("vic", Role.VIEWER)
    assert 'id="task-form"' in ana.get(f"/jobs/{own['id']}").text
    assert 'id="task-form"' not in ana.get(f"/jobs/{other['id']}").text
    assert 'id="task-form"' not in vic.get(f"/jobs/{own['id']}").text
    assert ana.post(f"/ui/jobs/{other['id']}/tasks/skip", f"only={theirs}").status_code == 403
    assert vic.post(f"/ui/jobs/{own['id']}/tasks/skip", f"only={task}").status_code == 403
    assert ana.post(f"/ui/jobs/{own['id']}/tasks/skip", f"only={task}", csrf="").status_code == 403
    assert ana.post(f"/ui/jobs/{other['id']}/cancel").status_code == 403
    assert dash.api("GET", f"/jobs/{other['id']}/tasks/{theirs}")["state"] == "queued"
    assert dash.api("GET", f"/jobs/{own['id']}/tasks/{task}")["state"] == "queued"
    assert ana.post(f"/ui/jobs/{own['id']}/tasks/skip", f"only={task}").status_code == 303
    assert dash.api("GET", f"/jobs/{own['id']}/tasks/{task}")["skipped"] is True
