"""The catalogue's fake repositories: job types and software."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from farm_domain.errors import AlreadyExists
from farm_domain.software import Software, SoftwareVersion
from farm_domain.work import JobTypeVersion, SoftwareRequirement
from tests.support.fakes.store import FakeData, FakeStore


class FakeJobTypeRepository:
    def __init__(self, data: FakeData, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def add(
        self, name: str, version: int = 1, spec: JobTypeVersion | None = None
    ) -> JobTypeVersion:
        jobtype_id = self._d.jobtypes.setdefault(name, self._store.next_id())
        if any(
            v.jobtype_id == jobtype_id and v.version == version
            for v in self._d.jobtype_versions.values()
        ):
            raise AlreadyExists(f"JobType {name} version {version} already exists")
        fields = {} if spec is None else attrs.asdict(spec, recurse=False)
        fields.update(id=self._store.next_id(), jobtype_id=jobtype_id, name=name, version=version)
        created = JobTypeVersion(**fields)
        self._d.jobtype_versions[created.id] = created
        if spec is not None:  # the description belongs to the job type, shared by versions
            for other in list(self._d.jobtype_versions.values()):
                if other.jobtype_id == jobtype_id:
                    self._d.jobtype_versions[other.id] = attrs.evolve(
                        other, description=spec.description
                    )
        return self._d.jobtype_versions[created.id]

    def _live(self, version: JobTypeVersion) -> JobTypeVersion:
        return attrs.evolve(
            version, software_requirements=self.live_requirements(version.software_requirements)
        )

    def live_requirements(
        self, requirements: Iterable[SoftwareRequirement]
    ) -> tuple[SoftwareRequirement, ...]:
        """Requirements as the catalogue stands now (renames show, deleted bounds fall away)."""
        live = []
        for requirement in requirements:
            software = next(
                (s for s in self._d.software.values() if s.id == requirement.software_id), None
            )
            if software is None:
                continue
            # Keyed by int | None so an unbounded requirement (None) looks up None.
            ids: dict[int | None, str] = {v.id: v.version for v in software.versions}
            live.append(
                attrs.evolve(
                    requirement,
                    software=software.name,
                    min_version_id=requirement.min_version_id
                    if requirement.min_version_id in ids
                    else None,
                    min_version=ids.get(requirement.min_version_id),
                    max_version_id=requirement.max_version_id
                    if requirement.max_version_id in ids
                    else None,
                    max_version=ids.get(requirement.max_version_id),
                )
            )
        return tuple(sorted(live, key=lambda r: r.software))

    def versions(self, name: str) -> list[JobTypeVersion]:
        return sorted(
            (self._live(v) for v in self._d.jobtype_versions.values() if v.name == name),
            key=lambda v: v.version,
        )

    def latest(self, name: str) -> JobTypeVersion | None:
        found = self.versions(name)
        return found[-1] if found else None

    def get_version(self, name: str, version: int) -> JobTypeVersion | None:
        return next((v for v in self.versions(name) if v.version == version), None)

    def name_of(self, jobtype_id: int) -> str | None:
        return next((n for n, i in self._d.jobtypes.items() if i == jobtype_id), None)

    def list_latest(self) -> list[JobTypeVersion]:
        latest = (self.latest(name) for name in sorted(self._d.jobtypes))
        return [version for version in latest if version is not None]

    def in_use(self, name: str) -> bool:
        ids = {v.id for v in self._d.jobtype_versions.values() if v.name == name}
        return any(job.jobtype_version_id in ids for job in self._d.jobs.values())

    def delete(self, name: str) -> None:
        self._d.jobtypes.pop(name, None)
        for version_id, version in list(self._d.jobtype_versions.items()):
            if version.name == name:
                del self._d.jobtype_versions[version_id]


class FakeSoftwareRepository:
    def __init__(self, data: FakeData, store: FakeStore) -> None:
        self._d = data
        self._store = store

    def get_by_name(self, name: str) -> Software | None:
        return self._d.software.get(name)

    def list_all(self) -> list[Software]:
        return [self._d.software[name] for name in sorted(self._d.software)]

    def _by_id(self, software_id: int) -> Software:
        return next(s for s in self._d.software.values() if s.id == software_id)

    def _put(self, software: Software) -> None:
        versions = tuple(sorted(software.versions, key=lambda v: (v.rank, v.id)))
        self._d.software[software.name] = attrs.evolve(software, versions=versions)

    def add(self, name: str, versions: Sequence[tuple[str, int]]) -> Software:
        if name in self._d.software:
            raise AlreadyExists(f"Software {name} already exists")
        software_id = self._store.next_id()
        self._put(
            Software(
                software_id,
                name,
                tuple(
                    SoftwareVersion(self._store.next_id(), software_id, v, r) for v, r in versions
                ),
            )
        )
        return self._d.software[name]

    def rename(self, software_id: int, name: str) -> None:
        software = self._by_id(software_id)
        del self._d.software[software.name]
        self._put(attrs.evolve(software, name=name))

    def delete(self, software_id: int) -> None:
        software = self._by_id(software_id)
        for version in software.versions:
            self.delete_version(version.id)
        del self._d.software[software.name]

    def add_version(self, software_id: int, version: str, rank: int) -> SoftwareVersion:
        software = self._by_id(software_id)
        if any(v.version == version for v in software.versions):
            raise AlreadyExists(f"Software {software.name} already has version {version}")
        created = SoftwareVersion(self._store.next_id(), software_id, version, rank)
        self._put(attrs.evolve(software, versions=(*software.versions, created)))
        return created

    def set_rank(self, version_id: int, rank: int) -> None:
        for software in list(self._d.software.values()):
            if any(v.id == version_id for v in software.versions):
                self._put(
                    attrs.evolve(
                        software,
                        versions=tuple(
                            attrs.evolve(v, rank=rank) if v.id == version_id else v
                            for v in software.versions
                        ),
                    )
                )

    def delete_version(self, version_id: int) -> None:
        for software in list(self._d.software.values()):
            self._put(
                attrs.evolve(
                    software, versions=tuple(v for v in software.versions if v.id != version_id)
                )
            )
        for installed in self._d.agent_software.values():
            installed.discard(version_id)
