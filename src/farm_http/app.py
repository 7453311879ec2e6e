"""The Falcon application: ``create_app(farm, options)``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

import attrs
import falcon
import falcon.media
import orjson

from farm_domain.access import Identity, Role
from farm_domain.farm import Farm
from farm_http import dashboard, errors
from farm_http.authentication import Authentication
from farm_http.browser_safety import BrowserSafety
from farm_http.create_limit import CreateLimit
from farm_http.live import LIFETIME_SECONDS
from farm_http.monitoring import RequestMetrics
from farm_http.peers import Network, PeerResolver
from farm_http.request_log import RequestLog
from farm_http.request_shape import RequestShape
from farm_http.routes import ID, ROUTES, responders


class HttpSettings(Protocol):
    """The settings the HTTP layer reads (the master's Settings has them, with their defaults:
    this layer keeps none of its own)."""

    @property
    def trusted_proxies(self) -> Sequence[Network]: ...
    @property
    def access_log(self) -> str: ...
    @property
    def slow_request_ms(self) -> float: ...
    @property
    def dashboard_refresh_seconds(self) -> int: ...
    @property
    def dashboard_live_seconds(self) -> float: ...
    @property
    def secure_cookies(self) -> bool: ...
    @property
    def allowed_hosts(self) -> Sequence[str]: ...
    @property
    def anonymous_networks(self) -> Sequence[Network]: ...
    @property
    def anonymous_role(self) -> Role: ...
    @property
    def max_json_bytes(self) -> int: ...


@attrs.frozen
class HttpOptions:
    trusted_proxies: Sequence[Network]
    access_log: str
    """Which requests get an access-log line: all, errors (and slow ones), off."""
    slow_request_ms: float
    dashboard_refresh_seconds: int
    """How often dashboard pages reload themselves; 0 never."""
    secure_cookies: bool
    """Mark the session cookie Secure on every response, not only on https requests."""
    allowed_hosts: Sequence[str]
    """The names a request's Host may give; ``*`` any."""
    anonymous_networks: Sequence[Network]
    """Requests without a token from these act as ``anonymous_role``."""
    anonymous_role: Role
    max_json_bytes: int
    """Largest JSON request body (larger: 413)."""
    live_stream_seconds: float = LIFETIME_SECONDS
    """How long a dashboard page's live-update stream lasts before its browser reconnects."""

    @classmethod
    def of(cls, settings: HttpSettings) -> HttpOptions:
        return cls(
            trusted_proxies=settings.trusted_proxies,
            access_log=settings.access_log,
            slow_request_ms=settings.slow_request_ms,
            dashboard_refresh_seconds=settings.dashboard_refresh_seconds,
            secure_cookies=settings.secure_cookies,
            allowed_hosts=settings.allowed_hosts,
            anonymous_networks=settings.anonymous_networks,
            anonymous_role=settings.anonymous_role,
            max_json_bytes=settings.max_json_bytes,
            live_stream_seconds=settings.dashboard_live_seconds,
        )


def _dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # Deeper than orjson renders (a job's data stored before depth was limited): the
        # standard library's encoder goes as deep as its reader went.
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def create_app(
    farm: Farm, options: HttpOptions, *, local_operator: Identity | None = None
) -> falcon.App[falcon.Request, falcon.Response]:
    """The app. ``local_operator`` is for the operator CLI's in-process app only (see
    ``Authentication``): every request of that app acts as that identity without a token. An
    app that is served never gets it."""
    peers = PeerResolver(options.trusted_proxies)
    middleware: list[RequestLog | BrowserSafety | Authentication | RequestShape | CreateLimit] = (
        []
        if options.access_log == "off"
        else [RequestLog(options.access_log, options.slow_request_ms)]
    )
    # In this order: a foreign Host is refused before any credential is looked at.
    json_bodies = {route.template: route.json_bodies for route in ROUTES}
    middleware.append(BrowserSafety(options.allowed_hosts, json_bodies))
    middleware.append(
        Authentication(
            farm.identities,
            peers,
            options.anonymous_networks,
            options.anonymous_role,
            local_operator,
        )
    )
    middleware.append(RequestShape(options.max_json_bytes, json_bodies))
    middleware.append(
        CreateLimit(farm.creates, {route.template: route.creates for route in ROUTES})
    )
    app = falcon.App(middleware=[RequestMetrics(farm.monitoring), *middleware])
    app.req_options.strip_url_path_trailing_slash = True
    json_handler = falcon.media.JSONHandler(dumps=_dumps, loads=orjson.loads)
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    pages = dashboard.Pages(farm, options.dashboard_refresh_seconds)
    errors.install(app, pages.error_page)

    for route in ROUTES:
        resource = route.resource(farm, peers)
        if responders(resource) != set(route.needs):
            raise AssertionError(
                f"{route.template}: the route table lists {sorted(route.needs)}, "
                f"the resource answers {sorted(responders(resource))}"
            )
        app.add_route(route.template, resource)
    dashboard.add_routes(app, farm, ID, options, pages)
    return app
