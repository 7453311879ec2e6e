"""Task logs and agent updates over HTTP: stored as files, streamed back."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from tests.support.http_harness import Harness, make_harness

CSV = {"Content-Type": "text/csv"}


def logs_path(farm: Harness, attempt: int = 1) -> tuple[str, int, int]:
    job = farm.job()
    task = farm.task(job, attempts=attempt)
    return f"/api/v1/jobs/{job.id}/tasks/{task.id}/attempts/{attempt}/logs", job.id, task.id


def test_a_log_is_registered_uploaded_listed_and_downloaded(farm: Harness) -> None:
    path, _, task_id = logs_path(farm)
    agent_id = str(uuid.uuid4())
    created = farm.client.simulate_post(
        path + "/", json={"identifier": "2026-01-01_frame1.csv", "agent_id": agent_id}
    )
    assert created.status_code == 201
    assert created.json["agent_id"] == agent_id and created.json["size"] is None
    again = farm.client.simulate_post(
        path, json={"identifier": "2026-01-01_frame1.csv", "agent_id": agent_id}
    )
    assert again.status_code == 200
    text = "time,level,message\n" + "".join(f"{i},info,line {i}\n" for i in range(20000))
    upload = farm.client.simulate_put(
        f"{path}/2026-01-01_frame1.csv/logfile", body=text, headers=CSV
    )
    assert upload.status_code == 201 and upload.json["size"] == len(text)
    download = farm.client.simulate_get(f"{path}/2026-01-01_frame1.csv/logfile")
    assert download.status_code == 200 and download.text == text
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == 'attachment; filename="2026-01-01_frame1.csv"'
    state = farm.client.simulate_post(f"{path}/2026-01-01_frame1.csv", json={"state": "done"})
    assert state.status_code == 200 and state.json["state"] == "done"
    listed = farm.client.simulate_get(path).json
    assert [(l["identifier"], l["size"], l["state"]) for l in listed] == [
        ("2026-01-01_frame1.csv", len(text), "done")
    ]
    other_attempt = path.replace("/attempts/1/", "/attempts/2/")
    assert farm.client.simulate_get(other_attempt).json == []
    assert task_id


@pytest.mark.parametrize(
    ("identifier", "status"),
    [("../../etc/passwd", 400), ("..", 400), (".hidden", 400), ("a b", 400), ("x" * 256, 400)],
)
def test_identifiers_that_could_escape_are_refused(farm: Harness, identifier, status) -> None:
    path, _, _ = logs_path(farm)
    result = farm.client.simulate_post(path, json={"identifier": identifier})
    assert result.status_code == status and "not a valid log identifier" in result.json["error"]


def test_log_errors(farm: Harness) -> None:
    path, job_id, task_id = logs_path(farm)
    unregistered = farm.client.simulate_put(f"{path}/nope.csv/logfile", body="x", headers=CSV)
    assert (
        unregistered.status_code == 404 and "Log nope.csv not found" in unregistered.json["error"]
    )
    farm.client.simulate_post(path, json={"identifier": "a.csv"})
    assert farm.client.simulate_get(f"{path}/a.csv/logfile").status_code == 404
    wrong_type = farm.client.simulate_put(
        f"{path}/a.csv/logfile", body="x", headers={"Content-Type": "application/json"}
    )
    assert wrong_type.status_code == 415 and wrong_type.json["error"]
    other_job = farm.job()
    elsewhere = f"/api/v1/jobs/{other_job.id}/tasks/{task_id}/attempts/1/logs"
    assert farm.client.simulate_post(elsewhere, json={"identifier": "a.csv"}).status_code == 404
    bad_agent = farm.client.simulate_post(path, json={"identifier": "b.csv", "agent_id": "x"})
    assert bad_agent.status_code == 400
    assert farm.client.simulate_post(path, json={"identifier": 5}).status_code == 400
    assert job_id


def test_uploads_over_the_limit_are_413_and_keep_nothing(database_url: str, tmp_path) -> None:
    for farm in make_harness(
        database_url, tmp_path, FARM_MAX_LOG_BYTES="100", FARM_MAX_UPDATE_BYTES="100"
    ):
        path, _, _ = logs_path(farm)
        farm.client.simulate_post(path, json={"identifier": "a.csv"})
        assert (
            farm.client.simulate_put(
                f"{path}/a.csv/logfile", body="x" * 100, headers=CSV
            ).status_code
            == 201
        )
        big = farm.client.simulate_put(f"{path}/a.csv/logfile", body="y" * 101, headers=CSV)
        assert big.status_code == 413 and big.json["error"]
        assert farm.client.simulate_get(f"{path}/a.csv/logfile").text == "x" * 100
        update = farm.client.simulate_put(
            "/api/v1/agents/updates/1.0",
            body=b"z" * 101,
            headers={"Content-Type": "application/zip"},
        )
        assert update.status_code == 413
        assert farm.client.simulate_get("/api/v1/agents/updates/1.0").status_code == 404
        leftovers = [p for p in (tmp_path / "files").rglob("*") if p.name.startswith(".upload")]
        assert leftovers == []


def test_agent_updates(farm: Harness) -> None:
    archive = bytes(range(256)) * 100
    zip_type = {"Content-Type": "application/zip"}
    created = farm.client.simulate_put(
        "/api/v1/agents/updates/0.8.7", body=archive, headers=zip_type
    )
    assert created.status_code == 201 and created.json == {"version": "0.8.7", "size": len(archive)}
    download = farm.client.simulate_get("/api/v1/agents/updates/0.8.7")
    assert download.status_code == 200 and download.content == archive
    assert download.headers["content-type"] == "application/zip"
    missing = farm.client.simulate_get("/api/v1/agents/updates/0.9.0")
    assert missing.status_code == 404 and missing.json["error"] == "Specified update not found"
    for bad in ("latest", "1.2.3.4", "1.0-evil"):
        result = farm.client.simulate_get(f"/api/v1/agents/updates/{bad}")
        assert result.status_code == 400 and "not a valid agent version" in result.json["error"]
    assert (
        farm.client.simulate_put(
            "/api/v1/agents/updates/1.0-dev2", body=b"zip", headers=zip_type
        ).status_code
        == 201
    )
    wrong = farm.client.simulate_put(
        "/api/v1/agents/updates/1.0", body=b"zip", headers={"Content-Type": "text/plain"}
    )
    assert wrong.status_code == 415


def _chunked(body: bytes) -> dict[str, Any]:
    """A request whose body arrives without a Content-Length (Transfer-Encoding: chunked)."""
    return {
        "headers": {**CSV, "Transfer-Encoding": "chunked"},
        "extras": {"wsgi.input": io.BytesIO(body)},
    }


def test_chunked_log_uploads_are_read_with_the_size_limit(database_url: str, tmp_path) -> None:
    for farm in make_harness(database_url, tmp_path, FARM_MAX_LOG_BYTES="100"):
        path, _, _ = logs_path(farm)
        farm.client.simulate_post(path, json={"identifier": "a.csv"})
        stored = farm.client.simulate_put(f"{path}/a.csv/logfile", **_chunked(b"x" * 100))
        assert stored.status_code == 201 and stored.json["size"] == 100
        big = farm.client.simulate_put(f"{path}/a.csv/logfile", **_chunked(b"y" * 101))
        assert big.status_code == 413 and big.json["error"]
        assert farm.client.simulate_get(f"{path}/a.csv/logfile").text == "x" * 100


def test_a_body_without_length_or_chunked_encoding_is_411(farm: Harness) -> None:
    path, _, _ = logs_path(farm)
    farm.client.simulate_post(path, json={"identifier": "a.csv"})
    farm.client.simulate_put(f"{path}/a.csv/logfile", body="kept", headers=CSV)
    no_length = farm.client.simulate_put(
        f"{path}/a.csv/logfile", headers=CSV, extras={"wsgi.input": io.BytesIO(b"lost")}
    )
    assert no_length.status_code == 411 and no_length.json["error"]
    assert farm.client.simulate_get(f"{path}/a.csv/logfile").text == "kept"
    update = farm.client.simulate_put(
        "/api/v1/agents/updates/1.0",
        headers={"Content-Type": "application/zip", "Transfer-Encoding": "chunked"},
        extras={"wsgi.input": io.BytesIO(b"zip")},
    )
    assert update.status_code == 201 and update.json["size"] == 3


def test_logs_are_accepted_only_for_attempts_that_happened(farm: Harness) -> None:
    path, _, _ = logs_path(farm, attempt=2)
    assert farm.client.simulate_post(path, json={"identifier": "a.csv"}).status_code == 201
    earlier = path.replace("/attempts/2/", "/attempts/1/")
    assert farm.client.simulate_post(earlier, json={"identifier": "a.csv"}).status_code == 201
    for attempt in (3, 1000):
        future = path.replace("/attempts/2/", f"/attempts/{attempt}/")
        refused = farm.client.simulate_post(future, json={"identifier": "a.csv"})
        assert refused.status_code == 409 and "attempt" in refused.json["error"]
        assert farm.client.simulate_get(future).json == []
        upload = farm.client.simulate_put(f"{future}/a.csv/logfile", body="x", headers=CSV)
        assert upload.status_code == 404


def test_logs_and_updates_share_a_disk_budget(database_url: str, tmp_path) -> None:
    for farm in make_harness(database_url, tmp_path, FARM_MAX_FILES_BYTES="150"):
        path, _, _ = logs_path(farm)
        farm.client.simulate_post(path, json={"identifier": "a.csv"})
        farm.client.simulate_post(path, json={"identifier": "b.csv"})
        zip_type = {"Content-Type": "application/zip"}
        put = farm.client.simulate_put
        assert (
            put("/api/v1/agents/updates/1.0", body=b"z" * 100, headers=zip_type).status
            == "201 Created"
        )
        assert put(f"{path}/a.csv/logfile", body="x" * 50, headers=CSV).status_code == 201
        full = put(f"{path}/b.csv/logfile", body="y", headers=CSV)
        assert full.status_code == 507 and "150 bytes" in full.json["error"]
        assert farm.client.simulate_get(f"{path}/b.csv/logfile").status_code == 404
        # Replacing a file counts its new size, not both.
        assert put(f"{path}/a.csv/logfile", body="w" * 50, headers=CSV).status_code == 201
        assert put("/api/v1/agents/updates/1.1", body=b"z", headers=zip_type).status_code == 507


def test_a_deleted_jobs_logs_go_with_it_and_never_reach_a_new_job(farm: Harness, tmp_path) -> None:
    assert (
        farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"}).status
        == "201 Created"
    )
    job = {"title": "shot", "jobtype": "render", "start": 1, "end": 2}

    def submit() -> tuple[int, list[int]]:
        created = farm.client.simulate_post("/api/v1/jobs/", json=job)
        assert created.status_code == 201
        tasks = farm.client.simulate_get(f"/api/v1/jobs/{created.json['id']}/tasks/").json
        return created.json["id"], [task["id"] for task in tasks]

    def logs(job_id: int, task_id: int) -> str:
        return f"/api/v1/jobs/{job_id}/tasks/{task_id}/attempts/0/logs"

    farm.job(title="earlier")  # ids deleted from the end of a table were the ones SQLite reused
    old_job, old_tasks = submit()
    for task_id in old_tasks:
        path = logs(old_job, task_id)
        assert farm.client.simulate_post(path, json={"identifier": "render.csv"}).status_code == 201
        put = farm.client.simulate_put(f"{path}/render.csv/logfile", body="old text", headers=CSV)
        assert put.status_code == 201
    task_folders = [tmp_path / "files" / "logs" / str(task_id) for task_id in old_tasks]
    assert all(folder.is_dir() for folder in task_folders)

    assert farm.client.simulate_delete(f"/api/v1/jobs/{old_job}").status_code == 204
    assert not any(folder.exists() for folder in task_folders)

    new_job, new_tasks = submit()
    assert new_job > old_job and min(new_tasks) > max(old_tasks)
    for task_id in new_tasks:
        path = logs(new_job, task_id)
        assert farm.client.simulate_post(path, json={"identifier": "render.csv"}).status_code == 201
        assert farm.client.simulate_get(f"{path}/render.csv/logfile").status_code == 404
    for task_id in old_tasks:
        gone = farm.client.simulate_get(f"{logs(old_job, task_id)}/render.csv/logfile")
        assert gone.status_code == 404


class _BodyThen(io.BytesIO):
    """A request body that runs ``then`` when its first bytes are read (the upload is under
    way: its file is open in its task's folder)."""

    def __init__(self, body: bytes, then: Any) -> None:
        super().__init__(body)
        self._then = then

    def read(self, size: int | None = -1) -> bytes:
        if self._then is not None:
            then, self._then = self._then, None
            then()
        return super().read(size)


def test_a_log_upload_racing_its_jobs_deletion_is_404_and_keeps_nothing(farm: Harness) -> None:
    path, job_id, task_id = logs_path(farm)
    farm.client.simulate_post(path, json={"identifier": "a.csv"})
    assert (
        farm.client.simulate_put(f"{path}/a.csv/logfile", body="old", headers=CSV).status_code
        == 201
    )
    folder = farm.runtime.settings.data_dir / "files" / "logs" / str(task_id)
    assert folder.is_dir()

    def delete_the_job() -> None:
        assert farm.client.simulate_delete(f"/api/v1/jobs/{job_id}").status_code == 204

    body = b"x" * 100_000
    raced = farm.client.simulate_put(
        f"{path}/a.csv/logfile",
        headers={**CSV, "Content-Length": str(len(body))},
        extras={"wsgi.input": _BodyThen(body, delete_the_job)},
    )
    assert raced.status_code == 404 and raced.json["error"]
    assert not folder.exists()
    assert farm.client.simulate_get(f"{path}/a.csv/logfile").status_code == 404
