"""Representations of job types and of the software requirements jobs and job types share."""

from __future__ import annotations

from typing import Any

from farm_domain.work import JobTypeVersion, SoftwareRequirement


def requirement_json(requirement: SoftwareRequirement) -> dict[str, Any]:
    return {
        "software": requirement.software,
        "min_version": requirement.min_version,
        "max_version": requirement.max_version,
    }


def jobtype_json(jobtype: JobTypeVersion) -> dict[str, Any]:
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
