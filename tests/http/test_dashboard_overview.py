"""The farm overview page: agents by state, frames done per hour, failures by reason, drawn as
SVG by the server (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from farm_domain.access import Role
from farm_domain.overview import hourly
from tests.http.test_dashboard import Farm
from tests.support.http_harness import Harness


@pytest.fixture
def dash(farm: Harness) -> Farm:
    return Farm(farm)


def test_hours_without_frames_count_zero_and_the_current_hour_is_last() -> None:
    now = datetime(2026, 3, 1, 10, 42, tzinfo=UTC)
    counts = {datetime(2026, 3, 1, 10, tzinfo=UTC): 7, datetime(2026, 2, 28, 11, tzinfo=UTC): 2}
    hours = hourly(counts, now)
    assert len(hours) == 24
    assert hours[0] == (datetime(2026, 2, 28, 11, tzinfo=UTC), 2)
    assert hours[-1] == (datetime(2026, 3, 1, 10, tzinfo=UTC), 7)
    assert sum(n for _, n in hours) == 9


def test_the_overview_counts_agents_frames_done_and_failures(dash: Farm) -> None:
    job = dash.submit()
    busy, idle, off = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for n, agent_id in enumerate((busy, idle, off)):
        dash.announce(agent_id, hostname=f"node{n}")
    dash.api("POST", f"/agents/{off}", json={"state": "disabled"})
    first, second, third, _ = dash.api("GET", f"/jobs/{job['id']}/tasks")
    for task in (first, second):
        dash.api("POST", f"/agents/{busy}/tasks", json={"id": task["id"]})
        dash.api("POST", f"/jobs/{job['id']}/tasks/{task['id']}", json={"state": "done"})
    dash.api("POST", f"/agents/{busy}/tasks", json={"id": third["id"]})
    dash.api(
        "POST",
        f"/jobs/{job['id']}/tasks/{third['id']}",
        json={"state": "failed", "reason": "ram", "last_error": "killed"},
    )
    dash.api("POST", f"/agents/{busy}/tasks", json={"id": third["id"]})  # busy again
    page = dash.session("vic", Role.VIEWER).get("/overview")
    assert page.status_code == 200
    text = page.text
    assert '<b id="agents-online">2</b>' in text and '<b id="agents-disabled">1</b>' in text
    assert '<b id="agents-busy">1</b>' in text
    done = text.split('id="done-chart"')[1].split("</figure>")[0]
    bars = re.findall(r"<title>(\d\d):00: (\d+)</title>", done)
    assert len(bars) == 24 and bars[-1][1] == "2"  # the current hour (the harness's clock)
    assert "2 in all" in done
    failures = text.split('id="failures-chart"')[1].split("</figure>")[0]
    assert "<title>ram: 1</title>" in failures
    assert "<script>" not in text and "http" not in done  # drawn here, nothing fetched


def test_an_empty_farm_has_an_overview_too(dash: Farm) -> None:
    page = dash.session("vic", Role.VIEWER).get("/overview").text
    assert "No failure in the last 24 hours." in page and "0 in all" in page
