"""Resources of the explanations: ``/api/v1/jobs/<job>/explain``, ``/api/v1/agents/<id>/explain``."""

from __future__ import annotations

import uuid

import falcon

from farm_domain.errors import NotFound
from farm_domain.explain import Explainer
from farm_domain.validation import parse_id
from farm_http.identity import actor
from farm_http.schemas.explain import agent_explanation_json, job_explanation_json


class JobExplanationResource:
    def __init__(self, explain: Explainer) -> None:
        self._explain = explain

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        job_id = parse_id(job)
        if job_id is None:
            raise NotFound(f"Job {job} not found")
        resp.media = job_explanation_json(self._explain.job(actor(req), job_id))


class AgentExplanationResource:
    def __init__(self, explain: Explainer) -> None:
        self._explain = explain

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: uuid.UUID) -> None:
        resp.media = agent_explanation_json(self._explain.agent(actor(req), agent_id))
