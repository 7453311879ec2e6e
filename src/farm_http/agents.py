"""Resources of the agents API (``/api/v1/agents``): parse, call one service, render."""

from __future__ import annotations

import uuid

import falcon

from farm_domain.registry import AgentRegistry
from farm_http import schemas
from farm_http.peers import PeerResolver


class AgentSchemaResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = schemas.AGENT_SCHEMA


class AgentCollectionResource:
    def __init__(self, agents: AgentRegistry, peers: PeerResolver) -> None:
        self._agents = agents
        self._peers = peers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = schemas.agent_query(req.params)
        resp.media = [schemas.agent_summary_json(a) for a in self._agents.query(query)]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        changes = schemas.agent_changes(schemas.body_object(req))
        agent, created = self._agents.announce(changes, self._peers.client_address(req))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = schemas.agent_json(agent, self._agents.call_refusal(agent))


class AgentResource:
    def __init__(self, agents: AgentRegistry) -> None:
        self._agents = agents

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        agent = self._agents.get(agent_id)
        resp.media = schemas.agent_json(agent, self._agents.call_refusal(agent))

    def on_post(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        changes = schemas.agent_changes(schemas.body_object(req))
        agent = self._agents.update(agent_id, changes)
        resp.media = schemas.agent_json(agent, self._agents.call_refusal(agent))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        self._agents.delete(agent_id)
        resp.status = falcon.HTTP_204


class AgentTasksResource:
    def __init__(self, agents: AgentRegistry) -> None:
        self._agents = agents

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        resp.media = [schemas.task_json(t, job) for t, job in self._agents.tasks(agent_id)]

    def on_post(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        task_id = schemas.task_id_body(schemas.body_object(req))
        resp.media = schemas.task_json(self._agents.assign_task(agent_id, task_id))


class AgentTagsResource:
    """An agent's tags, set by operators; jobs' tag requirements match them."""

    def __init__(self, agents: AgentRegistry) -> None:
        self._agents = agents

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        resp.media = sorted(self._agents.tags(agent_id))

    def on_put(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        tags = schemas.tag_list(req.get_media())
        resp.media = sorted(self._agents.set_tags(agent_id, tags))
