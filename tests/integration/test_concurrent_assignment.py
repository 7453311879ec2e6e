"""Several workers assigning at once never give one task to two agents (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import threading
import uuid

from farm_adapters.composition import build_runtime
from farm_adapters.settings import Settings
from farm_domain.agents import AgentChanges
from farm_domain.job_requests import JobSpec
from farm_domain.jobtypes import JobTypeSpec
from tests.support.fakes.collaborators import RecordingQueue, ScriptedAgentClient
from tests.support.identities import ADMIN

WORKERS = 6
AGENTS = 40


def test_concurrent_workers_never_double_book(database_url: str, tmp_path) -> None:
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_DATABASE_URL": database_url,
            "FARM_QUEUE_URL": "immediate",
            "FARM_THREADS": str(WORKERS),
        }
    )
    runtimes = [
        build_runtime(settings, queue=RecordingQueue(), client=ScriptedAgentClient())
        for _ in range(WORKERS)
    ]
    farm = runtimes[0].farm
    try:
        farm.jobtypes.create(ADMIN, JobTypeSpec(name="render", max_batch=3))
        for title in ("a", "b"):
            farm.jobs.submit(
                ADMIN,
                JobSpec(title=title, jobtype="render", start=1, end=60, batch=3, maximum_agents=15),
            )
        agent_ids = [uuid.uuid4() for _ in range(AGENTS)]
        for number, agent_id in enumerate(agent_ids):
            farm.agents.announce(
                ADMIN,
                AgentChanges(
                    id=str(agent_id),
                    hostname=f"n{number:03}",
                    ram=4096,
                    free_ram=4096,
                    cpus=4,
                    port=50000,
                ),
                "127.0.0.1",
            )
        claims: list[tuple[uuid.UUID, list[int]]] = []
        errors: list[BaseException] = []
        start = threading.Barrier(WORKERS)

        def work(runtime, seed: int) -> None:
            order = list(agent_ids) * 2
            random.Random(seed).shuffle(order)
            start.wait()
            try:
                for agent_id in order:
                    claimed = runtime.dispatcher.assign_tasks_to_agent(agent_id)
                    if claimed:
                        claims.append((agent_id, claimed))
            except BaseException as error:  # noqa: BLE001 - reported below, with the failing thread's error
                errors.append(error)

        threads = [threading.Thread(target=work, args=(r, n)) for n, r in enumerate(runtimes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        # An assigner that found a job's row busy skipped it for this pass; a sweep catches up.
        runtimes[0].dispatcher.assign_tasks()
        claimed_ids = [task_id for _, ids in claims for task_id in ids]
        assert len(claimed_ids) == len(set(claimed_ids)), "a task was handed out twice"
        assert len({agent for agent, _ in claims}) == len(claims), "an agent got two batches"
        held = {}
        for view in farm.jobs.query(ADMIN):
            tasks = farm.jobs.tasks(ADMIN, view.job.id)
            assert all(t.attempts <= 1 for t in tasks)
            owners = {t.agent_id for t in tasks if t.agent_id is not None}
            assert len(owners) <= 15  # maximum_agents holds across workers
            held.update({t.id: t.agent_id for t in tasks if t.agent_id is not None})
        assert {task_id: agent for agent, ids in claims for task_id in ids}.items() <= held.items()
        assert len(set(held.values())) == 30  # 2 jobs × 15 agents each, every place filled
    finally:
        for runtime in runtimes:
            runtime.close()
