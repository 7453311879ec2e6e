"""The master's app in-process on a real database, with a recording queue and a fixed clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing

from farm_adapters.composition import Runtime, build_runtime
from farm_adapters.settings import Settings
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_domain.enums import WorkState
from farm_domain.work import Job, Task
from farm_http import HttpOptions, create_app
from tests.support.builders import add_job, add_task, get_task
from tests.support.fakes.collaborators import FixedClock, RecordingQueue

TEST_HOST = "falconframework.org"
"""The Host header falcon.testing sends unless told otherwise."""


class Harness:
    """A ``falcon.testing.TestClient`` on the app, and the runtime, queue and clock behind it."""

    def __init__(
        self,
        runtime: Runtime,
        queue: RecordingQueue,
        clock: FixedClock,
        client: falcon.testing.TestClient,
    ) -> None:
        self.runtime = runtime
        self.queue = queue
        self.clock = clock
        self.client = client
        self.uow = SqlUnitOfWorkFactory(runtime.engine)
        self.agent_port = 50000
        """The port ``announce`` gives an agent unless told otherwise."""

    def announce(self, agent_id: uuid.UUID | None = None, **fields: Any) -> falcon.testing.Result:
        body = {
            "id": str(agent_id or uuid.uuid4()),
            "hostname": "node1",
            "ram": 4096,
            "free_ram": 2048,
            "cpus": 8,
            "port": self.agent_port,
        }
        body.update(fields)
        return self.client.simulate_post("/api/v1/agents/", json=body)

    def job(self, requeue: int = 3, title: str = "job", state: WorkState | None = None) -> Job:
        return add_job(self.uow, self.clock.now(), requeue=requeue, title=title, state=state)

    def task(self, job: Job, **fields: Any) -> Task:
        return add_task(self.uow, job, self.clock.now(), **fields)

    def get_task(self, task_id: int) -> Task:
        return get_task(self.uow, task_id)


def make_harness(database_url: str, tmp_path: Path, **env: str) -> Iterator[Harness]:
    """Yields a harness on ``database_url`` (already migrated) and closes its runtime after."""
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": database_url,
            "FARM_QUEUE_URL": "immediate",
            # The existing tests act as PyFarm agents and clients without tokens, from
            # falcon.testing's 127.0.0.1, with its Host.
            "FARM_ANONYMOUS_NETWORKS": "127.0.0.0/8",
            "FARM_ANONYMOUS_ROLE": "admin",
            "FARM_ALLOWED_HOSTS": f"{TEST_HOST},localhost",
            **env,
        }
    )
    queue, clock = RecordingQueue(), FixedClock()
    # As the web workers run it (farm_http.wsgi): without connection pre-ping.
    runtime = build_runtime(settings, queue=queue, clock=clock, pre_ping=False)
    app = create_app(runtime.farm, HttpOptions.of(settings))
    yield Harness(runtime, queue, clock, falcon.testing.TestClient(app))
    runtime.close()
