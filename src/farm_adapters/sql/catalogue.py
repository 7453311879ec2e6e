"""The catalogue's repositories: software with its ranked versions, and job types."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, update

from farm_adapters.sql import tables as t
from farm_adapters.sql.rows import insert_ignoring_duplicates, requirements_of
from farm_domain.errors import AlreadyExists
from farm_domain.software import Software, SoftwareVersion
from farm_domain.work import JobTypeVersion


class SqlJobTypeRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(
        self, name: str, version: int = 1, spec: JobTypeVersion | None = None
    ) -> JobTypeVersion:
        description = spec.description if spec else None
        # A concurrent request may be creating the same job type: its row is waited for and
        # kept (PostgreSQL reads it once that request commits), not a unique violation.
        inserted = self._c.execute(
            insert_ignoring_duplicates(self._c, t.jobtypes)
            .values(name=name, description=description)
            .returning(t.jobtypes.c.id)
        ).scalar()
        jobtype_id: int = (
            inserted
            if inserted is not None
            else self._c.execute(
                select(t.jobtypes.c.id).where(t.jobtypes.c.name == name)
            ).scalar_one()
        )
        version_id = self._c.execute(
            insert_ignoring_duplicates(self._c, t.jobtype_versions)
            .values(
                jobtype_id=jobtype_id,
                version=version,
                classname=spec.classname if spec else None,
                code=spec.code if spec else None,
                max_batch=spec.max_batch if spec else None,
                batch_contiguous=spec.batch_contiguous if spec else True,
            )
            .returning(t.jobtype_versions.c.id)
        ).scalar()
        if version_id is None:
            raise AlreadyExists(f"JobType {name} version {version} already exists")
        if inserted is None and spec is not None:
            self._c.execute(
                update(t.jobtypes)
                .where(t.jobtypes.c.id == jobtype_id)
                .values(description=description)
            )
        if spec is not None and spec.software_requirements:
            self._c.execute(
                insert(t.jobtype_software_requirements),
                [
                    {
                        "jobtype_version_id": version_id,
                        "software_id": r.software_id,
                        "min_version_id": r.min_version_id,
                        "max_version_id": r.max_version_id,
                    }
                    for r in spec.software_requirements
                ],
            )
        found = self._select(t.jobtype_versions.c.id == version_id)
        return found[0]

    def _select(self, *conditions: ColumnElement[bool]) -> list[JobTypeVersion]:
        v, j = t.jobtype_versions.c, t.jobtypes.c
        rows = self._c.execute(
            select(t.jobtype_versions, j.name, j.description)
            .join(t.jobtypes, j.id == v.jobtype_id)
            .where(*conditions)
            .order_by(j.name, v.version)
        ).all()
        requirements = requirements_of(
            self._c, t.jobtype_software_requirements.c.jobtype_version_id, [row.id for row in rows]
        )
        return [
            JobTypeVersion(
                id=row.id,
                jobtype_id=row.jobtype_id,
                name=row.name,
                version=row.version,
                description=row.description,
                classname=row.classname,
                code=row.code,
                max_batch=row.max_batch,
                batch_contiguous=row.batch_contiguous,
                software_requirements=tuple(requirements.get(row.id, ())),
            )
            for row in rows
        ]

    def latest(self, name: str) -> JobTypeVersion | None:
        found = self.versions(name)
        return found[-1] if found else None

    def get_version(self, name: str, version: int) -> JobTypeVersion | None:
        found = self._select(t.jobtypes.c.name == name, t.jobtype_versions.c.version == version)
        return found[0] if found else None

    def name_of(self, jobtype_id: int) -> str | None:
        return self._c.execute(
            select(t.jobtypes.c.name).where(t.jobtypes.c.id == jobtype_id)
        ).scalar()

    def list_latest(self) -> list[JobTypeVersion]:
        v = t.jobtype_versions.c
        newest = (
            select(func.max(v.version))
            .where(v.jobtype_id == t.jobtypes.c.id)
            .correlate(t.jobtypes)
            .scalar_subquery()
        )
        return self._select(v.version == newest)

    def versions(self, name: str) -> list[JobTypeVersion]:
        return self._select(t.jobtypes.c.name == name)

    def in_use(self, name: str) -> bool:
        used = self._c.execute(
            select(t.jobs.c.id)
            .join(t.jobtype_versions, t.jobtype_versions.c.id == t.jobs.c.jobtype_version_id)
            .join(t.jobtypes, t.jobtypes.c.id == t.jobtype_versions.c.jobtype_id)
            .where(t.jobtypes.c.name == name)
            .limit(1)
        ).first()
        return used is not None

    def delete(self, name: str) -> None:
        self._c.execute(delete(t.jobtypes).where(t.jobtypes.c.name == name))


class SqlSoftwareRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def _with_versions(self, rows: list[tuple[int, str]]) -> list[Software]:
        if not rows:
            return []
        versions: dict[int, list[SoftwareVersion]] = {software_id: [] for software_id, _ in rows}
        for r in self._c.execute(
            select(t.software_versions)
            .where(t.software_versions.c.software_id.in_(list(versions)))
            .order_by(t.software_versions.c.rank, t.software_versions.c.id)
        ):
            versions[r.software_id].append(SoftwareVersion(r.id, r.software_id, r.version, r.rank))
        return [Software(i, name, tuple(versions[i])) for i, name in rows]

    def get_by_name(self, name: str) -> Software | None:
        rows = self._c.execute(
            select(t.software.c.id, t.software.c.software).where(t.software.c.software == name)
        ).all()
        found = self._with_versions([tuple(row) for row in rows])
        return found[0] if found else None

    def list_all(self) -> list[Software]:
        rows = self._c.execute(
            select(t.software.c.id, t.software.c.software).order_by(t.software.c.software)
        ).all()
        return self._with_versions([tuple(row) for row in rows])

    def add(self, name: str, versions: Sequence[tuple[str, int]]) -> Software:
        software_id = self._c.execute(
            insert_ignoring_duplicates(self._c, t.software)
            .values(software=name)
            .returning(t.software.c.id)
        ).scalar()
        if software_id is None:  # perhaps added by a concurrent request
            raise AlreadyExists(f"Software {name} already exists")
        if versions:
            self._c.execute(
                insert(t.software_versions),
                [{"software_id": software_id, "version": v, "rank": r} for v, r in versions],
            )
        found = self.get_by_name(name)
        assert found is not None
        return found

    def rename(self, software_id: int, name: str) -> None:
        self._c.execute(
            update(t.software).where(t.software.c.id == software_id).values(software=name)
        )

    def delete(self, software_id: int) -> None:
        self._c.execute(delete(t.software).where(t.software.c.id == software_id))

    def add_version(self, software_id: int, version: str, rank: int) -> SoftwareVersion:
        version_id = self._c.execute(
            insert_ignoring_duplicates(self._c, t.software_versions)
            .values(software_id=software_id, version=version, rank=rank)
            .returning(t.software_versions.c.id)
        ).scalar()
        if version_id is None:  # perhaps added by a concurrent request
            name = self._c.execute(
                select(t.software.c.software).where(t.software.c.id == software_id)
            ).scalar()
            raise AlreadyExists(f"Software {name} already has version {version}")
        return SoftwareVersion(version_id, software_id, version, rank)

    def set_rank(self, version_id: int, rank: int) -> None:
        self._c.execute(
            update(t.software_versions)
            .where(t.software_versions.c.id == version_id)
            .values(rank=rank)
        )

    def delete_version(self, version_id: int) -> None:
        self._c.execute(delete(t.software_versions).where(t.software_versions.c.id == version_id))
