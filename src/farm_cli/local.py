"""Local mode: the operator commands on the master's own machine, with no server to ask.

The commands speak to the farm through ``FarmClient`` in both modes. Here the client's transport
is the master's own HTTP app, built in this process on the configured database and called in
memory (``httpx.WSGITransport``): the same routes, checks and answers as remote mode, without a
socket. That app acts as the local operator for every request (``create_app(local_operator=)``);
it is never served.

This is the one module of the CLI that imports the HTTP layer (see the import contracts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import httpx

from farm_adapters.composition import Runtime, build_runtime, check_schema
from farm_adapters.settings import Settings
from farm_client import FarmClient
from farm_domain.access import Identity
from farm_http.app import HttpOptions, create_app

# The Host of the in-process requests: a name the app is told to answer to, reaching nothing.
_HOST = "farm.local"


class NoFarm(Exception):
    """The configured database holds no farm (or is not where the settings say)."""


def embedded_database(settings: Settings) -> Path | None:
    """The file of an embedded (SQLite) database; None for a server's database."""
    if not settings.database_is_embedded:
        return None
    path = settings.database_url.partition(":///")[2].partition("?")[0]
    return Path(path) if path and path != ":memory:" else None


def check_farm(settings: Settings) -> None:
    """Raises NoFarm when the configured database does not exist, and SchemaOutOfDate when it
    is not at the newest schema. Creates nothing: only ``farm serve`` and ``farm db upgrade``
    make a farm, so a command run from the wrong directory cannot start an empty one."""
    path = embedded_database(settings)
    if path is not None and not path.is_file():
        raise NoFarm(
            f"no farm here: the database {path.absolute()} does not exist. Run the command where "
            "the farm's data is, or point it there (--data-dir / FARM_DATA_DIR, --database / "
            "FARM_DATABASE_URL), or ask a master (--url / FARM_URL); `farm serve` or "
            "`farm db upgrade` creates a farm"
        )
    check_schema(settings)


@contextmanager
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The master's services on the configured storage, for this command only."""
    check_farm(settings)
    built = build_runtime(settings)
    try:
        yield built
    finally:
        built.close()


@contextmanager
def client(built: Runtime, operator: Identity) -> Iterator[FarmClient]:
    """A FarmClient on an in-process app acting as ``operator``."""
    options = attrs.evolve(HttpOptions.of(built.settings), access_log="off", allowed_hosts=(_HOST,))
    app = create_app(built.farm, options, local_operator=operator)
    with FarmClient(f"http://{_HOST}", token="", transport=httpx.WSGITransport(app=app)) as local:
        yield local
