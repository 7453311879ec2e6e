"""The dashboard's log viewer over HTTP: a running frame's lines before it ends, then what is
new of them; an ended frame's log as it is."""

from __future__ import annotations

import csv
import html
import io
import re

import falcon.testing

from farm_domain.access import Role
from farm_domain.enums import WorkState
from farm_http.log_page import WINDOW
from tests.support.dashboard import dashboard_client
from tests.support.http_harness import Harness

CSV = {"Content-Type": "text/csv"}
HEADER = "time,stream,line\r\n"


def _row(n: int, line: str, stream: str = "stdout") -> str:
    """A row as the farm agent writes it (the csv module's quoting, CRLF)."""
    out = io.StringIO()
    csv.writer(out).writerow([f"2026-12-01T00:00:{n:02d}.000+00:00", stream, line])
    return out.getvalue()


def _attempt(farm: Harness, client: falcon.testing.TestClient, state: WorkState) -> str:
    job = farm.job()
    task = farm.task(job, attempts=1, state=state)
    attempt = f"/jobs/{job.id}/tasks/{task.id}/attempts/1"
    registered = client.simulate_post(f"/api/v1{attempt}/logs", json={"identifier": "f.csv"})
    assert registered.status_code == 201, registered.text
    return attempt


def _append(client: falcon.testing.TestClient, attempt: str, offset: int, text: str) -> int:
    answer = client.simulate_post(
        f"/api/v1{attempt}/logs/f.csv/chunks", params={"offset": offset}, body=text, headers=CSV
    )
    assert answer.status_code == 200, answer.text
    size: int = answer.json["offset"]
    return size


def test_a_running_frames_lines_show_before_it_ends_and_then_what_is_new(farm: Harness) -> None:
    client = dashboard_client(farm, Role.ADMIN)
    attempt = _attempt(farm, client, WorkState.RUNNING)
    empty = client.simulate_get(f"{attempt}/log")
    assert empty.status_code == 200 and "No text has arrived yet" in empty.text
    written = HEADER + _row(1, "hello") + _row(2, "<b>careful</b>", "stderr") + "2026-12"
    size = _append(client, attempt, 0, written)
    page = client.simulate_get(f"{attempt}/log")
    assert page.status_code == 200
    assert "<td>00:00:01.000</td><td>stdout</td><td>hello</td>" in page.text
    assert "&lt;b&gt;careful&lt;/b&gt;" in page.text and "<b>careful" not in page.text
    assert '<script src="/static/logs.js"></script>' in page.text
    assert '<noscript><meta http-equiv="refresh"' in page.text
    assert "time,stream,line" not in page.text  # the header is the table's
    # The page has the whole lines; its script asks for the rest from there.
    offset = int(re.search(r'data-offset="(\d+)"', page.text).group(1))  # type: ignore[union-attr]
    assert offset == len(written.encode()) - len("2026-12")
    source = re.search(r'data-src="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    source = source.replace("&amp;", "&")
    new = client.simulate_get(f"{source}&offset={offset}")
    assert new.status_code == 200 and new.text == "2026-12"
    assert new.headers["x-farm-log-running"] == "1"
    assert new.headers["content-type"] == "text/plain; charset=utf-8"
    _append(client, attempt, size, "-01T00:00:03.000+00:00,stdout,more\r\n")
    assert client.simulate_get(f"{source}&offset={offset}").text == _row(3, "more")
    script = client.simulate_get("/static/logs.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )


def test_an_ended_frames_log_is_shown_without_following_and_downloads(farm: Harness) -> None:
    client = dashboard_client(farm, Role.ADMIN)
    attempt = _attempt(farm, client, WorkState.DONE)
    _append(client, attempt, 0, HEADER + _row(1, "done, at last"))
    page = client.simulate_get(f"{attempt}/log")
    assert page.status_code == 200 and "<td>done, at last</td>" in page.text
    assert "logs.js" not in page.text and "noscript" not in page.text
    assert "data-src" not in page.text
    download = client.simulate_get(f"{attempt}/log.txt", params={"download": "1"})
    assert download.text == HEADER + _row(1, "done, at last")
    assert download.headers["x-farm-log-running"] == "0"
    assert download.headers["content-disposition"] == 'attachment; filename="f.csv"'
    assert f'href="{attempt}/log.txt?log=f.csv&amp;download=1"' in page.text


def test_the_job_page_links_each_task_to_its_log_viewer(farm: Harness) -> None:
    client = dashboard_client(farm, Role.ADMIN)
    job = farm.job()
    task = farm.task(job, attempts=2, state=WorkState.FAILED)
    page = client.simulate_get(f"/jobs/{job.id}")
    assert f'href="/jobs/{job.id}/tasks/{task.id}/attempts/2/log"' in page.text
    viewer = client.simulate_get(f"/jobs/{job.id}/tasks/{task.id}/attempts/2/log")
    assert viewer.status_code == 200 and "This attempt has no log yet" in viewer.text
    assert f'href="/jobs/{job.id}/tasks/{task.id}/attempts/1/log"' in viewer.text
    assert client.simulate_get(f"/jobs/{job.id}/tasks/{task.id}/attempts/2/log.txt").status == (
        "404 Not Found"
    )
    unknown = client.simulate_get(f"/jobs/{job.id}/tasks/{task.id}/attempts/2/log?log=nope.csv")
    assert unknown.status_code == 404


def _log_of(rows: int) -> bytes:
    """A farm agent's log of ``rows`` rows of varied lengths: quotes, commas and multi-byte
    characters among them (no window may split one)."""
    out = io.StringIO()
    out.write(HEADER)
    writer = csv.writer(out)
    for n in range(rows):
        line = f"row {n} " + 'é,"x"' * (n % 7) + "-" * (n * 37 % 300)
        writer.writerow([f"2026-12-01T00:00:{n % 60:02d}.000+00:00", "stdout", line])
    return out.getvalue().encode()


def _upload(client: falcon.testing.TestClient, attempt: str, data: bytes) -> None:
    for at in range(0, len(data), 1024 * 1024):
        assert _append(client, attempt, at, data[at : at + 1024 * 1024].decode()) > at


def test_walking_back_through_a_long_logs_windows_shows_every_byte_once(farm: Harness) -> None:
    client = dashboard_client(farm, Role.ADMIN)
    attempt = _attempt(farm, client, WorkState.DONE)
    data = _log_of(20_000)
    assert len(data) > 3 * 1024 * 1024
    _upload(client, attempt, data)
    # The text route's windows (what the page's script prepends), from the end back.
    windows: list[bytes] = []
    before = len(data)
    while before > 0:
        answer = client.simulate_get(
            f"{attempt}/log.txt", params={"log": "f.csv", "before": before}
        )
        assert answer.status_code == 200
        start = int(answer.headers["x-farm-log-start"])
        assert 0 <= start < before and len(answer.content) <= WINDOW
        assert answer.content == data[start:before]  # whole lines, from a line's start
        assert start == 0 or data[start - 1 : start] == b"\n"
        windows.append(answer.content)
        before = start
    assert len(windows) > 10
    assert b"".join(reversed(windows)) == data

    # The pages, without script: each links to the one before it; their rows, put together,
    # are the log's rows, each once.
    expected = [row[2] for row in csv.reader(io.StringIO(data.decode()))][1:]
    shown: list[list[str]] = []
    url: str | None = f"{attempt}/log"
    while url is not None:
        page = client.simulate_get(url)
        assert page.status_code == 200
        cells = re.findall(r'<tr class="l-stdout"><td>[^<]*</td><td>stdout</td><td>([^<]*)</td>',
                           page.text)  # fmt: skip
        shown.append([html.unescape(cell) for cell in cells])
        earlier = re.search(r'id="log-earlier" href="([^"]+)"', page.text)
        url = html.unescape(earlier.group(1)) if earlier else None
        if url is not None:
            assert "log-earlier" in page.text and "/static/logs.js" in page.text
    assert [row for rows in reversed(shown) for row in rows] == expected
    # An earlier window is not followed, and leads back to the end.
    assert "noscript" not in page.text and 'data-src="' not in page.text.split("<table")[1]
    assert f"""href="{attempt}/log?log=f.csv">the log's end</a>""" in page.text


def test_a_line_longer_than_a_window_is_shown_cut_and_still_once(farm: Harness) -> None:
    client = dashboard_client(farm, Role.ADMIN)
    attempt = _attempt(farm, client, WorkState.DONE)
    data = (HEADER + "a" * (WINDOW + 1000) + "\n" + "short\n").encode()
    _upload(client, attempt, data)
    windows: list[bytes] = []
    before = len(data)
    while before > 0:
        answer = client.simulate_get(
            f"{attempt}/log.txt", params={"log": "f.csv", "before": before}
        )
        start = int(answer.headers["x-farm-log-start"])
        assert start < before and answer.content == data[start:before]
        windows.append(answer.content)
        before = start
    assert b"".join(reversed(windows)) == data
    # The pages show the cut line's pieces, each once.
    pieces: list[str] = []
    url: str | None = f"{attempt}/log"
    while url is not None:
        page = client.simulate_get(url)
        pieces[:0] = re.findall(r"<td>(a+)</td>", page.text)
        earlier = re.search(r'id="log-earlier" href="([^"]+)"', page.text)
        url = html.unescape(earlier.group(1)) if earlier else None
    assert len(pieces) == 2 and "".join(pieces) == "a" * (WINDOW + 1000)


def test_a_window_asks_for_offset_or_before_not_both(farm: Harness) -> None:
    client = dashboard_client(farm, Role.ADMIN)
    attempt = _attempt(farm, client, WorkState.DONE)
    _append(client, attempt, 0, HEADER + _row(1, "one"))
    both = client.simulate_get(
        f"{attempt}/log.txt", params={"log": "f.csv", "before": 5, "offset": 1}
    )
    assert both.status_code == 400
    negative = client.simulate_get(f"{attempt}/log", params={"before": -1})
    assert negative.status_code == 400
    # Before the first byte: nothing, and nothing earlier.
    page = client.simulate_get(f"{attempt}/log", params={"before": 0})
    assert page.status_code == 200 and "<td>one</td>" not in page.text
    assert "log-earlier" not in page.text
