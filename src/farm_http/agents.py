"""Resources of the agents API (``/api/v1/agents``): parse, call one service, render."""

from __future__ import annotations

import uuid

import falcon

from farm_domain.registry import AgentRegistry
from farm_http.conversion import body_object
from farm_http.identity import actor
from farm_http.peers import PeerResolver
from farm_http.schemas.agents import (
    AGENT_SCHEMA,
    agent_changes,
    agent_json,
    agent_query,
    agent_summary_json,
    tag_list,
    task_id_body,
)
from farm_http.schemas.jobs import task_json


class AgentSchemaResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = AGENT_SCHEMA


class AgentCollectionResource:
    def __init__(self, agents: AgentRegistry, peers: PeerResolver) -> None:
        self._agents = agents
        self._peers = peers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = agent_query(req.params)
        resp.media = [agent_summary_json(a) for a in self._agents.query(actor(req), query)]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        changes = agent_changes(body_object(req))
        announced = self._agents.join(actor(req), changes, self._peers.client_address(req))
        agent = announced.agent
        resp.status = falcon.HTTP_201 if announced.created else falcon.HTTP_200
        resp.media = agent_json(agent, self._agents.call_refusal(agent))
        # For the announcer alone: the key it verifies the master's calls with and, once, the
        # credential a join token enrolled it with.
        resp.media["signing_key"] = announced.signing_key
        if announced.credential is not None:
            resp.media["credential"] = announced.credential


class AgentResource:
    def __init__(self, agents: AgentRegistry) -> None:
        self._agents = agents

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        agent = self._agents.get(actor(req), agent_id)
        resp.media = agent_json(agent, self._agents.call_refusal(agent))

    def on_post(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        changes = agent_changes(body_object(req))
        agent = self._agents.update(actor(req), agent_id, changes)
        resp.media = agent_json(agent, self._agents.call_refusal(agent))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        self._agents.delete(actor(req), agent_id)
        resp.status = falcon.HTTP_204


class AgentTasksResource:
    def __init__(self, agents: AgentRegistry) -> None:
        self._agents = agents

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        resp.media = [task_json(t, job) for t, job in self._agents.tasks(actor(req), agent_id)]

    def on_post(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        task_id = task_id_body(body_object(req))
        resp.media = task_json(self._agents.assign_task(actor(req), agent_id, task_id))


class AgentTagsResource:
    """An agent's tags, set by operators; jobs' tag requirements match them."""

    def __init__(self, agents: AgentRegistry) -> None:
        self._agents = agents

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        resp.media = sorted(self._agents.tags(actor(req), agent_id))

    def on_put(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        tags = tag_list(req.get_media())
        resp.media = sorted(self._agents.set_tags(actor(req), agent_id, tags))
