"""The blender job type's data: the master refuses at submission what an agent would refuse in
an assignment, and nothing else (the agent keeps its own copy of the rules: it imports none of
the master's packages)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm_agent import blender as agent_side
from farm_domain import blender_jobs
from farm_domain.errors import ValidationError

GOOD = {"file": "/farm/shot.blend", "output": "/farm/out/shot_####"}
CASES: list[dict[str, Any]] = [
    GOOD,
    {
        **GOOD,
        "format": "OPEN_EXR",
        "engine": "CYCLES",
        "samples": 64,
        "resolution_percentage": 50,
        "scene": "Shot",
        "args": ["-t", "4", ""],
    },
    {},
    {"file": "/f"},
    {"file": "", "output": "/o"},
    {"file": "/f\x00", "output": "/o"},
    {**GOOD, "format": "TIFF"},
    {**GOOD, "format": None},
    {**GOOD, "engine": "BLENDER_EEVEE"},
    {**GOOD, "samples": 0},
    {**GOOD, "samples": True},
    {**GOOD, "samples": 1.0},
    {**GOOD, "resolution_percentage": 1001},
    {**GOOD, "scene": ""},
    {**GOOD, "scene": 3},
    {**GOOD, "args": "-t 4"},
    {**GOOD, "args": ["\x00"]},
    {**GOOD, "args": ["a"] * 257},
    {**GOOD, "command": ["x"]},
]


def master_refuses(data: dict[str, Any]) -> bool:
    try:
        blender_jobs.check_data(data)
    except ValidationError as error:
        assert error.field == "data"
        return True
    return False


@pytest.mark.parametrize("data", CASES)
def test_the_master_and_the_agent_agree(data: dict[str, Any]) -> None:
    assert master_refuses(data) == (agent_side.data_problem(data) is not None)


def test_the_good_cases_pass_and_the_messages_name_the_key() -> None:
    assert not master_refuses(CASES[0]) and not master_refuses(CASES[1])
    with pytest.raises(ValidationError, match=r"`data.engine` must be one of"):
        blender_jobs.check_data({**GOOD, "engine": "LUX"})


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**25),
    st.floats(allow_nan=False),
    st.sampled_from(
        ["PNG", "JPEG", "OPEN_EXR", "CYCLES", "WORKBENCH", "BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"]
    ),
    st.text(max_size=20),
    st.lists(st.text(max_size=5), max_size=4),
)
keys = st.sampled_from(sorted(blender_jobs.KEYS) + ["command", "frames"])


@given(st.dictionaries(keys, values, max_size=9))
def test_the_master_and_the_agent_agree_on_any_data(data: dict[str, Any]) -> None:
    assert master_refuses(data) == (agent_side.data_problem(data) is not None)


def test_only_whole_frames() -> None:
    blender_jobs.check_frames([1.0, 2.0, -3.0])
    with pytest.raises(ValidationError, match="whole frames"):
        blender_jobs.check_frames([1.0, 1.5])
