"""The software catalogue: software, their ranked versions, and what each agent has installed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import attrs

from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.agents import Agent, SoftwareRef
from farm_domain.audit import agent_target, record
from farm_domain.errors import Conflict, NotFound, ValidationError
from farm_domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from farm_domain.software import Software, SoftwareVersion
from farm_domain.validation import INT32_MAX, at_most

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


MAX_VERSIONS = 1_000
"""Versions listed in one request."""


def _check_versions(specs: Sequence[VersionSpec]) -> None:
    seen_versions: set[str] = set()
    seen_ranks: set[int] = set()
    at_most("versions", specs, MAX_VERSIONS)
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
    """Software and versions that agents have and job types need. Changing the catalogue is
    an admin's; what an agent has installed, the agent's or a wrangler's."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, *, policy: AccessPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    def _record(
        self, uow: UnitOfWork, actor: Identity, action: str, name: str, **fields: object
    ) -> None:
        record(uow, actor, self._clock.now(), action, f"software:{name}", after=fields or None)

    def create(self, actor: Identity, name: str, versions: Sequence[VersionSpec] = ()) -> Software:
        """Raises Forbidden, ValidationError and Conflict (the name exists)."""
        self._policy.require(actor, Permission.ADMINISTER)
        _name(name, "software")
        _check_versions(versions)
        with self._uow() as uow:
            if uow.software.get_by_name(name) is not None:
                raise Conflict(f"Software {name} already exists")
            created = uow.software.add(name, ranked(versions))
            self._record(
                uow, actor, "software.create", name, versions=[v.version for v in created.versions]
            )
            uow.commit()
        return created

    def all_software(self, actor: Identity) -> list[Software]:
        """Every software by name, each with its versions by rank. Raises Forbidden."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return uow.software.list_all()

    def get(self, actor: Identity, name: str) -> Software:
        """Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return self._software(uow, name)

    def update(
        self,
        actor: Identity,
        name: str,
        new_name: str | None = None,
        versions: Sequence[VersionSpec] | None = None,
    ) -> Software:
        """Rename, and/or make the version list exactly ``versions`` (a version kept keeps its
        agents). Raises Forbidden, NotFound, ValidationError, Conflict (the new name is
        taken)."""
        self._policy.require(actor, Permission.ADMINISTER)
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
            before = {
                "name": software.name,
                "versions": [(v.version, v.rank) for v in software.versions],
            }
            after = {
                "name": updated.name,
                "versions": [(v.version, v.rank) for v in updated.versions],
            }
            if before != after:
                record(
                    uow,
                    actor,
                    self._clock.now(),
                    "software.update",
                    f"software:{name}",
                    before,
                    after,
                )
            uow.commit()
        return updated

    def delete(self, actor: Identity, name: str) -> bool:
        """Returns whether it existed. Raises Forbidden."""
        self._policy.require(actor, Permission.ADMINISTER)
        with self._uow() as uow:
            software = uow.software.get_by_name(name)
            if software is None:
                return False
            uow.software.delete(software.id)
            record(
                uow,
                actor,
                self._clock.now(),
                "software.delete",
                f"software:{name}",
                before={"versions": [v.version for v in software.versions]},
            )
            uow.commit()
        return True

    def add_version(self, actor: Identity, name: str, spec: VersionSpec) -> SoftwareVersion:
        """Raises Forbidden, NotFound, ValidationError, Conflict (the version exists)."""
        self._policy.require(actor, Permission.ADMINISTER)
        _check_versions([spec])
        with self._uow() as uow:
            software = self._software(uow, name)
            if any(v.version == spec.version for v in software.versions):
                raise Conflict(f"Software {name} already has version {spec.version}")
            ((_, rank),) = ranked(
                [spec], above=max((v.rank for v in software.versions), default=None)
            )
            created = uow.software.add_version(software.id, spec.version, rank)
            self._record(uow, actor, "software.version.add", name, version=spec.version, rank=rank)
            uow.commit()
        return created

    def get_version(self, actor: Identity, name: str, version: str) -> SoftwareVersion:
        """Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return self._version(self._software(uow, name), version)

    def delete_version(self, actor: Identity, name: str, version: str) -> bool:
        """Returns whether it existed. Raises Forbidden."""
        self._policy.require(actor, Permission.ADMINISTER)
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
            self._record(uow, actor, "software.version.delete", name, version=version)
            uow.commit()
        return True

    # -- what agents have installed ---------------------------------------------------------

    def of_agent(self, actor: Identity, agent_id: uuid.UUID) -> tuple[SoftwareRef, ...]:
        """Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return self._agent(uow, agent_id).software

    def install(
        self, actor: Identity, agent_id: uuid.UUID, name: str, version: str
    ) -> tuple[SoftwareRef, ...]:
        """Record that the agent has this version (the agent itself or a wrangler). Raises
        Forbidden, NotFound."""
        self._policy.require_agent_or(actor, agent_id, Permission.MANAGE_AGENTS)
        with self._uow() as uow:
            had = self._agent(uow, agent_id).software
            found = self._version(self._software(uow, name), version)
            uow.agents.attach_software(agent_id, [found.id])
            installed = self._agent(uow, agent_id).software
            if installed != had:
                self._record_software(uow, actor, agent_id, "agent.software.install", name, version)
            uow.commit()
        return installed

    def uninstall(self, actor: Identity, agent_id: uuid.UUID, name: str, version: str) -> None:
        """The agent itself or a wrangler. Raises Forbidden, and NotFound for an unknown
        agent, software or version."""
        self._policy.require_agent_or(actor, agent_id, Permission.MANAGE_AGENTS)
        with self._uow() as uow:
            had = self._agent(uow, agent_id).software
            found = self._version(self._software(uow, name), version)
            uow.agents.detach_software(agent_id, found.id)
            if SoftwareRef(name, version) in had:
                self._record_software(
                    uow, actor, agent_id, "agent.software.uninstall", name, version
                )
            uow.commit()

    def _record_software(
        self,
        uow: UnitOfWork,
        actor: Identity,
        agent_id: uuid.UUID,
        action: str,
        name: str,
        version: str,
    ) -> None:
        record(
            uow,
            actor,
            self._clock.now(),
            action,
            agent_target(agent_id),
            after={"software": name, "version": version},
        )

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
