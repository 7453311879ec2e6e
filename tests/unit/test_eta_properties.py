"""A job's estimated time left (``estimated_remaining``) as properties of the frames done."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from farm_domain.work import estimated_remaining

durations = st.lists(
    st.integers(min_value=0, max_value=10**6).map(lambda s: timedelta(seconds=s)),
    min_size=1,
    max_size=50,
)
remaining = st.integers(min_value=0, max_value=10**6)
parallel = st.integers(min_value=-2, max_value=5000)


@given(durations, remaining, parallel)
def test_the_estimate_lies_between_the_fastest_and_slowest_frame_per_round(
    done: list[timedelta], left: int, agents: int
) -> None:
    estimate = estimated_remaining(done, left, agents)
    assert estimate is not None
    rounds = math.ceil(left / max(agents, 1))
    assert min(done) * rounds - timedelta(milliseconds=1) <= estimate
    assert estimate <= max(done) * rounds + timedelta(milliseconds=1)


@given(durations, remaining, parallel)
def test_more_frames_left_never_take_less_and_more_agents_never_take_longer(
    done: list[timedelta], left: int, agents: int
) -> None:
    estimate = estimated_remaining(done, left, agents)
    assert estimate is not None
    assert estimated_remaining(done, left + 1, agents) >= estimate  # type: ignore[operator]
    assert estimated_remaining(done, left, max(agents, 1) + 1) <= estimate  # type: ignore[operator]


@given(durations, parallel)
def test_nothing_left_takes_no_time_even_without_a_frame_done(
    done: list[timedelta], agents: int
) -> None:
    assert estimated_remaining(done, 0, agents) == timedelta(0)
    assert estimated_remaining([], 0, agents) == timedelta(0)


@given(st.integers(min_value=1, max_value=10**6), parallel)
def test_no_estimate_before_a_frame_is_done(left: int, agents: int) -> None:
    assert estimated_remaining([], left, agents) is None


def test_one_agent_takes_the_mean_per_frame() -> None:
    done = [timedelta(seconds=10), timedelta(seconds=20)]
    assert estimated_remaining(done, 4, 1) == timedelta(seconds=60)
    assert estimated_remaining(done, 4, 3) == timedelta(seconds=30)  # two rounds
