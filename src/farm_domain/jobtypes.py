"""Job types: versioned code that agents run for a job's tasks, with software requirements."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from farm_domain import validation
from farm_domain.access import AccessPolicy, Identity, Permission
from farm_domain.audit import record
from farm_domain.errors import AlreadyExists, Conflict, NotFound, ValidationError
from farm_domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from farm_domain.validation import parse_id
from farm_domain.work import JobTypeVersion, SoftwareRequirement

_NEXT_VERSION_TRIES = 10
"""Concurrent PUTs of one job type each take the next number; one that loses the race this
often answers Conflict rather than trying for ever."""


@attrs.frozen
class RequirementSpec:
    """A software requirement as a client names it."""

    software: str
    min_version: str | None = None
    max_version: str | None = None


@attrs.frozen
class JobTypeSpec:
    """What a client sends to create a job type or its next version."""

    name: str
    description: str | None = None
    classname: str | None = None
    code: str | None = None
    max_batch: int | None = None
    batch_contiguous: bool = True
    software_requirements: tuple[RequirementSpec, ...] = ()


def resolve_requirements(
    uow: UnitOfWork, specs: Sequence[RequirementSpec]
) -> tuple[SoftwareRequirement, ...]:
    """Requirements resolved against the catalogue. Raises NotFound and ValidationError
    (a software listed twice, or a minimum ranked above the maximum)."""
    resolved = []
    seen = set()
    for spec in specs:
        if spec.software in seen:
            raise ValidationError(
                f"software {spec.software} is required twice", field="software_requirements"
            )
        seen.add(spec.software)
        software = uow.software.get_by_name(spec.software)
        if software is None:
            raise NotFound(f"Software {spec.software} not found")
        by_name = {v.version: v for v in software.versions}
        bounds = []
        for bound in (spec.min_version, spec.max_version):
            if bound is not None and bound not in by_name:
                raise NotFound(f"Software {spec.software} version {bound} not found")
            bounds.append(None if bound is None else by_name[bound])
        low, high = bounds
        if low is not None and high is not None and low.rank > high.rank:
            raise ValidationError(
                f"software {spec.software}: min_version {low.version} is newer than "
                f"max_version {high.version}",
                field="software_requirements",
            )
        resolved.append(
            SoftwareRequirement(
                software.id,
                software.name,
                low.id if low else None,
                low.version if low else None,
                high.id if high else None,
                high.version if high else None,
            )
        )
    return tuple(resolved)


def _check(spec: JobTypeSpec) -> None:
    if (
        not 1 <= len(spec.name) <= 64
        or not spec.name.isprintable()
        or "/" in spec.name
        or spec.name.isdigit()
    ):
        raise ValidationError(
            f"{spec.name!r} is not a valid job type name: 1 to 64 printable characters, no '/', "
            "not only digits",
            field="name",
        )
    if spec.classname is not None and len(spec.classname) > 64:
        raise ValidationError("`classname` must be at most 64 characters long", field="classname")
    for field in ("description", "classname", "code"):
        validation.without_nul(field, getattr(spec, field))
    if spec.max_batch is not None and not 1 <= spec.max_batch <= 100000:
        raise ValidationError("`max_batch` must be between 1 and 100000", field="max_batch")


class JobTypeCatalogue:
    """Job types and their versions. A name made only of digits is taken as a job type id.

    A job type's ``code`` is code that PyFarm agents execute: only admins change job types."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, *, policy: AccessPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    def _record(self, uow: UnitOfWork, actor: Identity, version: JobTypeVersion) -> None:
        record(
            uow,
            actor,
            self._clock.now(),
            "jobtype.create" if version.version == 1 else "jobtype.version",
            f"jobtype:{version.name}",
            after={
                "version": version.version,
                "classname": version.classname,
                "max_batch": version.max_batch,
                "code_length": len(version.code or ""),
                "software_requirements": [r.software for r in version.software_requirements],
            },
        )

    def create(self, actor: Identity, spec: JobTypeSpec) -> JobTypeVersion:
        """Version 1 of a new job type. Raises Forbidden, ValidationError, NotFound
        (software), Conflict."""
        self._policy.require(actor, Permission.ADMINISTER)
        _check(spec)
        with self._uow() as uow:
            exists = Conflict(f"JobType {spec.name} already exists")
            if uow.jobtypes.latest(spec.name) is not None:
                raise exists
            try:
                created = self._add(uow, spec, 1)
            except AlreadyExists:  # created by a concurrent request
                raise exists from None
            self._record(uow, actor, created)
            uow.commit()
        return created

    def new_version(
        self, actor: Identity, name: str, spec: JobTypeSpec
    ) -> tuple[JobTypeVersion, bool]:
        """The next version of ``name`` (version 1 when it is new); returns (version, created).

        Raises Forbidden, ValidationError (including a body renaming the job type), NotFound
        (software), Conflict (lost the race for the next number too often).
        """
        self._policy.require(actor, Permission.ADMINISTER)
        if spec.name != name:
            raise ValidationError("`name` in the request body does not match the URL", field="name")
        _check(spec)
        with self._uow() as uow:
            for _ in range(_NEXT_VERSION_TRIES):
                latest = uow.jobtypes.latest(name)
                try:
                    created = self._add(uow, spec, 1 if latest is None else latest.version + 1)
                    break
                except AlreadyExists:  # a concurrent request took that number: take the next
                    continue
            else:
                raise Conflict(f"JobType {name} is being changed by many requests; retry")
            self._record(uow, actor, created)
            uow.commit()
        return created, latest is None

    def latest_versions(self, actor: Identity) -> list[JobTypeVersion]:
        """The newest version of every job type, by name. Raises Forbidden."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            return uow.jobtypes.list_latest()

    def get(self, actor: Identity, name_or_id: str) -> JobTypeVersion:
        """The newest version. Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            found = uow.jobtypes.latest(self._name(uow, name_or_id))
        if found is None:
            raise NotFound(f"JobType {name_or_id} not found")
        return found

    def versions(self, actor: Identity, name_or_id: str) -> list[JobTypeVersion]:
        """Raises Forbidden, NotFound."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            found = uow.jobtypes.versions(self._name(uow, name_or_id))
        if not found:
            raise NotFound(f"JobType {name_or_id} not found")
        return found

    def get_version(self, actor: Identity, name_or_id: str, version: int) -> JobTypeVersion:
        """Raises Forbidden, NotFound with PyFarm's message."""
        self._policy.require(actor, Permission.READ)
        with self._uow(read_only=True) as uow:
            found = uow.jobtypes.get_version(self._name(uow, name_or_id), version)
        if found is None:
            raise NotFound(f"JobType {name_or_id} version {version} not found")
        return found

    def delete(self, actor: Identity, name_or_id: str) -> bool:
        """Returns whether it existed. Raises Forbidden, Conflict while jobs use the job
        type."""
        self._policy.require(actor, Permission.ADMINISTER)
        with self._uow() as uow:
            name = self._name(uow, name_or_id)
            if uow.jobtypes.latest(name) is None:
                return False
            if uow.jobtypes.in_use(name):
                raise Conflict(f"JobType {name} is used by jobs; delete them first")
            uow.jobtypes.delete(name)
            record(uow, actor, self._clock.now(), "jobtype.delete", f"jobtype:{name}")
            uow.commit()
        return True

    @staticmethod
    def _name(uow: UnitOfWork, name_or_id: str) -> str:
        jobtype_id = parse_id(name_or_id)
        if jobtype_id is not None:
            return uow.jobtypes.name_of(jobtype_id) or name_or_id
        return name_or_id

    @staticmethod
    def _add(uow: UnitOfWork, spec: JobTypeSpec, version: int) -> JobTypeVersion:
        requirements = resolve_requirements(uow, spec.software_requirements)
        return uow.jobtypes.add(
            spec.name,
            version,
            JobTypeVersion(
                id=0,
                jobtype_id=0,
                name=spec.name,
                version=version,
                description=spec.description,
                classname=spec.classname,
                code=spec.code,
                max_batch=spec.max_batch,
                batch_contiguous=spec.batch_contiguous,
                software_requirements=requirements,
            ),
        )
