"""The software catalogue: software, their ranked versions, and what each agent has installed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import attrs

from farm_domain.agents import Agent, SoftwareRef
from farm_domain.errors import Conflict, NotFound, ValidationError
from farm_domain.ports import UnitOfWork, UnitOfWorkFactory
from farm_domain.software import Software, SoftwareVersion
from farm_domain.validation import INT32_MAX

RANK_STEP = 100


@attrs.frozen
class VersionSpec:
    """A version as a client names it; without a rank it is ranked after the others."""

    version: str
    rank: int | None = None


def ranked(specs: Sequence[VersionSpec], above: int | None = None) -> list[tuple[str, int]]:
    """Versions with their ranks: given ranks are kept; the others follow, in the order listed,
    in steps of 100 above the highest rank given (or ``above``, the highest already stored)."""
    given = [spec.rank for spec in specs if spec.rank is not None]
    highest = max([*given, *([above] if above is not None else [])], default=0)
    result = []
    for spec in specs:
        if spec.rank is None:
            highest += RANK_STEP
            result.append((spec.version, highest))
        else:
            result.append((spec.version, spec.rank))
    return result


def _name(value: str, what: str) -> str:
    if not 1 <= len(value) <= 64 or not value.isprintable() or "/" in value:
        raise ValidationError(
            f"{value!r} is not a valid {what}: 1 to 64 printable characters, no '/'", field=what
        )
    return value


def _check_versions(specs: Sequence[VersionSpec]) -> None:
    seen_versions: set[str] = set()
    seen_ranks: set[int] = set()
    for spec in specs:
        _name(spec.version, "version")
        if spec.version in seen_versions:
            raise ValidationError(f"version {spec.version} is listed twice", field="versions")
        seen_versions.add(spec.version)
        if spec.rank is not None:
            if not -INT32_MAX <= spec.rank <= INT32_MAX - 100 * len(specs):
                raise ValidationError(f"rank {spec.rank} is out of range", field="versions")
            if spec.rank in seen_ranks:
                raise ValidationError(f"rank {spec.rank} is used twice", field="versions")
            seen_ranks.add(spec.rank)


class SoftwareCatalogue:
    """Software and versions that agents have and job types need."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def create(self, name: str, versions: Sequence[VersionSpec] = ()) -> Software:
        """Raises ValidationError and Conflict (the name exists)."""
        _name(name, "software")
        _check_versions(versions)
        with self._uow() as uow:
            if uow.software.get_by_name(name) is not None:
                raise Conflict(f"Software {name} already exists")
            created = uow.software.add(name, ranked(versions))
            uow.commit()
        return created

    def all_software(self) -> list[Software]:
        """Every software by name, each with its versions by rank."""
        with self._uow(read_only=True) as uow:
            return uow.software.list_all()

    def get(self, name: str) -> Software:
        """Raises NotFound."""
        with self._uow(read_only=True) as uow:
            return self._software(uow, name)

    def update(
        self, name: str, new_name: str | None = None, versions: Sequence[VersionSpec] | None = None
    ) -> Software:
        """Rename, and/or make the version list exactly ``versions`` (a version kept keeps its
        agents). Raises NotFound, ValidationError, Conflict (the new name is taken)."""
        if new_name is not None:
            _name(new_name, "software")
        if versions is not None:
            _check_versions(versions)
        with self._uow() as uow:
            software = self._software(uow, name)
            if new_name is not None and new_name != name:
                if uow.software.get_by_name(new_name) is not None:
                    raise Conflict(f"Software {new_name} already exists")
                uow.software.rename(software.id, new_name)
            if versions is not None:
                existing = {v.version: v for v in software.versions}
                wanted = dict(ranked(versions))
                for current in existing.values():
                    if current.version not in wanted:
                        uow.software.delete_version(current.id)
                for version, rank in wanted.items():
                    if version in existing:
                        uow.software.set_rank(existing[version].id, rank)
                    else:
                        uow.software.add_version(software.id, version, rank)
            updated = self._software(uow, new_name or name)
            uow.commit()
        return updated

    def delete(self, name: str) -> bool:
        with self._uow() as uow:
            software = uow.software.get_by_name(name)
            if software is None:
                return False
            uow.software.delete(software.id)
            uow.commit()
        return True

    def add_version(self, name: str, spec: VersionSpec) -> SoftwareVersion:
        """Raises NotFound, ValidationError, Conflict (the version exists)."""
        _check_versions([spec])
        with self._uow() as uow:
            software = self._software(uow, name)
            if any(v.version == spec.version for v in software.versions):
                raise Conflict(f"Software {name} already has version {spec.version}")
            ((_, rank),) = ranked(
                [spec], above=max((v.rank for v in software.versions), default=None)
            )
            created = uow.software.add_version(software.id, spec.version, rank)
            uow.commit()
        return created

    def get_version(self, name: str, version: str) -> SoftwareVersion:
        """Raises NotFound."""
        with self._uow(read_only=True) as uow:
            return self._version(self._software(uow, name), version)

    def delete_version(self, name: str, version: str) -> bool:
        with self._uow() as uow:
            software = uow.software.get_by_name(name)
            found = (
                None
                if software is None
                else next((v for v in software.versions if v.version == version), None)
            )
            if found is None:
                return False
            uow.software.delete_version(found.id)
            uow.commit()
        return True

    # -- what agents have installed ---------------------------------------------------------

    def of_agent(self, agent_id: uuid.UUID) -> tuple[SoftwareRef, ...]:
        """Raises NotFound."""
        with self._uow(read_only=True) as uow:
            return self._agent(uow, agent_id).software

    def install(self, agent_id: uuid.UUID, name: str, version: str) -> tuple[SoftwareRef, ...]:
        """Record that the agent has this version. Raises NotFound."""
        with self._uow() as uow:
            self._agent(uow, agent_id)
            found = self._version(self._software(uow, name), version)
            uow.agents.attach_software(agent_id, [found.id])
            installed = self._agent(uow, agent_id).software
            uow.commit()
        return installed

    def uninstall(self, agent_id: uuid.UUID, name: str, version: str) -> None:
        """Raises NotFound for an unknown agent, software or version."""
        with self._uow() as uow:
            self._agent(uow, agent_id)
            found = self._version(self._software(uow, name), version)
            uow.agents.detach_software(agent_id, found.id)
            uow.commit()

    @staticmethod
    def _software(uow: UnitOfWork, name: str) -> Software:
        software = uow.software.get_by_name(name)
        if software is None:
            raise NotFound(f"Software {name} not found")
        return software

    @staticmethod
    def _version(software: Software, version: str) -> SoftwareVersion:
        found = next((v for v in software.versions if v.version == version), None)
        if found is None:
            raise NotFound(f"Software {software.name} version {version} not found")
        return found

    @staticmethod
    def _agent(uow: UnitOfWork, agent_id: uuid.UUID) -> Agent:
        agent = uow.agents.get(agent_id)
        if agent is None:
            raise NotFound(f"Agent {agent_id} not found")
        return agent
