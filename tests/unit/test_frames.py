"""Frame expansion never loses or duplicates a frame."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm_domain.errors import ValidationError
from farm_domain.job_requests import MAX_FRAMES, frames

NUMBER = st.integers(-1000, 1000) | st.decimals(-1000, 1000, places=2).map(float)
STEP = st.integers(1, 50) | st.sampled_from([0.1, 0.25, 0.5, 1.5, 2.5, 0.01])


@given(NUMBER, st.integers(0, 400) | st.floats(0, 400), STEP)
def test_frames_step_from_start_up_to_end(start, span, by) -> None:
    end = start + span
    try:
        result = frames(start, end, by)
    except ValidationError as error:
        assert "at most" in error.message
        return
    first, last, step = (
        Decimal(repr(start)),
        Decimal(repr(float(end) if isinstance(end, float) else end)),
        Decimal(repr(by)),
    )
    expected_count = int((last - first) // step) + 1
    assert len(result) == expected_count
    assert len(set(result)) == len(result)
    assert result == sorted(result)
    assert result[0] == float(first)
    assert Decimal(repr(result[-1])) <= last
    for index, frame in enumerate(result):
        assert frame == float(first + step * index)


def test_decimal_steps_do_not_drift() -> None:
    assert frames(0, 1, 0.1) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert frames(1, 10, 1) == [float(f) for f in range(1, 11)]
    assert frames(5, 5, 2) == [5.0]


@pytest.mark.parametrize(
    ("start", "end", "by", "message"),
    [
        (10, 1, 1, "`end` must be larger than or equal to start"),
        (1, 10, 0, "`by` must be above 0"),
        (1, 10, -1, "`by` must be above 0"),
        (0, MAX_FRAMES, 1, "at most"),
    ],
)
def test_bad_ranges_are_refused(start, end, by, message) -> None:
    with pytest.raises(ValidationError, match=message):
        frames(start, end, by)


def test_a_range_beyond_the_decimal_precision_is_too_many_frames() -> None:
    with pytest.raises(ValidationError, match="at most"):
        frames(1, 1.0000000000000002e28, 1)
