"""The API's job and agent lists take the dashboard's filters (one parsing for both): search,
state, tag, user, job type, sort and order; a bad value is a 400 that names it. The agents
list keeps PyFarm's arguments and answer shape; the new arguments are extensions."""

from __future__ import annotations

import uuid

import pytest

from farm_domain.access import Role
from tests.http.test_dashboard import Farm
from tests.support.http_harness import Harness


@pytest.fixture
def dash(farm: Harness) -> Farm:
    return Farm(farm)


def _titles(dash: Farm, **params: str) -> list[str]:
    return [job["title"] for job in dash.api("GET", "/jobs", params=params)]


def test_the_jobs_list_is_searched_filtered_and_sorted_as_on_the_dashboard(dash: Farm) -> None:
    for title in ("shot b", "shot a", "comp"):
        dash.submit(title=title)
    tagged = dash.api("GET", "/jobs", params={"q": "comp"})[0]
    dash.api("POST", f"/jobs/{tagged['id']}", json={"tags": ["gpu"]})
    assert _titles(dash) == ["comp", "shot a", "shot b"]  # newest first, as before
    assert _titles(dash, q="SHOT", sort="title", order="asc") == ["shot a", "shot b"]
    assert _titles(dash, q="shot", sort="title") == ["shot b", "shot a"]  # desc by default
    assert _titles(dash, tag="gpu") == ["comp"]
    assert _titles(dash, jobtype="render", q="comp") == ["comp"]
    assert _titles(dash, jobtype="comp") == []
    assert _titles(dash, user="setup-admin", q="shot a") == ["shot a"]
    assert _titles(dash, user="nobody") == []
    assert _titles(dash, state="queued", q="comp") == ["comp"]
    assert _titles(dash, state="paused") == []
    # The dashboard's URL for the same filters lists the same jobs.
    page = dash.session("vic", Role.VIEWER).get("/jobs", params={"q": "shot", "sort": "title"})
    assert page.text.index("shot b") < page.text.index("shot a")
    # Paging and the exact title as before.
    assert _titles(dash, limit="1", offset="1") == ["shot a"]
    assert _titles(dash, title="shot b") == ["shot b"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"q": "x" * 129}, "q"),
        ({"tag": "t" * 65}, "tag"),
        ({"user": "u" * 256}, "user"),
        ({"jobtype": "j" * 65}, "jobtype"),
        ({"title": "t" * 256}, "title"),
        ({"sort": "nonsense"}, "sort"),
        ({"order": "up"}, "order"),
        ({"state": "asleep"}, "state"),
        ({"q": ["a", "b"]}, "q"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_a_bad_job_filter_is_a_400_naming_it(
    dash: Farm, params: dict[str, str], named: str
) -> None:
    answer = dash.client.simulate_get("/api/v1/jobs", params=params, headers=dash.admin)
    assert answer.status_code == 400
    assert f"`{named}`" in answer.json["error"]


def test_the_agents_list_takes_the_dashboards_filters_as_extensions(dash: Farm) -> None:
    ids = {name: uuid.uuid4() for name in ("render-b", "render-a", "comp-c")}
    for name, agent_id in ids.items():
        dash.announce(agent_id, hostname=name)
    dash.api("PUT", f"/agents/{ids['render-b']}/tags", json=["gpu"])
    dash.api("POST", f"/agents/{ids['comp-c']}", json={"state": "disabled"})

    def hosts(**params: str) -> list[str]:
        listed = dash.api("GET", "/agents/", params=params)
        # PyFarm's answer: exactly these keys, whatever the filters.
        assert all(set(a) == {"id", "hostname", "port", "remote_ip"} for a in listed)
        return [a["hostname"] for a in listed]

    assert hosts() == ["comp-c", "render-a", "render-b"]
    assert hosts(q="RENDER") == ["render-a", "render-b"]
    assert hosts(sort="hostname", order="desc") == ["render-b", "render-a", "comp-c"]
    assert hosts(tag="gpu") == ["render-b"]
    assert hosts(state="disabled") == ["comp-c"]
    # With PyFarm's own filters, AND-ed.
    assert hosts(q="render", hostname="render-a", min_ram="1024") == ["render-a"]
    assert hosts(q="render", limit="1", offset="1") == ["render-b"]
    for params in ({"q": "x" * 129}, {"sort": "size"}, {"order": "sideways"}, {"tag": "t" * 65}):
        answer = dash.client.simulate_get("/api/v1/agents/", params=params, headers=dash.admin)
        assert answer.status_code == 400
        assert "Failed to convert the url argument" in answer.json["error"]
    # Unknown arguments are still ignored, and a bad state still a 400 as PyFarm's.
    assert hosts(colour="blue") == ["comp-c", "render-a", "render-b"]
    for state in ("x", ""):
        bad = dash.client.simulate_get(
            "/api/v1/agents/", params={"state": state}, headers=dash.admin
        )
        assert bad.status_code == 400, state


def test_a_search_finds_a_title_by_any_part_of_it_as_written(dash: Farm) -> None:
    # Non-ASCII letters and LIKE's wildcards are text like any other: a part of the title as
    # written finds it on every backend (SQLite's lower() folds only ASCII letters).
    for title in ("Étude Über", "100% a_b", "plain"):
        dash.submit(title=title)
    assert _titles(dash, q="Étude") == ["Étude Über"]
    assert _titles(dash, q="%") == ["100% a_b"]
    assert _titles(dash, q="_") == ["100% a_b"]
    assert _titles(dash, q="0% A") == ["100% a_b"]
