"""The dashboard's task page: a task with its history and failed attempts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from farm_domain.farm import Farm
from farm_domain.history import HistoryPage
from farm_http.dashboard_auth import page_identity

if TYPE_CHECKING:
    from farm_http.dashboard import Pages

TASK_PAGE_CHANGES = 100


class TaskPage:
    """``/jobs/<job>/tasks/<task>``: a task, how it got to its state, and why it failed."""

    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._farm = farm

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: int, task_id: int) -> None:
        identity = page_identity(req)
        before = req.get_param_as_int("before", min_value=1, max_value=2**31 - 1)
        view = self._farm.jobs.get(identity, job_id)
        task = self._farm.jobs.task(identity, job_id, task_id)
        page = HistoryPage(limit=TASK_PAGE_CHANGES, before=before)
        changes = self._farm.history.of_task(identity, job_id, task_id, page)
        failures = self._farm.jobs.failures(identity, job_id, task_id)
        agents = {c.agent_id for c in changes} | {f.agent_id for f in failures} | {task.agent_id}
        hostnames = self._farm.agents.hostnames(identity, [a for a in agents if a is not None])
        self._pages.render(
            req,
            resp,
            "task.html",
            title=f"{view.job.title} · frame {task.frame:g}",
            section="jobs",
            job=view.job,
            task=task,
            changes=changes,
            older=changes[-1].id if len(changes) == TASK_PAGE_CHANGES else None,
            failures=failures,
            hostnames=hostnames,
        )
