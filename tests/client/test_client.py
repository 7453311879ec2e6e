"""``farm_client`` against a real ``farm serve``: every call at least once, the errors each
refusal raises (with the master's message and status), and configuration from the environment.
One master serves the whole module; each test makes the things it needs under its own names."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from farm_client import (
    Agent,
    BadRequest,
    ConfigurationError,
    Conflict,
    FarmClient,
    FarmError,
    Forbidden,
    LogGap,
    NotFound,
    ResponseTooLarge,
    StillRunning,
    Unauthorized,
    Unreachable,
)
from tests.client.conftest import Farm
from tests.support.fake_agent import FakeAgent
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def announce(admin: FarmClient) -> Iterator[Callable[[str], uuid.UUID]]:
    """Announces agents by hand, each answered by a fake node that accepts what it is sent.
    They have 16 MB of RAM, less than any job of these tests asks (32 MB by default), so the
    scheduler gives them nothing: only the tasks a test assigns by hand."""
    fakes: list[FakeAgent] = []
    announced: list[uuid.UUID] = []

    def announce(hostname: str) -> uuid.UUID:
        fake = FakeAgent()
        fakes.append(fake)
        agent_id = uuid.uuid4()
        admin.request(
            "POST",
            "/agents",
            json={
                "id": str(agent_id),
                "hostname": hostname,
                "ram": 16,
                "free_ram": 16,
                "cpus": 4,
                "port": fake.port,
                "state": "online",
                "remote_ip": "127.0.0.1",
            },
        )
        announced.append(agent_id)
        return agent_id

    yield announce
    for agent_id in announced:
        admin.delete_agent(agent_id)
    for fake in fakes:
        fake.close()


def test_the_software_catalogue(admin: FarmClient, alice: FarmClient) -> None:
    made = admin.create_software("blender", [("2.79", 100), "2.80"])
    assert made.name == "blender"
    assert [(v.version, v.rank) for v in made.versions] == [("2.79", 100), ("2.80", 200)]
    assert "blender" in [s.name for s in alice.software_list()]
    assert alice.software("blender").id == made.id

    added = admin.add_software_version("blender", "4.2")
    assert (added.version, added.rank) == ("4.2", 300)
    assert [v.version for v in alice.software_versions("blender")] == ["2.79", "2.80", "4.2"]
    assert alice.software_version("blender", "4.2").rank == 300

    admin.delete_software_version("blender", "2.79")
    with pytest.raises(NotFound):
        alice.software_version("blender", "2.79")

    renamed = admin.update_software("blender", new_name="blender-lts", versions=["4.2", "4.5"])
    assert renamed.name == "blender-lts"
    assert [v.version for v in renamed.versions] == ["4.2", "4.5"]
    admin.delete_software("blender-lts")
    with pytest.raises(NotFound) as missing:
        alice.software("blender-lts")
    assert missing.value.status == 404


def test_job_types_and_their_versions(admin: FarmClient, alice: FarmClient) -> None:
    admin.create_software("houdini", ["19.5", "20.0"])
    first = admin.create_jobtype(
        "sim",
        description="simulates",
        max_batch=4,
        software_requirements=[{"software": "houdini", "min_version": "19.5"}],
    )
    assert (first.name, first.version, first.max_batch) == ("sim", 1, 4)
    assert first.software_requirements[0].software == "houdini"
    assert first.software_requirements[0].min_version == "19.5"

    second = admin.update_jobtype("sim", description="simulates better", max_batch=8)
    assert second.version == 2
    assert alice.jobtype("sim").version == 2
    assert "sim" in [t.name for t in alice.jobtypes()]
    assert [t.version for t in alice.jobtype_versions("sim")] == [1, 2]
    assert (alice.jobtype_version("sim", 1).version, alice.jobtype_version("sim", 1).max_batch) == (
        1,
        4,
    )

    admin.delete_jobtype("sim")
    with pytest.raises(NotFound):
        alice.jobtype("sim")


def test_an_artists_job_from_submission_to_deletion(
    alice: FarmClient, admin: FarmClient, command_jobtype: str
) -> None:
    job = alice.submit_job(
        "client_shot_010",
        command_jobtype,
        1,
        10,
        by=1,
        priority=10,
        data={"command": ["echo", "{frame}"]},
        environ={"OCIO": "/studio/aces.ocio"},
        tags=["lighting"],
    )
    assert (job.title, job.jobtype, job.state, job.priority) == (
        "client_shot_010",
        "command",
        "queued",
        10,
    )
    assert job.submitted_by == "alice"
    assert job.tasks["queued"] == 10
    assert job.environ == {"OCIO": "/studio/aces.ocio"}
    assert job.raw["title"] == "client_shot_010"

    assert job.id in [j.id for j in alice.jobs()]
    assert [j.id for j in alice.jobs(title="client_shot_010")] == [job.id]
    assert [j.id for j in alice.jobs(state="queued", limit=1)] == [alice.jobs(state="queued")[0].id]
    assert alice.job("client_shot_010").id == job.id  # by title
    assert alice.job(job.id).title == "client_shot_010"

    assert alice.set_priority("client_shot_010", 50).priority == 50  # a title, resolved
    assert alice.update_job(job, weight=20, tags=["fx"]).tags == ("fx",)
    assert alice.pause_job(job.id).state == "paused"
    assert alice.resume_job(str(job.id)).state == "queued"

    tasks = alice.tasks(job)
    assert [t.frame for t in tasks] == [float(f) for f in range(1, 11)]
    assert [t.frame for t in alice.tasks("client_shot_010", limit=3, offset=2)] == [3.0, 4.0, 5.0]
    assert [t.id for t in alice.all_tasks(job, page=3)] == [t.id for t in tasks]
    one = alice.task(job, tasks[0].id)
    assert (one.id, one.job_id, one.state, one.attempts) == (tasks[0].id, job.id, "queued", 0)
    assert alice.blocklist("client_shot_010") == []

    alice.delete_job(job)
    with pytest.raises(NotFound) as gone:
        alice.job(job.id)
    assert gone.value.message == f"Job {job.id} not found"


def test_agents_their_tags_software_and_tasks(
    admin: FarmClient, alice: FarmClient, command_jobtype: str, announce
) -> None:
    agent_id = announce("render-client-01")
    assert agent_id in [a.id for a in alice.agents()]
    assert [a.id for a in alice.agents(hostname="render-client-01")] == [agent_id]
    assert agent_id not in [a.id for a in alice.agents(min_ram=17)]

    agent = alice.agent(agent_id)
    assert isinstance(agent, Agent)
    assert (agent.hostname, agent.ram, agent.cpus) == ("render-client-01", 16, 4)
    assert agent.raw["id"] == str(agent_id)

    assert admin.disable_agent(agent).state == "disabled"
    assert admin.enable_agent(agent_id).state != "disabled"
    assert admin.update_agent(str(agent_id), ram_allocation=0.5).ram_allocation == 0.5

    assert admin.set_agent_tags(agent_id, ["gpu", "big"]) == ["big", "gpu"]
    assert alice.agent_tags(agent_id) == ["big", "gpu"]

    admin.create_software("nuke", ["14.0", "15.1"])
    installed = admin.add_agent_software(agent_id, "nuke", "15.1")
    assert ("nuke", "15.1") in [(s.software, s.version) for s in installed]
    assert ("nuke", "15.1") in [(s.software, s.version) for s in alice.agent_software(agent_id)]
    admin.remove_agent_software(agent_id, "nuke", "15.1")
    assert ("nuke", "15.1") not in [(s.software, s.version) for s in alice.agent_software(agent_id)]

    job = alice.submit_job("client_agent_tasks", command_jobtype, 1, data={"command": ["true"]})
    task = alice.tasks(job)[0]
    assigned = admin.assign_task(agent_id, task.id)
    assert (assigned.agent_id, assigned.attempts) == (agent_id, 1)
    held = alice.agent_tasks(agent_id)
    assert task.id in [t.id for t in held]
    assert held[0].job is not None and held[0].job.title == "client_agent_tasks"

    assert "hostname" in alice.agent_schema()

    admin.delete_agent(agent_id)
    with pytest.raises(NotFound):
        alice.agent(agent_id)


def test_a_tasks_logs_listed_and_downloaded(
    admin: FarmClient, alice: FarmClient, command_jobtype: str, announce, tmp_path
) -> None:
    agent_id = announce("render-client-logs")
    job = alice.submit_job("client_logs", command_jobtype, 7, data={"command": ["true"]})
    task = alice.tasks(job)[0]
    admin.assign_task(agent_id, task.id)

    log = admin.register_log(job, task.id, 1, "frame7.log", agent_id)
    assert (log.identifier, log.task_id, log.attempt, log.agent_id) == (
        "frame7.log",
        task.id,
        1,
        agent_id,
    )
    text = "rendering frame 7\nsaved /out/7.png\n" * 100
    assert admin.upload_log(job, task.id, 1, "frame7.log", text).size == len(text)

    logs = alice.task_logs(job.id, task.id, 1)
    assert [(entry.identifier, entry.size) for entry in logs] == [("frame7.log", len(text))]
    assert alice.download_log(job, task.id, 1, "frame7.log") == text.encode()
    assert alice.log_text("client_logs", task.id, 1, "frame7.log") == text
    with (tmp_path / "frame7.log").open("wb") as file:
        assert alice.save_log(job, task.id, 1, "frame7.log", file) == len(text)
    assert (tmp_path / "frame7.log").read_text() == text

    # Bounded: a log larger than the caller's bound is refused, not read whole.
    with pytest.raises(ResponseTooLarge):
        alice.download_log(job, task.id, 1, "frame7.log", max_bytes=100)
    with pytest.raises(ResponseTooLarge):
        alice.save_log(job, task.id, 1, "frame7.log", io.BytesIO(), max_bytes=100)
    with pytest.raises(NotFound):
        alice.download_log(job, task.id, 1, "frame8.log")


def test_failed_tasks_requeued_by_their_artist(
    admin: FarmClient, alice: FarmClient, bob: FarmClient, command_jobtype: str, announce
) -> None:
    agent_id = announce("render-client-requeue")
    job = alice.submit_job(
        "client_requeue", command_jobtype, 1, 2, requeue=0, data={"command": ["false"]}
    )
    failing, other = alice.tasks(job)
    admin.assign_task(agent_id, failing.id)
    admin.request("POST", f"/jobs/{job.id}/tasks/{failing.id}", json={"state": "failed"})
    assert alice.task(job, failing.id).state == "failed"
    (block,) = alice.blocklist(job)
    assert (block.agent_id, block.failures) == (agent_id, 1)

    with pytest.raises(Forbidden):
        bob.requeue_job(job)
    assert alice.task(job, failing.id).state == "failed"
    with pytest.raises(BadRequest) as unknown:
        alice.request("POST", f"/jobs/{job.id}/requeue", json={"all": True})
    assert unknown.value.message == "unknown field(s): all"

    assert alice.requeue_job("client_requeue") == [failing.id]
    again = alice.task(job, failing.id)
    assert (again.state, again.failures) == ("queued", 1)
    assert alice.task(job, other.id).state == "queued"
    assert alice.requeue_job(job) == []

    with pytest.raises(Forbidden):  # lifting blocks is a wrangler's
        alice.unblock(job, agent_id)
    admin.unblock(job, agent_id)
    assert alice.blocklist(job) == []
    assert admin.unblock_all(job) == 0
    assert "job.requeue" in [e.action for e in alice.events(target=f"job:{job.id}")]


def test_agent_update_archives(admin: FarmClient, alice: FarmClient) -> None:
    archive = b"PK\x05\x06" + bytes(18)  # an empty zip
    assert admin.upload_agent_update("0.8.7", archive)["size"] == len(archive)
    assert alice.download_agent_update("0.8.7") == archive
    saved = io.BytesIO()
    assert alice.save_agent_update("0.8.7", saved) == len(archive)
    assert saved.getvalue() == archive


def test_events_say_who_changed_what(alice: FarmClient, command_jobtype: str) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    job = alice.submit_job("client_events", command_jobtype, 1, data={"command": ["true"]})
    alice.pause_job(job)
    events = alice.events(target=f"job:{job.id}")
    assert [e.action for e in events][-1] == "job.submit"
    assert {(e.actor, e.role) for e in events} >= {("alice", "artist")}
    assert [e.action for e in alice.events(target=f"job:{job.id}", limit=1)] == [events[0].action]
    assert [e.id for e in alice.events(target=f"job:{job.id}", since=before)] == [
        e.id for e in events
    ]
    assert alice.events(target=f"job:{job.id}", since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert alice.events(actor="alice", limit=1)[0].actor == "alice"


def test_the_generic_request_reaches_any_route(alice: FarmClient, command_jobtype: str) -> None:
    job = alice.submit_job("client_request", command_jobtype, 1, data={"command": ["true"]})
    answer = alice.request("GET", f"/jobs/{job.id}")
    assert answer["title"] == "client_request"
    assert alice.request("get", "/api/v1/jobs", params={"title": "client_request"})[0]["id"] == (
        job.id
    )
    assert alice.request("DELETE", f"/jobs/{job.id}") is None


# -- errors -----------------------------------------------------------------------------------


def test_an_unknown_job_is_not_found(alice: FarmClient) -> None:
    with pytest.raises(NotFound) as raised:
        alice.job(2_000_000)
    error = raised.value
    assert isinstance(error, FarmError)
    assert (error.status, error.message, error.method) == (404, "Job 2000000 not found", "GET")
    assert error.url is not None and error.url.endswith("/api/v1/jobs/2000000")
    assert error.body == {"error": "Job 2000000 not found"}


def test_an_artist_cannot_touch_anothers_job(
    alice: FarmClient, bob: FarmClient, command_jobtype: str
) -> None:
    job = alice.submit_job("client_alices", command_jobtype, 1, data={"command": ["true"]})
    for change in (
        lambda: bob.pause_job(job),
        lambda: bob.set_priority(job, 99),
        lambda: bob.delete_job(job),
    ):
        with pytest.raises(Forbidden) as raised:
            change()
        assert raised.value.status == 403
        assert raised.value.message
    after = bob.job(job)  # reading is allowed; nothing changed
    assert (after.state, after.priority) == ("queued", 0)


def test_no_token_or_a_wrong_one_is_unauthorized(farm: Farm) -> None:
    for client in (farm.client(None), FarmClient(farm.master.url, token="farm_" + "0" * 43)):
        with client, pytest.raises(Unauthorized) as raised:
            client.jobs()
        assert raised.value.status == 401
        assert raised.value.message


def test_a_viewer_may_read_but_not_submit(farm: Farm, command_jobtype: str) -> None:
    viewer = farm.client("viewer")
    assert isinstance(viewer.jobs(), list)
    with pytest.raises(Forbidden):
        viewer.submit_job("client_viewer", command_jobtype, 1)


def test_bad_input_carries_the_masters_message(alice: FarmClient, command_jobtype: str) -> None:
    with pytest.raises(BadRequest) as raised:
        alice.submit_job("client_bad", command_jobtype, 10, 1)
    assert raised.value.status == 400
    assert raised.value.message == "`end` must be larger than or equal to start"
    assert raised.value.field == "end"
    with pytest.raises(BadRequest) as unknown:
        alice.submit_job("client_bad", command_jobtype, 1, no_such_option=True)
    assert "no_such_option" in unknown.value.message
    with pytest.raises(BadRequest) as query:
        alice.jobs(state="sleeping")
    assert "sleeping" in query.value.message


def test_a_conflict_is_a_conflict(admin: FarmClient) -> None:
    admin.create_software("maya", ["2025"])
    with pytest.raises(Conflict) as raised:
        admin.create_software("maya", ["2026"])
    assert raised.value.status == 409
    assert "maya" in raised.value.message


def test_answers_larger_than_the_bound_are_refused(
    farm: Farm, alice: FarmClient, command_jobtype: str
) -> None:
    # Whatever else the shared farm holds, the list holds this job, whose title alone is longer
    # than the bound.
    alice.submit_job(
        "client_bound_" + "x" * 230, command_jobtype, 1, 200, data={"command": ["true"]}
    )
    small = farm.client("alice", max_response_bytes=200)
    with pytest.raises(ResponseTooLarge):
        small.jobs()


def test_a_master_that_does_not_answer_is_unreachable() -> None:
    client = FarmClient(f"http://127.0.0.1:{free_port()}", token="t", timeout=2)
    with client, pytest.raises(Unreachable) as raised:
        client.jobs()
    assert raised.value.status is None


# -- configuration ----------------------------------------------------------------------------


def test_url_and_token_from_the_environment(
    farm: Farm, monkeypatch: pytest.MonkeyPatch, command_jobtype: str
) -> None:
    monkeypatch.setenv("FARM_URL", farm.master.url + "/api/v1/")
    monkeypatch.setenv("FARM_TOKEN", farm.tokens["alice"] + "\n")
    with FarmClient() as client:
        assert client.url == farm.master.url
        assert client.has_token
        job = client.submit_job("client_env", command_jobtype, 1, data={"command": ["true"]})
        assert job.submitted_by == "alice"
    # Arguments win over the environment.
    with FarmClient(farm.master.url, token=farm.tokens["bob"]) as client, pytest.raises(Forbidden):
        client.pause_job(job)
    # An empty token argument means none, whatever FARM_TOKEN says.
    with FarmClient(token="") as client, pytest.raises(Unauthorized):
        client.jobs()


def test_without_a_url_the_client_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FARM_URL", raising=False)
    with pytest.raises(ConfigurationError, match="FARM_URL"):
        FarmClient()
    with pytest.raises(ConfigurationError):
        FarmClient("ftp://farm.example")
    with pytest.raises(ConfigurationError):
        FarmClient("http://127.0.0.1:8080", token="two words")


def test_task_controls_one_and_many(
    admin: FarmClient, alice: FarmClient, bob: FarmClient, command_jobtype: str, announce
) -> None:
    agent_id = announce("render-client-controls")
    job = alice.submit_job("client_controls", command_jobtype, 1, 3, data={"command": ["true"]})
    first, second, third = alice.tasks(job)
    admin.assign_task(agent_id, first.id)
    admin.request("POST", f"/jobs/{job.id}/tasks/{first.id}", json={"state": "running"})

    stopped = alice.stop_task(job, first.id)
    assert (stopped.id, stopped.state) == (first.id, "failed")
    (failure,) = alice.task_failures("client_controls", first.id)  # a title, resolved
    assert (failure.attempt, failure.agent_id, failure.reason) == (1, agent_id, "stopped")
    assert failure.at is not None and failure.raw["reason"] == "stopped"
    assert alice.task_failures(job, second.id) == []
    assert alice.retry_task(job, first.id).state == "queued"
    skipped = alice.skip_task(job, second.id)
    assert (skipped.state, skipped.skipped) == ("done", True)
    with pytest.raises(Conflict) as queued:
        alice.retry_task(job, third.id)
    assert "there is nothing to retry" in queued.value.message
    with pytest.raises(Forbidden):
        bob.skip_task(job, third.id)

    results = alice.skip_tasks(job, [third.id, third.id, 2147483647])
    assert [(r.id, r.ok) for r in results] == [(third.id, True), (2147483647, False)]
    assert results[0].task is not None and results[0].task.skipped
    assert (results[1].status, results[1].task) == (404, None)
    (retried,) = alice.retry_tasks(job, [second.id])
    assert retried.ok and retried.task is not None and retried.task.state == "queued"
    (refused,) = alice.stop_tasks(job, [second.id])
    assert (refused.ok, refused.status) == (False, 409) and refused.error
    with pytest.raises(NotFound):
        alice.task_failures(job, 2147483647)


def test_job_controls_one_and_many(
    alice: FarmClient, bob: FarmClient, command_jobtype: str
) -> None:
    first = alice.submit_job("client_jobs_a", command_jobtype, 1, 2, data={"command": ["true"]})
    second = alice.submit_job("client_jobs_b", command_jobtype, 1, 2, data={"command": ["true"]})
    assert alice.pause_job(first, stop_running=True).state == "paused"
    with pytest.raises(Conflict) as again:
        alice.pause_job(first)
    assert "paused already" in again.value.message
    assert alice.resume_job("client_jobs_a").state == "queued"
    with pytest.raises(Forbidden):
        bob.cancel_job(first)
    canceled = alice.cancel_job(first)
    assert (canceled.state, canceled.tasks["canceled"]) == ("canceled", 2)
    assert alice.requeue_job(first) == [t.id for t in alice.tasks(first)]

    paused = alice.pause_jobs([first, second.id, 2147483647])
    assert [(r.id, r.ok, r.status) for r in paused] == [
        (first.id, True, None),
        (second.id, True, None),
        (2147483647, False, 404),
    ]
    assert paused[0].job is not None and paused[0].job.state == "paused"
    assert [r.ok for r in bob.resume_jobs([first, second])] == [False, False]
    assert [r.ok for r in alice.resume_jobs([first, second])] == [True, True]
    assert [r.job.state for r in alice.cancel_jobs([second]) if r.job] == ["canceled"]
    (requeued,) = alice.requeue_jobs([second])
    assert requeued.job is not None and len(requeued.job.requeued) == 2


def test_explanations(admin: FarmClient, alice: FarmClient, command_jobtype: str, announce) -> None:
    agent_id = announce("render-client-explain")  # 16 MB: too little for any job here
    job = alice.submit_job("client_explain", command_jobtype, 1, data={"command": ["true"]})
    explained = alice.explain_job("client_explain")
    assert (explained.job.id, explained.job.title, explained.state) == (
        job.id,
        "client_explain",
        "queued",
    )
    assert explained.raw["can_run_now"] == explained.can_run_now
    ram = [g for g in explained.agents if g.reason == "ram"]
    assert ram and agent_id in {a.id for g in ram for a in g.agents}
    assert all(isinstance(f.detail, str) for g in explained.agents for f in [g])

    agent = alice.explain_agent(agent_id)
    assert (agent.agent.id, agent.agent.hostname) == (agent_id, "render-client-explain")
    assert agent.state == "online" and agent.would_get is None
    assert job.id in {j.id for g in agent.jobs if g.reason == "ram" for j in g.jobs}

    alice.pause_job(job)
    paused = alice.explain_job(job)
    assert not paused.can_run_now and [f.reason for f in paused.reasons] == ["paused"]
    with pytest.raises(NotFound):
        alice.explain_job(2147483647)
    with pytest.raises(NotFound):
        admin.explain_agent(uuid.uuid4())


def test_a_running_frames_log_appended_read_from_an_offset_and_followed(
    admin: FarmClient, alice: FarmClient, command_jobtype: str, announce
) -> None:
    agent_id = announce("render-client-follow")
    job = alice.submit_job("client_follow", command_jobtype, 3, data={"command": ["true"]})
    task = alice.tasks(job)[0]
    admin.assign_task(agent_id, task.id)
    admin.register_log(job, task.id, 1, "frame3.csv", agent_id)
    with pytest.raises(NotFound):  # registered, no text yet
        alice.read_log(job, task.id, 1, "frame3.csv")

    assert admin.append_log(job, task.id, 1, "frame3.csv", 0, "time,stream,line\n") == 17
    assert admin.append_log(job, task.id, 1, "frame3.csv", 0, "time,stream,line\n") == 17
    with pytest.raises(LogGap) as gap:  # a chunk beyond what the master has
        admin.append_log(job, task.id, 1, "frame3.csv", 40, b"lost?\n")
    assert gap.value.offset == 17 and gap.value.status == 409
    assert isinstance(gap.value, Conflict)

    read = alice.read_log(job, task.id, 1, "frame3.csv", offset=5)
    assert (read.data, read.offset, read.next_offset) == (b"stream,line\n", 5, 17)
    assert read.text == "stream,line\n"
    assert alice.read_log(job, task.id, 1, "frame3.csv", offset=17).data == b""

    # Followed while the attempt runs: each new piece once, then the end after it ends.
    following = alice.follow_log(job, task.id, 1, "frame3.csv", poll=0.05, deadline=60)
    assert next(following).data == b"time,stream,line\n"
    admin.append_log(job, task.id, 1, "frame3.csv", 17, "t1,stdout,one\n")
    assert next(following).data == b"t1,stdout,one\n"
    admin.append_log(job, task.id, 1, "frame3.csv", 31, "t2,stdout,two\n")
    admin.request("POST", f"/jobs/{job.id}/tasks/{task.id}", json={"state": "done"})
    rest = list(following)
    assert b"".join(chunk.data for chunk in rest) == b"t2,stdout,two\n"
    assert rest[-1].next_offset == 45

    # Following an attempt that has ended reads what there is and stops.
    assert [c.data for c in alice.follow_log(job, task.id, 1, "frame3.csv", offset=31)] == [
        b"t2,stdout,two\n"
    ]


def test_following_a_log_stops_at_its_deadline(
    admin: FarmClient, alice: FarmClient, command_jobtype: str, announce
) -> None:
    agent_id = announce("render-client-deadline")
    job = alice.submit_job("client_deadline", command_jobtype, 1, data={"command": ["true"]})
    task = alice.tasks(job)[0]
    admin.assign_task(agent_id, task.id)
    admin.register_log(job, task.id, 1, "frame1.csv", agent_id)
    admin.append_log(job, task.id, 1, "frame1.csv", 0, "time,stream,line\n")
    following = alice.follow_log(job, task.id, 1, "frame1.csv", poll=0.05, deadline=0.5)
    assert next(following).next_offset == 17
    with pytest.raises(StillRunning) as running:
        next(following)
    assert running.value.offset == 17
    with pytest.raises(ValueError):
        next(alice.follow_log(job, task.id, 1, "frame1.csv", poll=0))
