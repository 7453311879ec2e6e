"""The job-state rule is a pure function of its tasks' statuses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from farm_domain.enums import WorkState
from farm_domain.work import TaskStatus, job_state

COUNTS = st.dictionaries(st.sampled_from(list(TaskStatus)), st.integers(1, 5), min_size=1)
CURRENT = st.sampled_from([None, *WorkState])
ACTIVE = {TaskStatus.QUEUED, TaskStatus.ASSIGNED, TaskStatus.RUNNING, TaskStatus.PAUSED}


@given(COUNTS, CURRENT)
def test_done_exactly_when_every_task_is_done(counts, current) -> None:
    assert (job_state(counts, current) is WorkState.DONE) == (set(counts) == {TaskStatus.DONE})


@given(COUNTS, CURRENT)
def test_failed_exactly_when_nothing_is_active_and_something_failed(counts, current) -> None:
    """...and nothing was canceled (a canceled job stays canceled)."""
    failed = (
        not (set(counts) & ACTIVE)
        and TaskStatus.FAILED in counts
        and TaskStatus.CANCELED not in counts
    )
    assert (job_state(counts, current) is WorkState.FAILED) == failed


@given(COUNTS, CURRENT)
def test_canceled_exactly_when_nothing_is_active_and_something_was_canceled(
    counts, current
) -> None:
    canceled = not (set(counts) & ACTIVE) and TaskStatus.CANCELED in counts
    assert (job_state(counts, current) is WorkState.CANCELED) == canceled


@given(COUNTS, CURRENT)
def test_an_unfinished_job_is_paused_running_or_queued(counts, current) -> None:
    if not set(counts) & ACTIVE:
        return
    state = job_state(counts, current)
    if current is WorkState.PAUSED:
        assert state is WorkState.PAUSED
    elif counts.keys() & {TaskStatus.RUNNING, TaskStatus.ASSIGNED}:
        assert state is WorkState.RUNNING
    else:
        assert state is None


@given(COUNTS, CURRENT, st.randoms())
def test_the_order_of_tasks_does_not_matter(counts, current, rnd) -> None:
    items = list(counts.items())
    rnd.shuffle(items)
    assert job_state(dict(items), current) is job_state(counts, current)


def test_a_job_without_tasks_keeps_its_state() -> None:
    assert job_state({}, WorkState.PAUSED) is WorkState.PAUSED
