"""Bodies and representations of the software catalogue and of agents' installed software."""

from __future__ import annotations

from typing import Any

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


def version_json(version: SoftwareVersion) -> dict[str, Any]:
    return {"id": version.id, "version": version.version, "rank": version.rank}


def software_json(software: Software) -> dict[str, Any]:
    return {
        "id": software.id,
        "software": software.name,
        "versions": [version_json(v) for v in software.versions],
    }


def software_ref_json(ref: SoftwareRef) -> dict[str, Any]:
    return {"software": ref.software, "version": ref.version}
