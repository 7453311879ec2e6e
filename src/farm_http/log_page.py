"""The dashboard's log viewer: a task attempt's log as text in the page, following a running
frame.

The page renders the log's last ``TAIL`` bytes; ``/static/logs.js`` then asks the log's text
route for what is new (``?offset=``, the bytes the page has) every couple of seconds while the
frame runs. Without JavaScript the page reloads itself while the frame runs. The text route
answers the page's identity (a session cookie, which never authenticates the API), and
``X-Farm-Log-Running`` says whether more may come.
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import TYPE_CHECKING

import attrs
import falcon

from farm_domain.enums import WorkState
from farm_domain.errors import NotFound
from farm_domain.farm import Farm
from farm_domain.work import TaskLog
from farm_http.dashboard_auth import page_identity

if TYPE_CHECKING:
    from farm_http.dashboard import Pages

TAIL = 256 * 1024
"""The most of a log the page renders (its end); the download has all of it."""
CSV_HEADER = "time,stream,line"
"""The first line of a log the farm agent writes (PyFarm agents upload plain text)."""
REFRESH = 5
"""Seconds between reloads of a running frame's page without JavaScript."""


@attrs.frozen
class Row:
    time: str
    stream: str
    line: str


def rows_of(text: str) -> tuple[list[Row], str]:
    """The log's rows, and what follows the last complete one (a row still being written).
    A line of the agent's CSV is (time, stream, line); any other line is a line as it is."""
    complete, newline, rest = text.rpartition("\n")
    if not newline:
        return [], text
    rows = []
    for fields in csv.reader(io.StringIO(complete + "\n")):
        if fields == CSV_HEADER.split(","):
            continue
        if len(fields) == 3:
            time, stream, line = fields
            rows.append(Row(time[11:23] if "T" in time else time, stream, line))
        else:
            rows.append(Row("", "", ",".join(fields)))
    return rows, rest


def _attempt_url(job_id: int, task_id: int, attempt: int) -> str:
    return f"/jobs/{job_id}/tasks/{task_id}/attempts/{attempt}"


class LogSource:
    """What the page and its text route share: the attempt's logs, the one shown, whether the
    frame still runs."""

    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def find(
        self, req: falcon.Request, job_id: int, task_id: int, attempt: int
    ) -> tuple[list[TaskLog], TaskLog | None, bool]:
        identity = page_identity(req)
        task = self._farm.jobs.task(identity, job_id, task_id)
        logs = self._farm.logs.of_attempt(identity, job_id, task_id, attempt)
        wanted = req.get_param("log")
        shown = next((log for log in logs if log.identifier == wanted), None)
        if wanted is not None and shown is None:
            raise NotFound(f"Log {wanted} not found")
        if shown is None and logs:
            shown = logs[-1]
        running = task.attempts == attempt and (
            task.state == WorkState.RUNNING or (task.state is None and task.agent_id is not None)
        )
        return logs, shown, running

    def text(
        self, req: falcon.Request, job_id: int, task_id: int, attempt: int, log: TaskLog, at: int
    ) -> bytes:
        chunks = self._farm.logs.download(
            page_identity(req), job_id, task_id, attempt, log.identifier, at
        )
        return b"".join(chunks)


class LogPage:
    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._source = LogSource(farm)

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, job_id: int, task_id: int, attempt: int
    ) -> None:
        logs, shown, running = self._source.find(req, job_id, task_id, attempt)
        rows: list[Row] = []
        start = end = 0
        has_text = False
        if shown is not None:
            start = max(0, (shown.size or 0) - TAIL)
            try:
                data = self._source.text(req, job_id, task_id, attempt, shown, start)
                has_text = True
            except NotFound:  # registered, no text yet
                data = b""
            if start:  # from the first whole line on
                first = data.find(b"\n") + 1
                data, start = data[first:], start + first
            # Whole lines only: the script fetches the rest from ``end`` on.
            whole = data.rfind(b"\n") + 1
            rows, _ = rows_of(data[:whole].decode(errors="replace"))
            end = start + whole
        base = _attempt_url(job_id, task_id, attempt)
        text_url = f"{base}/log.txt?log={shown.identifier}" if shown else ""
        self._pages.render(
            req,
            resp,
            "log.html",
            title=f"job {job_id} · task {task_id} · attempt {attempt}",
            section="jobs",
            refresh=0,
            job_id=job_id,
            task_id=task_id,
            attempt=attempt,
            logs=logs,
            shown=shown,
            rows=rows,
            skipped=start,
            offset=end,
            has_text=has_text,
            running=running,
            no_script_refresh=REFRESH if running else 0,
            base=base,
            text_url=text_url,
        )


class LogText:
    """The shown log's text from ``offset`` on, for the page's script and as the download."""

    def __init__(self, farm: Farm) -> None:
        self._source = LogSource(farm)

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, job_id: int, task_id: int, attempt: int
    ) -> None:
        _, shown, running = self._source.find(req, job_id, task_id, attempt)
        if shown is None:
            raise NotFound("This attempt has no log yet")
        at = req.get_param_as_int("offset", min_value=0, max_value=2**31 - 1) or 0
        try:
            resp.data = self._source.text(req, job_id, task_id, attempt, shown, at)
        except NotFound:
            if not running:
                raise
            resp.data = b""  # registered, nothing arrived yet
        # Agent-written text: never rendered by a browser, whatever it contains.
        resp.content_type = "text/plain; charset=utf-8"
        resp.cache_control = ["no-store"]
        resp.set_header("X-Farm-Log-Running", "1" if running else "0")
        if req.get_param_as_bool("download"):
            resp.downloadable_as = shown.identifier


class LogScript:
    """The viewer's script: a file of the app's own, as the pages' CSP wants."""

    def __init__(self) -> None:
        self._js = (resources.files("farm_http") / "static" / "logs.js").read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/javascript; charset=utf-8"
        resp.cache_control = ["max-age=300"]
        resp.data = self._js


def add_routes(
    app: falcon.App[falcon.Request, falcon.Response], pages: Pages, farm: Farm, id_converter: str
) -> None:
    attempt = (
        f"/jobs/{{job_id:{id_converter}}}/tasks/{{task_id:{id_converter}}}"
        f"/attempts/{{attempt:{id_converter}}}"
    )
    app.add_route(f"{attempt}/log", LogPage(pages, farm))
    app.add_route(f"{attempt}/log.txt", LogText(farm))
    app.add_route("/static/logs.js", LogScript())
