"""The dashboard's log viewer: a task attempt's log as text in the page, following a running
frame.

The page renders a window of at most ``WINDOW`` bytes of the log, whole lines only: its end,
or with ``?before=N`` the lines before byte N. Each window links to the one before it
(``?before=<its first byte>``), so that walking back shows every byte once; ``/static/logs.js``
prepends that window in place (the text route's ``?before=N``, the same window). While the frame
runs, the script asks the text route for what is new (``?offset=``, the bytes the page has)
every couple of seconds; without JavaScript the page reloads itself instead. The text route
answers the page's identity (a session cookie, which never authenticates the API), and
``X-Farm-Log-Running`` says whether more may come.
"""

from __future__ import annotations

import csv
from importlib import resources
from typing import TYPE_CHECKING

import attrs
import falcon

from farm_domain.enums import WorkState
from farm_domain.errors import NotFound, ValidationError
from farm_domain.farm import Farm
from farm_domain.work import TaskLog
from farm_http.dashboard_auth import page_identity

if TYPE_CHECKING:
    from farm_http.dashboard import Pages

WINDOW = 256 * 1024
"""The most of a log the page renders at once (bytes); the download has all of it."""
MAX_OFFSET = 2**31 - 1
CSV_HEADER = "time,stream,line"
"""The first line of a log the farm agent writes (PyFarm agents upload plain text)."""
FIELD_LIMIT = csv.field_size_limit()
"""The longest field the csv module reads."""
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
    for line in complete.split("\n"):
        # Line by line (the agent's rows never span lines): an odd line, or one too long for
        # the csv module, stays a line of its own.
        line = line.removesuffix("\r")
        fields = [line] if len(line) >= FIELD_LIMIT else next(csv.reader([line]), [])
        if fields == CSV_HEADER.split(","):
            continue
        if len(fields) == 3:
            time, stream, line = fields
            rows.append(Row(time[11:23] if "T" in time else time, stream, line))
        else:
            rows.append(Row("", "", ",".join(fields)))
    return rows, rest


@attrs.frozen
class Window:
    """Bytes ``start``..``end`` of a log: whole lines (``start`` 0 or just after a newline,
    ``end`` just after one), unless a line is longer than the window."""

    start: int
    end: int
    data: bytes


def window_of(data: bytes, lo: int, before: int | None) -> Window:
    """The window in ``data`` (the log's bytes from ``lo`` on, up to ``before`` or its end):
    from the first line that starts in it to ``before`` (where the window after it starts),
    or at the log's end to the last line that ends in it. A line longer than the window is
    shown cut, so that the window before it starts where this one did."""
    start = lo
    if lo > 0:
        first = data.find(b"\n") + 1
        if 0 < first < len(data):
            start = lo + first
    body = data[start - lo :]
    whole = len(body) if before is not None else body.rfind(b"\n") + 1
    return Window(start, start + whole, body[:whole])


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
        self,
        req: falcon.Request,
        job_id: int,
        task_id: int,
        attempt: int,
        log: TaskLog,
        at: int,
        until: int | None = None,
    ) -> bytes:
        """The log's bytes from ``at`` on (up to ``until``). Raises NotFound when no text has
        arrived."""
        chunks = self._farm.logs.download(
            page_identity(req), job_id, task_id, attempt, log.identifier, at
        )
        if until is None:
            return b"".join(chunks)
        data = bytearray()
        for chunk in chunks:
            data += chunk
            if at + len(data) >= until:
                break
        return bytes(data[: max(0, until - at)])

    def window(
        self,
        req: falcon.Request,
        job_id: int,
        task_id: int,
        attempt: int,
        log: TaskLog,
        before: int | None,
    ) -> Window:
        """The window ending at ``before`` (None: the log's end, its last line possibly
        incomplete). Raises NotFound when no text has arrived."""
        size = log.size or 0
        end = size if before is None else min(before, size)
        lo = max(0, end - WINDOW)
        # At the end: as far as the file is now (it may have grown since ``size`` was read).
        until = None if before is None else end
        return window_of(self.text(req, job_id, task_id, attempt, log, lo, until), lo, before)


class LogPage:
    def __init__(self, pages: Pages, farm: Farm) -> None:
        self._pages = pages
        self._source = LogSource(farm)

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, job_id: int, task_id: int, attempt: int
    ) -> None:
        logs, shown, running = self._source.find(req, job_id, task_id, attempt)
        before = _before(req)
        rows: list[Row] = []
        start = end = 0
        has_text = False
        if shown is not None:
            try:
                window = self._source.window(req, job_id, task_id, attempt, shown, before)
                has_text = True
            except NotFound:  # registered, no text yet
                window = Window(0, 0, b"")
            # At the end, whole lines only: the script fetches the rest from ``end`` on. An
            # earlier window ends where the next begins (inside a line longer than a window).
            rows, rest = rows_of(window.data.decode(errors="replace"))
            if rest and before is not None:
                rows.append(Row("", "", rest))
            start, end = window.start, window.end
        base = _attempt_url(job_id, task_id, attempt)
        text_url = f"{base}/log.txt?log={shown.identifier}" if shown else ""
        following = running and before is None
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
            earlier=start if start > 0 else None,
            paged=before is not None,
            has_text=has_text,
            running=running,
            following=following,
            no_script_refresh=REFRESH if following else 0,
            base=base,
            text_url=text_url,
        )


def _before(req: falcon.Request) -> int | None:
    """``?before=N``: the window of lines before byte N (None: the log's end)."""
    return req.get_param_as_int("before", min_value=0, max_value=MAX_OFFSET)


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
        at = req.get_param_as_int("offset", min_value=0, max_value=MAX_OFFSET)
        before = _before(req)
        if at is not None and before is not None:
            raise ValidationError("ask for `offset` (what is new) or `before` (a window), not both")
        try:
            if before is not None:
                # The page's window before byte ``before``, whole lines: where it starts is the
                # ``before`` of the window before it.
                window = self._source.window(req, job_id, task_id, attempt, shown, before)
                resp.data = window.data
                resp.set_header("X-Farm-Log-Start", str(window.start))
            else:
                resp.data = self._source.text(req, job_id, task_id, attempt, shown, at or 0)
        except NotFound:
            if not running:
                raise
            resp.data = b""  # registered, nothing arrived yet
            resp.set_header("X-Farm-Log-Start", "0")
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
