"""A task whose environment or command cannot be used fails at once with the reason, instead
of its batch's thread dying and the task staying `running`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from farm_agent.runner import Assignment
from tests.agent.test_agent import Recorder, assign_body, runner_for


def finals(recorder: Recorder, count: int, within: float = 5) -> list[tuple[int, dict[str, Any]]]:
    with recorder.done:
        recorder.done.wait_for(
            lambda: sum(final for _, _, final in recorder.reports) >= count, within
        )
        return [(task_id, body) for task_id, body, final in recorder.reports if final]


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"SCENE": "a\x00b"}, "null byte"),
        ({"A=B": "1"}, "environment variable"),
    ],
    ids=["nul-in-value", "equals-in-name"],
)
def test_an_unusable_environment_fails_each_task_at_once(
    tmp_path: Path, environ: dict[str, str], said: str
) -> None:
    recorder = Recorder()
    runner = runner_for(tmp_path, recorder)
    started = time.monotonic()
    runner.start(Assignment(assign_body(1, 2, environ=environ)))
    reported = finals(recorder, 2)
    assert time.monotonic() - started < 5
    assert [task_id for task_id, _ in reported] == [1, 2]
    for _, body in reported:
        assert body["state"] == "failed" and said in body["last_error"], body
    assert not runner.running_task_ids()


def test_an_error_before_the_process_starts_fails_the_task_not_the_batch(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    runner = runner_for(tmp_path, recorder)
    (tmp_path / "logs").write_text("a file where the logs directory should be")
    runner.start(Assignment(assign_body(1, 2)))
    reported = finals(recorder, 2)
    assert [body["state"] for _, body in reported] == ["failed", "failed"]
    assert all("could not run" in body["last_error"] for _, body in reported)
    assert not runner.running_task_ids()
