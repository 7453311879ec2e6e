"""Bulk selection on the dashboard's lists: tick jobs (or agents) and act on them all with one
plain form post (no script; CSRF as every form). Each job is done or refused on its own, a
refused one unchanged and counted on the page; a job the user may not change has no box; one
who may not act at all is refused whole and nothing changes."""

from __future__ import annotations

import re
import uuid

import pytest

from farm_domain.access import Role
from tests.http.test_dashboard import Farm
from tests.support.dashboard import bearer
from tests.support.http_harness import Harness


@pytest.fixture
def dash(farm: Harness) -> Farm:
    return Farm(farm)


def _ticks(*job_ids: int) -> str:
    return "&".join(f"job-{job_id}=on" for job_id in job_ids)


def _states(dash: Farm, *job_ids: int) -> list[str]:
    return [dash.job(job_id)["state"] for job_id in job_ids]


def test_ticked_jobs_are_paused_resumed_canceled_requeued_and_deleted(dash: Farm) -> None:
    a, b, c = (dash.submit(title=t)["id"] for t in ("a", "b", "c"))
    wendy = dash.session("wendy", Role.WRANGLER)
    page = wendy.get("/jobs", params={"q": "a"}).text
    assert 'id="bulk-jobs"' in page and f'name="job-{a}" form="bulk-jobs"' in page
    # The form carries the list's filters back.
    assert 'name="back" value="?q=a"' in page

    done = wendy.post("/ui/jobs/bulk", f"action=pause&{_ticks(a, b)}&back=%3Fq%3Da")
    assert done.status_code == 303 and done.headers["location"] == "/jobs?q=a"
    assert _states(dash, a, b, c) == ["paused", "paused", "queued"]

    # Resuming a paused and a queued job: the queued one is refused, and counted.
    done = wendy.post("/ui/jobs/bulk", f"action=resume&{_ticks(a, c)}")
    assert done.headers["location"] == "/jobs?refused=1"
    assert _states(dash, a, b, c) == ["queued", "paused", "queued"]
    assert "1 of the selected jobs could not be changed" in wendy.get("/jobs?refused=1").text

    wendy.post("/ui/jobs/bulk", f"action=cancel&{_ticks(b, c)}")
    assert _states(dash, a, b, c) == ["queued", "canceled", "canceled"]
    wendy.post("/ui/jobs/bulk", f"action=requeue&{_ticks(b)}")
    assert _states(dash, b) == ["queued"]

    done = wendy.post("/ui/jobs/bulk", f"action=delete&{_ticks(a, c)}")
    assert done.status_code == 303 and "refused" not in done.headers["location"]
    remaining = {job["id"] for job in dash.api("GET", "/jobs")}
    assert remaining == {b}
    # Deleted already: refused, nothing else changes.
    assert wendy.post("/ui/jobs/bulk", f"action=delete&{_ticks(a)}").headers["location"] == (
        "/jobs?refused=1"
    )


def test_an_artist_gets_boxes_for_her_own_jobs_only_and_anothers_is_refused(dash: Farm) -> None:
    ana = dash.session("ana", Role.ARTIST)
    mine = dash.submit(title="mine", token=bearer(dash.harness, Role.ARTIST, "ana"))["id"]
    theirs = dash.submit(title="theirs")["id"]
    page = ana.get("/jobs").text
    assert f'name="job-{mine}"' in page and f'name="job-{theirs}"' not in page
    # A forged post naming another's job: that job is refused and unchanged, hers is paused.
    done = ana.post("/ui/jobs/bulk", f"action=pause&{_ticks(mine, theirs)}")
    assert done.headers["location"] == "/jobs?refused=1"
    assert _states(dash, mine, theirs) == ["paused", "queued"]
    done = ana.post("/ui/jobs/bulk", f"action=delete&{_ticks(theirs)}")
    assert done.headers["location"] == "/jobs?refused=1"
    assert dash.job(theirs)["state"] == "queued"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("action=pause", 400),  # nothing ticked
        ("action=explode&job-1=on", 400),
        ("job-1=on", 400),
        ("action=pause&job-x=on", 400),
        # More than a page's boxes, past the form's size bound.
        ("action=pause&" + "&".join(f"job-{n}=on" for n in range(1, 1002)), 413),
    ],
)
def test_a_bad_bulk_post_is_refused_and_changes_nothing(dash: Farm, body: str, status: int) -> None:
    job_id = dash.submit()["id"]
    wendy = dash.session("wendy", Role.WRANGLER)
    answer = wendy.post("/ui/jobs/bulk", body.replace("job-1=", f"job-{job_id}="))
    assert answer.status_code == status and "error" in answer.json
    assert _states(dash, job_id) == ["queued"]


def test_without_the_right_or_the_csrf_token_nothing_changes(dash: Farm) -> None:
    job_id = dash.submit()["id"]
    agent_id = uuid.uuid4()
    dash.announce(agent_id)
    vic = dash.session("vic", Role.VIEWER)
    page = vic.get("/jobs").text
    assert 'id="bulk-jobs"' not in page and f'name="job-{job_id}"' not in page
    assert 'id="bulk-agents"' not in vic.get("/").text
    assert vic.post("/ui/jobs/bulk", f"action=pause&{_ticks(job_id)}").status_code == 403
    assert vic.post("/ui/agents/bulk", f"action=disable&agent-{agent_id}=on").status_code == 403
    wendy = dash.session("wendy", Role.WRANGLER)
    forged = wendy.post("/ui/jobs/bulk", f"action=pause&{_ticks(job_id)}", csrf="forged")
    assert forged.status_code == 403
    assert _states(dash, job_id) == ["queued"]
    assert dash.api("GET", f"/agents/{agent_id}")["state"] == "online"


def test_ticked_agents_are_disabled_and_enabled(dash: Farm) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    for n, agent_id in enumerate(ids):
        dash.announce(agent_id, hostname=f"render-{n}")
    wendy = dash.session("wendy", Role.WRANGLER)
    page = wendy.get("/", params={"q": "render"}).text
    assert 'id="bulk-agents"' in page
    assert len(re.findall(r'name="agent-[^"]+" form="bulk-agents"', page)) == 3
    gone = uuid.uuid4()
    ticks = "&".join(f"agent-{a}=on" for a in (ids[0], ids[1], gone))
    done = wendy.post("/ui/agents/bulk", f"action=disable&{ticks}&back=%3Fq%3Drender")
    assert done.status_code == 303 and done.headers["location"] == "/?q=render&refused=1"
    states = [dash.api("GET", f"/agents/{a}")["state"] for a in ids]
    assert states == ["disabled", "disabled", "online"]
    wendy.post("/ui/agents/bulk", f"action=enable&agent-{ids[0]}=on")
    assert dash.api("GET", f"/agents/{ids[0]}")["state"] == "online"
    assert wendy.post("/ui/agents/bulk", f"action=explode&agent-{ids[0]}=on").status_code == 400
    # ``back`` is only ever the list's own query: never another place.
    done = wendy.post(
        "/ui/agents/bulk", f"action=enable&agent-{ids[1]}=on&back=//evil.example/%3Fx"
    )
    assert done.headers["location"].startswith("/?") or done.headers["location"] == "/"
