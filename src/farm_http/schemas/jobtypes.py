"""Representations of job types and of the software requirements jobs and job types share."""

from __future__ import annotations

from typing import TypedDict

from farm_domain.work import JobTypeVersion, SoftwareRequirement


class RequirementJson(TypedDict):
    """Software a job or job type needs, optionally between two versions (inclusive)."""

    software: str
    min_version: str | None
    max_version: str | None


class JobTypeJson(TypedDict):
    id: int
    name: str
    version: int
    description: str | None
    classname: str | None
    code: str | None
    max_batch: int | None
    batch_contiguous: bool
    software_requirements: list[RequirementJson]


def requirement_json(requirement: SoftwareRequirement) -> RequirementJson:
    return {
        "software": requirement.software,
        "min_version": requirement.min_version,
        "max_version": requirement.max_version,
    }


def jobtype_json(jobtype: JobTypeVersion) -> JobTypeJson:
    """What a PyFarm agent downloads: GET /jobtypes/<name>/versions/<n>."""
    return {
        "id": jobtype.jobtype_id,
        "name": jobtype.name,
        "version": jobtype.version,
        "description": jobtype.description,
        "classname": jobtype.classname,
        "code": jobtype.code,
        "max_batch": jobtype.max_batch,
        "batch_contiguous": jobtype.batch_contiguous,
        "software_requirements": [requirement_json(r) for r in jobtype.software_requirements],
    }
