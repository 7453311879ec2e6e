"""A running frame's log over HTTP: chunks appended at their offset, exactly once; read so far."""

from __future__ import annotations

import falcon.testing

from farm_domain.files import MAX_CHUNK
from tests.http.test_files_api import CSV, logs_path
from tests.support.http_harness import Harness, make_harness


def _registered(farm: Harness, identifier: str = "frame.csv") -> str:
    path, _, _ = logs_path(farm)
    assert farm.client.simulate_post(path, json={"identifier": identifier}).status_code == 201
    return f"{path}/{identifier}"


def _chunk(farm: Harness, log: str, offset: int | str, body: bytes | str) -> falcon.testing.Result:
    return farm.client.simulate_post(
        f"{log}/chunks", params={"offset": offset}, body=body, headers=CSV
    )


def _text(farm: Harness, log: str, offset: int | None = None) -> str:
    params = {} if offset is None else {"offset": offset}
    answer = farm.client.simulate_get(f"{log}/logfile", params=params)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_chunks_append_in_order_and_the_log_reads_as_far_as_it_has_arrived(
    farm: Harness,
) -> None:
    log = _registered(farm)
    first = _chunk(farm, log, 0, "time,stream,line\n")
    assert first.status_code == 200 and first.json == {"offset": 17}
    assert _text(farm, log) == "time,stream,line\n"
    second = _chunk(farm, log, 17, "t1,stdout,hello\n")
    assert second.json == {"offset": 33}
    assert _text(farm, log) == "time,stream,line\nt1,stdout,hello\n"
    # A viewer asks only for what is new.
    assert _text(farm, log, 17) == "t1,stdout,hello\n"
    assert _text(farm, log, 33) == ""
    listed = farm.client.simulate_get(log.rsplit("/", 1)[0]).json
    assert [entry["size"] for entry in listed] == [33]


def test_a_chunk_sent_again_is_acknowledged_and_stored_once(farm: Harness) -> None:
    log = _registered(farm)
    _chunk(farm, log, 0, "aaaa")
    _chunk(farm, log, 4, "bbbb")
    again = _chunk(farm, log, 4, "bbbb")
    assert again.status_code == 200 and again.json == {"offset": 8}
    assert _chunk(farm, log, 0, "aaaa").json == {"offset": 8}
    # A resend reaching past what is stored adds only the bytes beyond it.
    overlapping = _chunk(farm, log, 4, "bbbbcc")
    assert overlapping.json == {"offset": 10}
    assert _text(farm, log) == "aaaabbbbcc"


def test_a_gap_is_refused_with_the_offset_the_master_has(farm: Harness) -> None:
    log = _registered(farm)
    _chunk(farm, log, 0, "aaaa")
    gap = _chunk(farm, log, 6, "cc")
    assert gap.status_code == 409
    assert gap.json["offset"] == 4 and "4 bytes" in gap.json["error"]
    assert _text(farm, log) == "aaaa"
    assert _chunk(farm, log, 4, "bbcc").json == {"offset": 8}
    assert _text(farm, log) == "aaaabbcc"


def test_the_first_chunk_may_be_empty_and_makes_the_log_readable(farm: Harness) -> None:
    log = _registered(farm)
    assert farm.client.simulate_get(f"{log}/logfile").status_code == 404
    empty = farm.client.simulate_post(
        f"{log}/chunks", params={"offset": 0}, headers={**CSV, "Content-Length": "0"}
    )
    assert empty.json == {"offset": 0}
    assert _text(farm, log) == ""


def test_bad_chunks_are_refused_and_change_nothing(farm: Harness) -> None:
    log = _registered(farm)
    _chunk(farm, log, 0, "aaaa")
    for offset in ("", "-1", "x", "99999999999"):
        refused = _chunk(farm, log, offset, "zz")
        assert refused.status_code == 400 and refused.json["error"], offset
    missing = farm.client.simulate_post(f"{log}/chunks", body="zz", headers=CSV)
    assert missing.status_code == 400 and "offset" in missing.json["error"]
    wrong_type = farm.client.simulate_post(
        f"{log}/chunks",
        params={"offset": 4},
        body="zz",
        headers={"Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    too_big = _chunk(farm, log, 4, b"z" * (MAX_CHUNK + 1))
    assert too_big.status_code == 413 and too_big.json["error"]
    unregistered = farm.client.simulate_post(
        log.replace("frame.csv", "other.csv") + "/chunks",
        params={"offset": 0},
        body="zz",
        headers=CSV,
    )
    assert unregistered.status_code == 404
    assert farm.client.simulate_get(f"{log}/logfile", params={"offset": -1}).status_code == 400
    assert _text(farm, log) == "aaaa"


def test_a_log_stays_within_its_limit_and_the_disk_budget(database_url: str, tmp_path) -> None:
    for farm in make_harness(
        database_url, tmp_path, FARM_MAX_LOG_BYTES="10", FARM_MAX_FILES_BYTES="16"
    ):
        log = _registered(farm)
        assert _chunk(farm, log, 0, "x" * 8).status_code == 200
        over = _chunk(farm, log, 8, "yyy")
        assert over.status_code == 413 and over.json["error"]
        assert _chunk(farm, log, 8, "yy").json == {"offset": 10}
        other = _registered(farm, "other.csv")
        assert _chunk(farm, other, 0, "z" * 6).status_code == 200
        full = _chunk(farm, other, 6, "z")
        assert full.status_code == 507 and "16 bytes" in full.json["error"]
        assert _text(farm, log) == "x" * 8 + "yy"
        assert _text(farm, other) == "z" * 6
