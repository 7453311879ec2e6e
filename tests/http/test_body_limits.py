"""Limits on what a JSON body may be: its size at the edge, before anything reads it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import attrs
import falcon.testing
import orjson
import pytest

from tests.support.http_harness import Harness, make_harness

LIMIT = 4096
JOB = {"title": "shot", "jobtype": "render", "start": 1, "end": 2}


@pytest.fixture
def small(database_url: str, tmp_path: Path) -> Iterator[Harness]:
    harness = make_harness(database_url, tmp_path, FARM_MAX_JSON_BYTES=str(LIMIT))
    farm = next(harness)
    assert farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"}).status_code == 201
    yield farm
    next(harness, None)


class Unreadable(io.RawIOBase):
    """A body nobody may read: the limit is applied to the declared length alone."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


def jobs_listed(farm: Harness) -> int:
    return len(farm.client.simulate_get("/api/v1/jobs").json)


def test_a_declared_length_over_the_limit_is_413_without_reading(small: Harness) -> None:
    result = small.client.simulate_post(
        "/api/v1/jobs",
        headers={"Content-Type": "application/json"},
        extras={"wsgi.input": Unreadable(), "CONTENT_LENGTH": str(LIMIT + 1)},
    )
    assert result.status_code == 413
    assert "FARM_MAX_JSON_BYTES" in result.json["error"]
    assert jobs_listed(small) == 0


def test_a_body_at_the_limit_is_read(small: Harness) -> None:
    body = orjson.dumps({**JOB, "data": {"x": ""}})
    body = orjson.dumps({**JOB, "data": {"x": "a" * (LIMIT - len(body))}})
    assert len(body) == LIMIT
    result = small.client.simulate_post(
        "/api/v1/jobs", body=body, headers={"Content-Type": "application/json"}
    )
    assert result.status_code == 201, result.text


def chunked(farm: Harness, body: bytes) -> tuple[falcon.testing.Result, int]:
    stream = io.BytesIO(body)
    result = farm.client.simulate_post(
        "/api/v1/jobs",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        extras={"wsgi.input": stream, "CONTENT_LENGTH": ""},
    )
    return result, stream.tell()


def test_a_chunked_body_is_read_up_to_the_limit_and_refused_past_it(small: Harness) -> None:
    result, read = chunked(small, orjson.dumps({**JOB, "data": {"x": "a" * LIMIT * 4}}))
    assert result.status_code == 413
    assert read == LIMIT + 1
    assert jobs_listed(small) == 0


def test_a_small_chunked_body_is_accepted(small: Harness) -> None:
    result, _ = chunked(small, orjson.dumps(JOB))
    assert result.status_code == 201, result.text
    assert jobs_listed(small) == 1


def test_uploads_keep_their_own_limit(small: Harness) -> None:
    version = small.client.simulate_put(
        "/api/v1/agents/updates/9.9.9",
        body=b"x" * (LIMIT * 2),
        headers={"Content-Type": "application/zip"},
    )
    assert version.status_code < 300, version.text


@pytest.fixture
def jobs(farm: Harness) -> Harness:
    assert farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"}).status_code == 201
    return farm


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"data": nested(300)}, "data", "levels deep"),
        ({"data": nested(33)}, "data", "levels deep"),
        ({"data": {"list": [[0]] * 10_001}}, "data", "keys and items"),
        ({"data": {"big": "x" * (300 * 1024)}}, "data", "bytes as JSON"),
        ({"environ": {"A": "x\x00y"}}, "environ", "NUL"),
        ({"environ": {"A\x00": "x"}}, "environ", "variable name"),
        ({"environ": {"A\nB": "x"}}, "environ", "variable name"),
        ({"environ": {"A=B": "x"}}, "environ", "variable name"),
        ({"environ": {"": "x"}}, "environ", "variable name"),
        ({"environ": {f"V{i}": "" for i in range(1001)}}, "environ", "variables"),
    ],
)
def test_free_json_has_a_shape_limit_naming_the_field(
    jobs: Harness, fields: dict[str, object], field: str, words: str
) -> None:
    result = jobs.client.simulate_post("/api/v1/jobs", json={**JOB, **fields})
    assert result.status_code == 400, result.text
    assert result.json["field"] == field and words in result.json["error"]
    assert jobs_listed(jobs) == 0


def test_free_json_within_the_limits_is_kept(jobs: Harness) -> None:
    data = {**nested(32), "list": list(range(9_000)), "text": "a\x00\n"}
    environ = {"PATH": "/bin", "MULTI": "line 1\nline 2", "EMPTY": ""}
    result = jobs.client.simulate_post(
        "/api/v1/jobs", json={**JOB, "data": data, "environ": environ}
    )
    assert result.status_code == 201, result.text
    assert result.json["data"] == data and result.json["environ"] == environ


def test_a_stored_row_deeper_than_the_encoder_accepts_is_still_served(jobs: Harness) -> None:
    job = jobs.job(title="old")
    with jobs.uow() as uow:
        uow.jobs.save(attrs.evolve(job, data=nested(300)))
        uow.commit()
    listed = jobs.client.simulate_get("/api/v1/jobs")
    assert listed.status_code == 200, listed.text
    one = jobs.client.simulate_get(f"/api/v1/jobs/{job.id}")
    assert one.status_code == 200 and one.json["data"] == nested(300)
    paused = jobs.client.simulate_post(f"/api/v1/jobs/{job.id}", json={"state": "paused"})
    assert paused.status_code == 200, paused.text
