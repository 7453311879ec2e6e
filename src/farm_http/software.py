"""Resources of the software catalogue (``/api/v1/software``) and agents' installed software."""

from __future__ import annotations

import uuid

import falcon

from farm_domain.catalogue import SoftwareCatalogue, VersionSpec
from farm_http.conversion import body_object, structure
from farm_http.identity import actor
from farm_http.schemas.software import (
    AgentSoftwareBody,
    SoftwareBody,
    SoftwareUpdateBody,
    software_json,
    software_ref_json,
    version_json,
)


class SoftwareCollectionResource:
    def __init__(self, catalogue: SoftwareCatalogue) -> None:
        self._catalogue = catalogue

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = [software_json(s) for s in self._catalogue.all_software(actor(req))]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = structure(body_object(req), SoftwareBody)
        created = self._catalogue.create(actor(req), body.software, body.versions)
        resp.status = falcon.HTTP_201
        resp.media = software_json(created)


class SoftwareResource:
    def __init__(self, catalogue: SoftwareCatalogue) -> None:
        self._catalogue = catalogue

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = software_json(self._catalogue.get(actor(req), name))

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        body = structure(body_object(req), SoftwareUpdateBody)
        resp.media = software_json(
            self._catalogue.update(actor(req), name, body.software, body.versions)
        )

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._catalogue.delete(actor(req), name)
        resp.status = falcon.HTTP_204


class SoftwareVersionsResource:
    def __init__(self, catalogue: SoftwareCatalogue) -> None:
        self._catalogue = catalogue

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = [version_json(v) for v in self._catalogue.get(actor(req), name).versions]

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        spec = structure(body_object(req), VersionSpec)
        created = self._catalogue.add_version(actor(req), name, spec)
        resp.status = falcon.HTTP_201
        resp.media = version_json(created)


class SoftwareVersionResource:
    def __init__(self, catalogue: SoftwareCatalogue) -> None:
        self._catalogue = catalogue

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str, version: str) -> None:
        resp.media = version_json(self._catalogue.get_version(actor(req), name, version))

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, name: str, version: str
    ) -> None:
        self._catalogue.delete_version(actor(req), name, version)
        resp.status = falcon.HTTP_204


class AgentSoftwareResource:
    def __init__(self, catalogue: SoftwareCatalogue) -> None:
        self._catalogue = catalogue

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        resp.media = [software_ref_json(s) for s in self._catalogue.of_agent(actor(req), agent_id)]

    def on_post(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        body = structure(body_object(req), AgentSoftwareBody)
        installed = self._catalogue.install(actor(req), agent_id, body.software, body.version)
        resp.status = falcon.HTTP_201
        resp.media = [software_ref_json(s) for s in installed]


class AgentSoftwareVersionResource:
    def __init__(self, catalogue: SoftwareCatalogue) -> None:
        self._catalogue = catalogue

    def on_delete(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        agent_id: uuid.UUID,
        name: str,
        version: str,
    ) -> None:
        self._catalogue.uninstall(actor(req), agent_id, name, version)
        resp.status = falcon.HTTP_204
