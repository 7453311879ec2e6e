"""``farm``: serve the master, run queue workers, migrate the database."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence

from farm_adapters.composition import (
    SchemaOutOfDate,
    bootstrap_admin,
    build_runtime,
    check_schema,
    forget_dead_processes_metrics,
    metrics_directory,
    migrate,
)
from farm_adapters.logs import configure_logging
from farm_adapters.metrics import (
    MetricsPortUnavailable,
    WorkerMetricsServer,
    shared_directory,
    worker_directory,
)
from farm_adapters.queue import run_consumer, start_embedded_consumer, start_watching
from farm_adapters.settings import Settings, SettingsError, Whole
from farm_cli import credentials, local, operators
from farm_cli.arguments import InvalidArgument, agent_id
from farm_cli.single_master import AlreadyServed, check_port_free, hold_data_dir
from farm_client import ConfigurationError, FarmClient, FarmError, Unreachable
from farm_domain.access import Identity
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
_WORKER_FLAGS = (
    ("--concurrency", "queue_workers", "CONCURRENCY"),
    ("--metrics-port", "worker_metrics_port", "PORT"),
    ("--metrics-address", "worker_metrics_address", "ADDRESS"),
)
_FLAG_SETTINGS = tuple(name for _, name, _ in (*_SERVE_FLAGS, *_STORAGE_FLAGS, *_WORKER_FLAGS))
_OPERATOR_COMMANDS = (*operators.COMMANDS, *credentials.COMMANDS)
_REMOTE_FLAGS = ("url", "token")


def _add_operator_flags(parser: argparse.ArgumentParser, *, recurse: bool = True) -> None:
    """The flags every operator command takes, before or after its action: they are added to
    the command's parser and to each of its actions' (absent unless given, so that one given
    before the action survives the action's parser)."""
    present = parser._option_string_actions
    if "--url" not in present:
        parser.add_argument(
            "--url",
            default=argparse.SUPPRESS,
            help="ask the master at this address (FARM_URL) instead of opening its database",
        )
        parser.add_argument(
            "--token",
            default=argparse.SUPPRESS,
            help="the bearer token to send to --url (FARM_TOKEN)",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print the API's answer as JSON",
        )
    if "--database" not in present:
        _add_setting_flags(parser, _STORAGE_FLAGS)
    if not recurse:
        return
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_operator_flags(child)


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
    _add_operator_flags(parser, recurse=False)  # `farm --url URL jobs list`
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
    credentials.add_parsers(commands)
    for name in _OPERATOR_COMMANDS:
        _add_operator_flags(commands.choices[name])

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
    if args.command == "agent":  # flags before it: `farm --database X agent`
        print("farm: `farm agent` is its own program: give it no flags before it", file=sys.stderr)
        return 2
    misplaced = [f"--{name}" for name in (*_REMOTE_FLAGS, "json") if hasattr(args, name)]
    if misplaced and args.command not in _OPERATOR_COMMANDS:
        print(f"farm: {', '.join(misplaced)}: for the operator commands only", file=sys.stderr)
        return 2
    if args.command in _OPERATOR_COMMANDS:
        configure_logging("WARNING", "text")  # the command's output is what the operator reads
        return _quietly_on_closed_pipe(lambda: _operate(args))
    try:
        settings = _settings(args)
    except SettingsError as error:
        print(f"farm: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "serve":
            return _serve(args, settings)
        if args.command == "worker":
            return _worker(settings)
        migrate(settings)
        log.info("database upgraded", extra={"database": _safe_url(settings.database_url)})
        return 0
    except SchemaOutOfDate as error:
        print(f"farm: {error}", file=sys.stderr)
        return 2


def _quietly_on_closed_pipe(command: Callable[[], int]) -> int:
    """Run ``command``; when what reads its output stops reading (``farm jobs list | head``),
    stop printing without a traceback, as other command-line tools do (exit status 1)."""
    try:
        code = command()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that it cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


def _operate(args: argparse.Namespace) -> int:
    """Run an operator command: through a FarmClient on the master at ``--url``/FARM_URL, or
    (local mode) on the master's app built in this process on the configured storage. A
    refusal is one line on stderr: exit status 2 for an invalid request (400), 1 otherwise."""
    url = getattr(args, "url", None) or os.environ.get("FARM_URL") or None
    try:
        if url is not None:
            return _remote(args, url)
        try:
            settings = _settings(args)
        except SettingsError as error:
            print(f"farm: {error}", file=sys.stderr)
            return 2
        return _local(args, settings)
    except InvalidArgument as error:
        print(f"farm: {error.message}", file=sys.stderr)
        return 2
    except Unreachable as error:
        said = error.message.removeprefix("no answer from the master: ")
        print(f"farm: no answer from the master at {url}: {said}", file=sys.stderr)
        return 1
    except FarmError as error:
        print(f"farm: {error.message}", file=sys.stderr)
        return exit_status(error)
    except (local.NoFarm, SchemaOutOfDate) as error:
        print(f"farm: {error}", file=sys.stderr)
        return 2


def exit_status(error: FarmError) -> int:
    """The exit status of a refusal: 2 for an invalid request (or client configuration), 1 for
    anything else the farm refused (not found, forbidden, conflict) or could not answer."""
    if isinstance(error, ConfigurationError) or error.status in (400, 422):
        return 2
    return 1


def _local_only(args: argparse.Namespace) -> bool:
    return args.command in credentials.COMMANDS or (
        (args.command, getattr(args, "action", None)) in operators.LOCAL_ONLY
    )


def _remote(args: argparse.Namespace, url: str) -> int:
    given = [flag for flag, name, _ in _STORAGE_FLAGS if getattr(args, name, None) is not None]
    if given:
        raise InvalidArgument(
            f"{', '.join(given)}: for local mode (the master's own database), not with --url"
        )
    if _local_only(args):
        words = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        raise InvalidArgument(
            f"`farm {words}` has no API: run it on the master's machine, without --url or FARM_URL"
        )
    with FarmClient(url, getattr(args, "token", None)) as client:
        return operators.run(client, args)


def _local(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "token", None) is not None:
        raise InvalidArgument("--token is for a master reached with --url (FARM_URL)")
    with local.runtime(settings) as runtime:
        if _local_only(args):
            try:
                if args.command in credentials.COMMANDS:
                    return credentials.run(runtime.farm, args)
                return credentials.revoke_agent_token(runtime.farm, agent_id(args.agent_id))
            except ValidationError as error:
                print(f"farm: {error.message}", file=sys.stderr)
                return 2
            except DomainError as error:
                print(f"farm: {error.message}", file=sys.stderr)
                return 1
        operator = Identity.local_operator(getpass.getuser())
        with local.client(runtime, operator) as client:
            return operators.run(client, args)


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
    exposition = None
    port = settings.worker_metrics_port
    if port is not None:
        # Counted in a directory of its own (chosen before any metric is made), which no
        # master's scrape reads: each count is served once, here.
        directory = shared_directory(worker_directory(metrics_directory(settings)))
        try:
            exposition = WorkerMetricsServer(directory, settings.worker_metrics_address, port)
        except MetricsPortUnavailable as error:
            print(f"farm: --metrics-port (FARM_WORKER_METRICS_PORT): {error}", file=sys.stderr)
            return 2
        log.info("worker metrics served", extra={"address": exposition.url})
    try:
        return _consume(settings)
    finally:
        if exposition is not None:
            exposition.close()


def _consume(settings: Settings) -> int:
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
