"""``farm``: serve the master, run queue workers, migrate the database."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from farm_adapters.composition import (
    SchemaOutOfDate,
    bootstrap_admin,
    build_runtime,
    check_schema,
    forget_dead_processes_metrics,
    migrate,
)
from farm_adapters.logs import configure_logging
from farm_adapters.queue import run_consumer, start_embedded_consumer, start_watching
from farm_adapters.settings import Settings, SettingsError, Whole
from farm_cli import credentials, operators
from farm_cli.single_master import AlreadyServed, check_port_free, hold_data_dir
from farm_domain.errors import DomainError, ValidationError

log = logging.getLogger("farm.cli")

# Flags that set a FARM_* setting: (flag, Settings field, metavar). Their defaults and help come
# from the settings' declarations; argparse stores each under the field's name.
_SERVE_FLAGS = (
    ("--host", "host", None),
    ("--port", "port", None),
    ("--workers", "workers", None),
    ("--threads", "threads", None),
)
_STORAGE_FLAGS = (
    ("--database", "database_url", "URL"),
    ("--queue", "queue_url", "URL"),
    ("--data-dir", "data_dir", "DIR"),
)
_WORKER_FLAGS = (("--concurrency", "queue_workers", "CONCURRENCY"),)
_FLAG_SETTINGS = tuple(name for _, name, _ in (*_SERVE_FLAGS, *_STORAGE_FLAGS, *_WORKER_FLAGS))
_OPERATOR_COMMANDS = (*operators.COMMANDS, *credentials.COMMANDS)


def _add_setting_flags(
    parser: argparse.ArgumentParser, flags: Sequence[tuple[str, str, str | None]]
) -> None:
    declared = Settings.declared()
    for flag, name, metavar in flags:
        setting = declared[name]
        parser.add_argument(
            flag,
            dest=name,
            metavar=metavar,
            # Not given: absent, so a flag given to a command survives its action's parser.
            default=argparse.SUPPRESS,
            type=int if isinstance(setting.parse, Whole) else str,
            help=f"{setting.help} ({setting.env}; default {setting.default})",
        )


def _settings_epilog() -> str:
    lines = ["settings (environment variables):"]
    for setting in Settings.declared().values():
        lines.append(f"  {setting.env} (default {setting.default})")
        lines.append(f"      {setting.help}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="farm",
        description="A render-farm master. Every flag also has a FARM_* environment variable.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_storage(sub: argparse.ArgumentParser) -> None:
        _add_setting_flags(sub, _STORAGE_FLAGS)

    serve = commands.add_parser(
        "serve",
        help="serve the HTTP API with a production WSGI server",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_setting_flags(serve, _SERVE_FLAGS)
    with_storage(serve)

    worker = commands.add_parser("worker", help="consume the queue (scale-out deployments)")
    _add_setting_flags(worker, _WORKER_FLAGS)
    periodic = Settings.declared()["periodic"]
    worker.add_argument(
        "--no-periodic",
        dest="periodic",
        action="store_const",
        const="false",
        help=f"do not run the periodic sweeps (run them on one worker only; {periodic.env}=false)",
    )
    with_storage(worker)

    agent = commands.add_parser(
        "agent", help="run a render node (see `farm agent --help`)", add_help=False
    )
    agent.add_argument("agent_args", nargs=argparse.REMAINDER)

    operators.add_parsers(commands)
    credentials.add_parsers(commands, with_storage)
    for name in operators.COMMANDS:
        with_storage(commands.choices[name])

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply schema migrations")
    with_storage(upgrade)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings the command line sets, by field name (None: not given)."""
    return {name: getattr(args, name, None) for name in (*_FLAG_SETTINGS, "periodic")}


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(os.environ, **_overrides(args))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["agent"]:
        # The agent is its own program: a render node needs none of the master's settings.
        os.execv(sys.executable, [sys.executable, "-m", "farm_agent", *arguments[1:]])
    args = _parser().parse_args(arguments)
    try:
        settings = _settings(args)
    except SettingsError as error:
        print(f"farm: {error}", file=sys.stderr)
        return 2
    if args.command in _OPERATOR_COMMANDS:
        configure_logging("WARNING", "text")  # the command's output is what the operator reads
    else:
        configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "serve":
            return _serve(args, settings)
        if args.command == "worker":
            return _worker(settings)
        if args.command in _OPERATOR_COMMANDS:
            return _operate(args, settings)
        migrate(settings)
        log.info("database upgraded", extra={"database": _safe_url(settings.database_url)})
        return 0
    except SchemaOutOfDate as error:
        print(f"farm: {error}", file=sys.stderr)
        return 2


def _operate(args: argparse.Namespace, settings: Settings) -> int:
    """Run an operator command on the domain services; a domain error is one line on stderr
    and exit status 1 (2 for a request the domain refuses as invalid)."""
    if settings.database_is_embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        check_schema(settings)
    except SchemaOutOfDate:
        if not settings.database_is_embedded:
            raise
        migrate(settings)
    runtime = build_runtime(settings)
    try:
        if args.command in credentials.COMMANDS:
            return credentials.run(runtime.farm, args)
        return operators.run(runtime.farm, args)
    except ValidationError as error:
        print(f"farm: {error.message}", file=sys.stderr)
        return 2
    except DomainError as error:
        print(f"farm: {error.message}", file=sys.stderr)
        return 1
    finally:
        runtime.close()


def _safe_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import multiprocessing

    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings

    # Workers are spawned, not forked: this process holds SQLite connections (the embedded
    # queue's consumer), and a forked child inherits SQLite's in-memory lock state with them —
    # a worker forked while a consumer thread was mid-transaction saw its queue locked forever.
    multiprocessing.set_start_method("spawn", force=True)

    try:
        # Held until this process exits; only embedded stores are owned by one master.
        data_dir_lock = (
            hold_data_dir(settings.data_dir)
            if settings.database_is_embedded or settings.queue_is_embedded
            else None
        )
        check_port_free(settings.host, settings.port)
    except AlreadyServed as error:
        print(f"farm: {error}", file=sys.stderr)
        return 1
    if settings.database_is_embedded:
        migrate(settings)
    else:
        check_schema(settings)
    _bootstrap_admin(settings)
    forget_dead_processes_metrics(settings)
    # The WSGI workers are separate processes that read their settings from the environment.
    declared = Settings.declared()
    for name, value in _overrides(args).items():
        if value is not None:
            os.environ[declared[name].env] = str(value)
    consumer = None
    runtime = None
    if settings.queue_is_embedded:
        runtime = build_runtime(settings)  # creates the queue's tables before the web workers
        consumer = start_embedded_consumer(
            runtime.huey, settings.queue_workers, periodic=settings.periodic
        )
        if settings.periodic:
            start_watching(runtime.jobs)
    log.info(
        "farm master starting",
        extra={
            "address": f"http://{settings.host}:{settings.port}",
            "workers": settings.workers,
            "database": _safe_url(settings.database_url),
            "queue": _safe_url(settings.queue_url),
            "embedded_consumer": consumer is not None,
        },
    )
    try:
        Granian(
            # ASGI, so that a request reaches one of the FARM_THREADS threads only once its body
            # has arrived (farm_http.front); granian's WSGI reads the body on the thread.
            "farm_http.wsgi:front",
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            # uvloop (a dependency) when it is there: it halves the cost of handing each request
            # to a thread and back.
            loop=Loops.auto,
            workers=settings.workers,
            websockets=False,
            backpressure=settings.max_connections,
            # Also the keep-alive timeout: hyper times an idle connection's next headers.
            http1_settings=HTTP1Settings(
                header_read_timeout=round(settings.idle_timeout_seconds * 1000)
            ),
            log_access=False,
            respawn_failed_workers=True,
        ).serve()
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)
        if runtime is not None:
            runtime.close()
        if data_dir_lock is not None:
            data_dir_lock.close()
    return 0


def _bootstrap_admin(settings: Settings) -> None:
    """On a farm nobody can administer yet, create an admin token and leave it where only the
    account that runs the master can read it (the log says where, never what)."""
    secret = bootstrap_admin(settings)
    if secret is None:
        return
    path = credentials.write_admin_token(settings.data_dir, secret)
    log.warning(
        "this farm had no admin: created an admin token, readable only by this account",
        extra={"path": str(path)},
    )


def _worker(settings: Settings) -> int:
    check_schema(settings)
    runtime = build_runtime(settings)
    if runtime.huey.immediate:
        print(
            "farm: `farm worker` needs a real queue (FARM_QUEUE_URL), not immediate",
            file=sys.stderr,
        )
        return 2
    log.info(
        "farm worker starting",
        extra={"queue": _safe_url(settings.queue_url), "threads": settings.queue_workers},
    )
    try:
        if settings.periodic:
            start_watching(runtime.jobs)
        run_consumer(runtime.huey, settings.queue_workers, periodic=settings.periodic)
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
