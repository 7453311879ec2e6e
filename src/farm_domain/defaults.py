"""The software versions every new agent is given by default."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from farm_domain.errors import MisconfiguredDefaults
from farm_domain.ports import SoftwareRepository


@attrs.frozen
class DefaultSoftware:
    software: str
    version: str


class SoftwareDefaults:
    """The configured ``{"software", "version"}`` pairs attached to every new agent."""

    def __init__(self, defaults: Sequence[DefaultSoftware] = ()) -> None:
        self.defaults = tuple(defaults)

    @classmethod
    def from_config(cls, value: object) -> SoftwareDefaults:
        """Build from decoded configuration; ValueError with a clear message when malformed."""
        if not isinstance(value, list):
            # ValueError, not TypeError: the settings report every ValueError as bad configuration.
            raise ValueError(  # noqa: TRY004
                'must be a JSON list of {"software": ..., "version": ...} objects'
            )
        defaults = []
        for position, item in enumerate(value):
            if (
                not isinstance(item, dict)
                or set(item) != {"software", "version"}
                or not all(isinstance(item[key], str) and item[key] for key in item)
            ):
                raise ValueError(
                    f'item {position} must be {{"software": "<name>", "version": "<version>"}} '
                    f"with non-empty strings, not {item!r}"
                )
            defaults.append(DefaultSoftware(item["software"], item["version"]))
        return cls(defaults)

    def resolve(self, software: SoftwareRepository) -> list[int]:
        """The ids of the default versions.

        Raises MisconfiguredDefaults when a named software or version is missing.
        """
        version_ids = []
        for item in self.defaults:
            found = software.get_by_name(item.software)
            if found is None:
                raise MisconfiguredDefaults(f"Default agent software '{item.software}' not found")
            version = next((v for v in found.versions if v.version == item.version), None)
            if version is None:
                raise MisconfiguredDefaults(
                    f"Default agent software '{item.software}' version {item.version} not found"
                )
            version_ids.append(version.id)
        return version_ids
