"""Who is looking at the dashboard, and whether a form post really comes from its pages.

The authentication middleware gives every request its identity from a bearer token or an
anonymously admitted network (``req.context.identity``, ``req.context.credential``). On the
dashboard's routes only, a valid session cookie (``farm_session``, set by ``POST /login``)
overrides an anonymous identity; cookies never authenticate the API. A form post changes
something only with its session's CSRF token, or from a bearer identity (a cross-site page cannot
set Authorization); an anonymously admitted browser has no session and so posts nothing.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qs

import falcon

from farm_domain.access import Identity
from farm_domain.errors import Forbidden, TooLarge, Unauthenticated
from farm_domain.identities import IdentityService
from farm_http.peers import PeerResolver

SESSION_COOKIE = "farm_session"
LOGIN_PAGE = "/login"
MAX_FORM_BYTES = 8 * 1024
BEARER = "bearer"
SESSION = "session"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def is_dashboard(path: str) -> bool:
    return path != "/api" and not path.startswith("/api/")


class DashboardSessions:
    """Middleware: resolves the session cookie on dashboard routes and sets the pages'
    security headers. It acts in ``process_resource``, after every ``process_request``, so it
    sees the identity the authentication middleware chose."""

    def __init__(self, identities: IdentityService, peers: PeerResolver) -> None:
        self._identities = identities
        self._peers = peers

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        if not is_dashboard(req.path):
            return
        req.context.csrf_token = None
        req.context.session_secret = None
        if getattr(req.context, "credential", None) == BEARER:
            return
        for secret in req.get_cookie_values(SESSION_COOKIE) or ():
            try:
                identity, csrf = self._identities.session_identity(
                    secret, self._peers.client_address(req)
                )
            except Unauthenticated:
                continue  # expired or ended: the page asks for a login again
            req.context.identity = identity
            req.context.credential = SESSION
            req.context.csrf_token = csrf
            req.context.session_secret = secret
            return

    def process_response(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        if is_dashboard(req.path):
            resp.set_headers(SECURITY_HEADERS)


def viewer(req: falcon.Request) -> Identity | None:
    """The identity a dashboard page is shown to, if any."""
    identity = getattr(req.context, "identity", None)
    return identity if isinstance(identity, Identity) else None


def page_identity(req: falcon.Request) -> Identity:
    """The page's identity; without one, off to the login page (always the same fixed path:
    never a place the request names)."""
    identity = viewer(req)
    if identity is None:
        raise falcon.HTTPSeeOther(LOGIN_PAGE)
    return identity


def may_post(req: falcon.Request) -> bool:
    """Whether this request's identity can post dashboard forms at all."""
    credential = getattr(req.context, "credential", None)
    return viewer(req) is not None and credential in (BEARER, SESSION)


def read_form(req: falcon.Request) -> dict[str, str]:
    """A form-encoded body of at most MAX_FORM_BYTES (larger: TooLarge); the last value of
    each field."""
    raw = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        raise TooLarge(f"a dashboard form is at most {MAX_FORM_BYTES} bytes")
    text = raw.decode(errors="replace")
    return {key: values[-1] for key, values in parse_qs(text).items()}


def posted_form(req: falcon.Request) -> tuple[Identity, dict[str, str]]:
    """The identity behind a dashboard form post and the form. Raises Forbidden (nothing has
    changed) unless it comes from a session with its CSRF token, or from a bearer identity."""
    form = read_form(req)
    identity = viewer(req)
    credential = getattr(req.context, "credential", None)
    if identity is not None and credential == BEARER:
        return identity, form
    expected = getattr(req.context, "csrf_token", None)
    if identity is None or credential != SESSION or not isinstance(expected, str):
        raise Forbidden("dashboard actions need a logged-in session (log in at /login)")
    if not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        raise Forbidden("the form's csrf token is missing or wrong: reload the page")
    return identity, form


def set_session_cookie(
    req: falcon.Request, resp: falcon.Response, secret: str, secure_cookies: bool
) -> None:
    resp.set_cookie(
        SESSION_COOKIE,
        secret,
        path="/",
        http_only=True,
        same_site="Strict",
        secure=secure_cookies or req.scheme == "https",
    )


def clear_session_cookie(resp: falcon.Response) -> None:
    resp.unset_cookie(SESSION_COOKIE, path="/", same_site="Strict")
