"""Resources of job types (``/api/v1/jobtypes``)."""

from __future__ import annotations

import falcon

from farm_domain.jobtypes import JobTypeCatalogue, JobTypeSpec
from farm_http.conversion import body_object, structure
from farm_http.identity import actor
from farm_http.schemas.jobtypes import jobtype_json


def _spec(req: falcon.Request) -> JobTypeSpec:
    return structure(body_object(req), JobTypeSpec)


class JobTypeCollectionResource:
    def __init__(self, jobtypes: JobTypeCatalogue) -> None:
        self._jobtypes = jobtypes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = [jobtype_json(j) for j in self._jobtypes.latest_versions(actor(req))]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = jobtype_json(self._jobtypes.create(actor(req), _spec(req)))
        resp.status = falcon.HTTP_201


class JobTypeResource:
    def __init__(self, jobtypes: JobTypeCatalogue) -> None:
        self._jobtypes = jobtypes

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = jobtype_json(self._jobtypes.get(actor(req), name))

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        version, created = self._jobtypes.new_version(actor(req), name, _spec(req))
        resp.media = jobtype_json(version)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._jobtypes.delete(actor(req), name)
        resp.status = falcon.HTTP_204


class JobTypeVersionsResource:
    def __init__(self, jobtypes: JobTypeCatalogue) -> None:
        self._jobtypes = jobtypes

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = [jobtype_json(j) for j in self._jobtypes.versions(actor(req), name)]


class JobTypeVersionResource:
    def __init__(self, jobtypes: JobTypeCatalogue) -> None:
        self._jobtypes = jobtypes

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str, version: int) -> None:
        resp.media = jobtype_json(self._jobtypes.get_version(actor(req), name, version))
