"""The API reference page: the OpenAPI document for people, on the dashboard, from the package
alone (no script, no stylesheet or font from elsewhere)."""

from __future__ import annotations

import re

from farm_domain.access import Role
from farm_http.reference import openapi_document
from farm_http.routes import ROUTES
from tests.support.dashboard import dashboard_client
from tests.support.http_harness import Harness

DOCUMENT = openapi_document(ROUTES)


def test_the_page_shows_every_operation_and_schema(farm: Harness) -> None:
    page = dashboard_client(farm, Role.VIEWER).simulate_get("/reference")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert f'id="{operation["operationId"]}"' in page.text, (method, path)
            assert f"<code>{path}</code>" in page.text
    for name in DOCUMENT["components"]["schemas"]:
        assert f'id="schema-{name}"' in page.text
        assert f'href="#schema-{name}"' in page.text
    # What the types say, readably: a list of jobs, a bounded limit, a nullable field.
    assert 'array of <a href="#schema-JobJson">JobJson</a>' in page.text
    assert 'integer <span class="dim">≥ 1, ≤ 1000</span>' in page.text
    assert "string | null" in page.text
    assert "/api/v1/openapi.json" in page.text


def test_the_page_needs_nothing_from_elsewhere(farm: Harness) -> None:
    page = dashboard_client(farm, Role.VIEWER).simulate_get("/reference").text
    assert "<script" not in page
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", page)
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', page) == ["/static/farm.css"]


def test_every_dashboard_page_links_the_reference(farm: Harness) -> None:
    client = dashboard_client(farm, Role.VIEWER)
    for path in ("/", "/jobs", "/events", "/reference"):
        assert '<a href="/reference"' in client.simulate_get(path).text, path


def test_the_page_does_not_refresh_itself(farm: Harness) -> None:
    page = dashboard_client(farm, Role.VIEWER).simulate_get("/reference").text
    assert 'http-equiv="refresh"' not in page
