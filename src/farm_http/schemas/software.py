"""Bodies and representations of the software catalogue and of agents' installed software."""

from __future__ import annotations

from typing import TypedDict

import attrs

from farm_domain.agents import SoftwareRef
from farm_domain.catalogue import VersionSpec
from farm_domain.software import Software, SoftwareVersion


@attrs.frozen
class SoftwareBody:
    software: str
    versions: tuple[VersionSpec, ...] = ()


@attrs.frozen
class SoftwareUpdateBody:
    software: str | None = None
    versions: tuple[VersionSpec, ...] | None = None


@attrs.frozen
class AgentSoftwareBody:
    software: str
    version: str


class VersionJson(TypedDict):
    """A version of a software, ranked (a higher rank is newer)."""

    id: int
    version: str
    rank: int


class SoftwareJson(TypedDict):
    id: int
    software: str
    versions: list[VersionJson]


class SoftwareRefJson(TypedDict):
    """A software version an agent has installed."""

    software: str
    version: str


def version_json(version: SoftwareVersion) -> VersionJson:
    return {"id": version.id, "version": version.version, "rank": version.rank}


def software_json(software: Software) -> SoftwareJson:
    return {
        "id": software.id,
        "software": software.name,
        "versions": [version_json(v) for v in software.versions],
    }


def software_ref_json(ref: SoftwareRef) -> SoftwareRefJson:
    return {"software": ref.software, "version": ref.version}
