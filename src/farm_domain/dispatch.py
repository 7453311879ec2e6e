"""The queue consumers' side: what runs when the queue's jobs are executed.

The scheduling rules (choosing work, sending it to agents, polling them) arrive with the scheduling
issue; until then each job logs that it ran, so that the path from a request's commit through the
queue to the service is exercised end to end.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

log = logging.getLogger("farm.dispatch")


class Dispatcher:
    """Runs the queue's jobs. Every method is idempotent: the queue delivers at most once."""

    def assign_tasks(self) -> None:
        log.info("assign_tasks ran", extra={"job": "assign_tasks"})

    def assign_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        log.info("assign_tasks_to_agent ran",
                 extra={"job": "assign_tasks_to_agent", "agent_id": str(agent_id)})

    def send_tasks_to_agent(self, agent_id: uuid.UUID) -> None:
        log.info("send_tasks_to_agent ran",
                 extra={"job": "send_tasks_to_agent", "agent_id": str(agent_id)})

    def update_agent(self, agent_id: uuid.UUID) -> None:
        log.info("update_agent ran", extra={"job": "update_agent", "agent_id": str(agent_id)})

    def stop_tasks(self, host: str, port: int, task_ids: Sequence[int]) -> None:
        log.info("stop_tasks ran",
                 extra={"job": "stop_tasks", "host": host, "port": port,
                        "task_ids": list(task_ids)})
