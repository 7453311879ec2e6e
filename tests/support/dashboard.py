"""Driving the dashboard through falcon.testing: identities as the authentication middleware
gives them, users who log in, and their sessions."""

from __future__ import annotations

import re
from typing import Any

import attrs
import falcon
import falcon.testing

from farm_domain.access import Identity, Role
from farm_domain.farm import Farm
from farm_http import HttpOptions, create_app
from farm_http.dashboard_auth import SESSION_COOKIE
from tests.support.http_harness import Harness

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PASSWORD = "correct horse battery"
OPERATOR = Identity.local_operator("test")


class StandInAuthentication:
    """The authentication middleware's contract, as far as the dashboard relies on it: a bearer
    token's identity with ``credential == "bearer"``; else the anonymous identity of an admitted
    network (here: every peer, when ``anonymous_role`` is set) with ``credential ==
    "anonymous"``; else no identity. Added after the app's own middleware, it decides alone."""

    def __init__(self, farm: Farm, anonymous_role: Role | None) -> None:
        self._farm = farm
        self._anonymous_role = anonymous_role

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.pop("identity", None)
        req.context.pop("credential", None)
        authorization = req.get_header("Authorization") or ""
        if authorization.startswith("Bearer "):
            req.context.identity = self._farm.identities.authenticate(
                authorization.removeprefix("Bearer "), req.remote_addr
            )
            req.context.credential = "bearer"
        elif self._anonymous_role is not None:
            req.context.identity = Identity(
                "anonymous", self._anonymous_role, address=req.remote_addr
            )
            req.context.credential = "anonymous"


def dashboard_client(
    farm: Harness, anonymous_role: Role | None = None, **options: Any
) -> falcon.testing.TestClient:
    """A client on a new app over the harness's farm, authenticated as the contract says."""
    app = create_app(
        farm.runtime.farm, attrs.evolve(HttpOptions.of(farm.runtime.settings), **options)
    )
    app.add_middleware(StandInAuthentication(farm.runtime.farm, anonymous_role))
    return falcon.testing.TestClient(app)


def add_user(farm: Harness, name: str, role: Role) -> None:
    farm.runtime.farm.identities.add_user(OPERATOR, name, role, PASSWORD)


def bearer(farm: Harness, role: Role, name: str | None = None) -> dict[str, str]:
    _, secret = farm.runtime.farm.identities.create_token(OPERATOR, role, name or f"{role}-token")
    return {"Authorization": f"Bearer {secret}"}


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]*)"')


class Session:
    """A user logged in through ``POST /login``: their cookie on every request, and the CSRF
    token read from the pages they see."""

    def __init__(self, client: falcon.testing.TestClient, name: str) -> None:
        self.client = client
        answer = client.simulate_post(
            "/login", body=f"name={name}&password={PASSWORD.replace(' ', '+')}", headers=FORM
        )
        assert answer.status_code == 303, answer.text
        self.secret = answer.cookies[SESSION_COOKIE].value
        self.csrf = self.csrf_of(self.get("/jobs").text)

    @staticmethod
    def csrf_of(page: str) -> str:
        """The CSRF token in the page's forms (the logout form is on every page)."""
        found = CSRF_FIELD.search(page)
        assert found, "no form with a csrf field on the page"
        return found.group(1)

    @property
    def cookies(self) -> dict[str, str]:
        return {SESSION_COOKIE: self.secret}

    def get(self, path: str, **kwargs: Any) -> falcon.testing.Result:
        return self.client.simulate_get(path, cookies=self.cookies, **kwargs)

    def post(
        self, path: str, body: str = "", csrf: str | None = None, **headers: str
    ) -> falcon.testing.Result:
        """A form post with the session's CSRF token (or ``csrf``, when given)."""
        token = self.csrf if csrf is None else csrf
        form = f"csrf={token}&{body}" if token else body
        return self.client.simulate_post(
            path, body=form, cookies=self.cookies, headers={**FORM, **headers}
        )
