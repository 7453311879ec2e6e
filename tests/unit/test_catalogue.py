"""The software catalogue's rules: version ranks, names, and agents' installed versions."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm_domain.catalogue import SoftwareCatalogue, VersionSpec, ranked
from farm_domain.errors import Conflict, NotFound, ValidationError
from tests.support.builders import World
from tests.support.identities import ADMIN

SPECS = st.lists(
    st.tuples(st.text("abc123.", min_size=1, max_size=6), st.none() | st.integers(-1000, 1000)),
    unique_by=(lambda s: s[0], lambda s: s[1] if s[1] is not None else object()),
)


@given(SPECS, st.none() | st.integers(-1000, 1000))
def test_given_ranks_are_kept_and_unranked_versions_follow_in_order(specs, above) -> None:
    result = ranked([VersionSpec(v, r) for v, r in specs], above)
    assert [v for v, _ in result] == [v for v, _ in specs]
    given_ranks = [r for _, r in specs if r is not None]
    floor = max([*given_ranks, *([above] if above is not None else [])], default=0)
    unranked = [
        rank for (_, given_rank), (_, rank) in zip(specs, result, strict=True) if given_rank is None
    ]
    assert all(rank > floor for rank in unranked)
    assert unranked == sorted(unranked) and len(set(unranked)) == len(unranked)
    assert [
        rank for (_, g), (_, rank) in zip(specs, result, strict=True) if g is not None
    ] == given_ranks


def test_unranked_versions_come_in_steps_of_100() -> None:
    assert ranked([VersionSpec("a"), VersionSpec("b", 250), VersionSpec("c")]) == [
        ("a", 350),
        ("b", 250),
        ("c", 450),
    ]


@pytest.fixture
def catalogue() -> tuple[World, SoftwareCatalogue]:
    world = World()
    return world, world.software


def test_names_versions_and_duplicates_are_checked(catalogue) -> None:
    _, software = catalogue
    with pytest.raises(ValidationError, match="not a valid software"):
        software.create(ADMIN, "a/b")
    with pytest.raises(ValidationError, match="listed twice"):
        software.create(ADMIN, "maya", [VersionSpec("1"), VersionSpec("1")])
    with pytest.raises(ValidationError, match="rank 5 is used twice"):
        software.create(ADMIN, "maya", [VersionSpec("1", 5), VersionSpec("2", 5)])
    software.create(ADMIN, "maya", [VersionSpec("2017")])
    with pytest.raises(Conflict, match="already exists"):
        software.create(ADMIN, "maya")
    with pytest.raises(Conflict, match="already has version 2017"):
        software.add_version(ADMIN, "maya", VersionSpec("2017"))
    assert software.add_version(ADMIN, "maya", VersionSpec("2018")).rank == 200


def test_update_keeps_installed_versions_that_stay(catalogue) -> None:
    world, software = catalogue
    software.create(ADMIN, "maya", [VersionSpec("2017"), VersionSpec("2018")])
    agent, _ = world.announce()
    software.install(ADMIN, agent.id, "maya", "2017")
    software.install(ADMIN, agent.id, "maya", "2018")
    updated = software.update(
        ADMIN, "maya", "Maya", [VersionSpec("2018", 10), VersionSpec("2017", 20)]
    )
    assert [(v.version, v.rank) for v in updated.versions] == [("2018", 10), ("2017", 20)]
    assert [(s.software, s.version) for s in software.of_agent(ADMIN, agent.id)] == [
        ("Maya", "2018"),
        ("Maya", "2017"),
    ]
    software.update(ADMIN, "Maya", versions=[VersionSpec("2017")])
    assert [s.version for s in software.of_agent(ADMIN, agent.id)] == ["2017"]


def test_installing_needs_a_known_agent_software_and_version(catalogue) -> None:
    world, software = catalogue
    software.create(ADMIN, "maya", [VersionSpec("2017")])
    agent, _ = world.announce()
    with pytest.raises(NotFound, match="Agent"):
        software.install(ADMIN, uuid.uuid4(), "maya", "2017")
    with pytest.raises(NotFound, match="Software houdini not found"):
        software.install(ADMIN, agent.id, "houdini", "1")
    with pytest.raises(NotFound, match="Software maya version 2020 not found"):
        software.install(ADMIN, agent.id, "maya", "2020")
    software.install(ADMIN, agent.id, "maya", "2017")
    software.uninstall(ADMIN, agent.id, "maya", "2017")
    assert software.of_agent(ADMIN, agent.id) == ()
