"""The dashboard's lists: agents and jobs searched, filtered, sorted and paged by a plain GET
form; a job's tasks by state; a bad parameter is a 400 (a page for a browser), never a 500."""

from __future__ import annotations

import re
import uuid

import pytest

from farm_domain.access import Role
from tests.http.test_dashboard import Farm
from tests.support.http_harness import Harness

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def dash(farm: Harness) -> Farm:
    return Farm(farm)


def _agents_in(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<a href="/agents/[^"]+">([^<]+)</a><span class="dim">:(\d+)</span>', page)


def test_a_filter_narrows_the_agents_and_a_sort_orders_them(dash: Farm) -> None:
    for name in ("render-b", "render-a", "comp-c"):
        dash.announce(uuid.uuid4(), hostname=name)
    vic = dash.session("vic", Role.VIEWER)
    page = vic.get("/", params={"q": "RENDER"}).text
    assert [host for host, _ in _agents_in(page)] == ["render-a", "render-b"]
    assert 'name="q" value="RENDER"' in page  # the form keeps what was asked
    descending = vic.get("/", params={"sort": "hostname", "order": "desc"}).text
    assert [host for host, _ in _agents_in(descending)] == ["render-b", "render-a", "comp-c"]
    # the header's link turns the order round
    assert 'href="?sort=hostname&amp;order=asc"' in descending
    assert _agents_in(vic.get("/", params={"state": "offline"}).text) == []
    assert "No agent matches" in vic.get("/", params={"tag": "gpu"}).text


def test_agents_on_one_host_are_told_apart_by_port(dash: Farm) -> None:
    for port in (50001, 50002):
        dash.api(
            "POST",
            "/agents/",
            json={
                "id": str(uuid.uuid4()),
                "hostname": "twin",
                "ram": 4096,
                "free_ram": 2048,
                "cpus": 8,
                "port": port,
            },
        )
    page = dash.session("vic", Role.VIEWER).get("/", params={"q": "twin"}).text
    assert sorted(_agents_in(page)) == [("twin", "50001"), ("twin", "50002")]


def test_jobs_are_searched_filtered_sorted_and_paged_keeping_the_filters(dash: Farm) -> None:
    ana = dash.session("ana", Role.ARTIST)
    for n in range(103):
        dash.submit(title=f"shot {n:03}")
    dash.submit(title="comp final")
    vic = dash.session("vic", Role.VIEWER)
    first = vic.get("/jobs", params={"q": "SHOT", "sort": "title", "order": "asc"}).text
    titles = re.findall(r'<a href="/jobs/\d+">([^<]+)</a>', first)
    assert titles[:2] == ["shot 000", "shot 001"] and len(titles) == 100
    assert "comp final" not in titles
    # the pager keeps the filters and the sort
    assert 'href="?q=SHOT&amp;sort=title&amp;order=asc&amp;page=2"' in first
    second = vic.get("/jobs", params={"q": "SHOT", "sort": "title", "order": "asc", "page": 2})
    assert re.findall(r'<a href="/jobs/\d+">([^<]+)</a>', second.text) == [
        "shot 100",
        "shot 101",
        "shot 102",
    ]
    assert "comp final" in vic.get("/jobs", params={"jobtype": "render", "q": "comp"}).text
    assert "No job matches" in vic.get("/jobs", params={"jobtype": "comp"}).text
    assert "No job matches" in vic.get("/jobs", params={"user": "nobody"}).text
    assert "shot 000" in vic.get("/jobs", params={"user": "setup-admin", "q": "000"}).text
    assert "No job matches" in vic.get("/jobs", params={"state": "paused"}).text
    assert "comp final" in vic.get("/jobs", params={"state": "queued"}).text
    assert ana.get("/jobs").status_code == 200


def test_a_jobs_tasks_are_filtered_by_state_and_paged(dash: Farm) -> None:
    dash.api("POST", "/jobtypes", json={"name": "render"})
    job = dash.api(
        "POST", "/jobs", json={"title": "long", "jobtype": "render", "start": 1, "end": 205}
    )
    agent_id = uuid.uuid4()
    dash.announce(agent_id)
    tasks = dash.api("GET", f"/jobs/{job['id']}/tasks", params={"limit": 3})
    for task in tasks[:2]:
        dash.api("POST", f"/agents/{agent_id}/tasks", json={"id": task["id"]})
        dash.api("POST", f"/jobs/{job['id']}/tasks/{task['id']}", json={"state": "done"})
    vic = dash.session("vic", Role.VIEWER)
    done = vic.get(f"/jobs/{job['id']}", params={"status": "done"}).text
    assert done.count("<tr data-task=") == 2 and "next" not in done
    queued = vic.get(f"/jobs/{job['id']}", params={"status": "queued", "page": 2}).text
    assert queued.count("<tr data-task=") == 100
    assert 'href="?status=queued&amp;page=3"' in queued
    last = vic.get(f"/jobs/{job['id']}", params={"status": "queued", "page": 3}).text
    assert last.count("<tr data-task=") == 3  # 205 - 2 done = 203 queued


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/", {"q": "x" * 129}),
        ("/", {"state": "sleeping"}),
        ("/", {"sort": "colour"}),
        ("/", {"order": "sideways"}),
        ("/", {"page": "0"}),
        ("/", {"page": "100001"}),
        ("/", {"tag": "t" * 65}),
        ("/jobs", {"state": "lost"}),
        ("/jobs", {"sort": "id;drop"}),
        ("/jobs", {"user": "u" * 256}),
        ("/jobs", {"jobtype": "j" * 65}),
        ("/jobs", {"q": ["a", "b"]}),
        ("/jobs", {"page": "two"}),
    ],
    ids=lambda value: str(value)[:24],
)
def test_a_bad_list_parameter_is_a_400_page_not_a_500(
    dash: Farm, path: str, params: dict[str, object]
) -> None:
    vic = dash.session("vic", Role.VIEWER)
    answer = vic.get(path, params=params, headers=HTML)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert '<p class="err" id="error">' in answer.text and "{" not in answer.text.split("<main>")[1]
    # an API client (no HTML wanted) still gets the error table's JSON
    assert "error" in vic.get(path, params=params).json


def test_a_bad_task_state_and_a_missing_job_are_pages_for_a_browser(dash: Farm) -> None:
    job = dash.submit()
    vic = dash.session("vic", Role.VIEWER)
    bad = vic.get(f"/jobs/{job['id']}", params={"status": "exploded"}, headers=HTML)
    assert (
        bad.status_code == 400
        and "status" in bad.text
        and "text/html" in bad.headers["content-type"]
    )
    missing = vic.get("/jobs/999999", headers=HTML)
    assert missing.status_code == 404 and 'id="error"' in missing.text


def test_the_job_page_shows_what_a_wrangler_needs(dash: Farm) -> None:
    parent = dash.submit("plates")
    job = dash.api(
        "POST",
        "/jobs",
        json={
            "title": "beauty",
            "jobtype": "render",
            "start": 1,
            "end": 4,
            "parents": [parent["id"]],
            "tags": ["lighting"],
            "data": {"command": ["blender", "-b", "shot.blend", "-f", "{frame}"]},
        },
    )
    child = dash.api(
        "POST",
        "/jobs",
        json={"title": "comp", "jobtype": "render", "start": 1, "end": 1, "parents": [job["id"]]},
    )
    agent_id = uuid.uuid4()
    dash.announce(agent_id, hostname="render-9")
    first, second, *_ = dash.api("GET", f"/jobs/{job['id']}/tasks")
    path = f"/jobs/{job['id']}/tasks/{first['id']}"
    dash.api("POST", f"/agents/{agent_id}/tasks", json={"id": first["id"]})
    dash.api("POST", path, json={"state": "running"})
    dash.api("POST", path, json={"state": "done"})
    wendy = dash.session("wendy", Role.WRANGLER)
    page = wendy.get(f"/jobs/{job['id']}").text
    assert "blender -b shot.blend -f {frame}" in page
    assert f'<a href="/jobs/{parent["id"]}">plates</a>' in page.split('id="parents"')[1]
    assert f'<a href="/jobs/{child["id"]}">comp</a>' in page.split('id="children"')[1]
    assert "setup-admin" in page.split('id="facts"')[1]  # the owner
    eta = page.split('id="eta"')[1].split("</dd>")[0]
    assert re.search(r">\d+s$", eta), eta  # 3 frames left at the done frame's pace
    row = page.split(f'<tr data-task="{first["id"]}">')[1].split("</tr>")[0]
    # started, finished, duration; the agent by hostname and port
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row)) == 2
    assert re.search(r"<td>\d+s</td>", row) and 'render-9</a><span class="dim">:50000' in row
    untouched = page.split(f'<tr data-task="{second["id"]}">')[1].split("</tr>")[0]
    assert "<td>-</td>" in untouched
    # the job's actions are next to it, delete among them
    actions = page.split('id="actions"')[1].split("</div>")[0]
    assert "/cancel" in actions and "/delete" in actions
    gone = wendy.post(f"/ui/jobs/{job['id']}/delete")
    assert gone.status_code == 303 and gone.headers["location"] == "/jobs"
    assert wendy.get(f"/jobs/{job['id']}").status_code == 404


def test_a_job_without_a_done_frame_has_no_estimate_yet(dash: Farm) -> None:
    job = dash.submit()
    page = dash.session("vic", Role.VIEWER).get(f"/jobs/{job['id']}").text
    assert "no frame done yet" in page.split('id="eta"')[1]
    assert 'id="delete-job"' not in page  # a viewer gets no actions
