"""Settings, read from the environment (and command-line overrides) in one place.

Each setting is declared once, as a field of ``Settings``: its ``FARM_*`` variable, how its text
is parsed and checked, its default (the field's default) and its help. ``Settings.load`` reads
the environment from these declarations, the CLI takes its flags' defaults and help from them,
and the composition root builds the domain's policies from the loaded values; nothing else
repeats a default.

Every problem is collected and reported at start-up, so a misconfigured master never half-starts.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs

from farm_domain.access import Role
from farm_domain.budgets import CreateRate
from farm_domain.defaults import SoftwareDefaults
from farm_domain.failures import MAX_POLICY_SECONDS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")


class SettingsError(Exception):
    """One or more settings are invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class Invalid(Exception):
    """A setting's text cannot be used; ``problems`` are whole messages naming the variable."""

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems = problems


# -- parsers: (variable, text) -> value, raising Invalid --------------------------------------


@attrs.frozen
class Whole:
    low: int
    high: int

    def __call__(self, key: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise Invalid(f"{key}={text!r}: must be a whole number") from None
        if not self.low <= value <= self.high:
            raise Invalid(f"{key}={text!r}: must be between {self.low} and {self.high}")
        return value


@attrs.frozen
class Number:
    low: float
    high: float

    def __call__(self, key: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise Invalid(f"{key}={text!r}: must be a number") from None
        if not self.low <= value <= self.high:
            raise Invalid(f"{key}={text!r}: must be between {self.low:g} and {self.high:g}")
        return value


@attrs.frozen
class TrueOrFalse:
    def __call__(self, key: str, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise Invalid(f"{key}={text!r}: must be true or false")


@attrs.frozen
class OneOf:
    """One of ``choices``, in any case; the value is spelled as the choice is."""

    choices: tuple[str, ...]

    def __call__(self, key: str, text: str) -> str:
        for spelled in (text.upper(), text.lower()):
            if spelled in self.choices:
                return spelled
        raise Invalid(f"{key}={text!r}: must be one of {', '.join(self.choices)}")


@attrs.frozen
class Networks:
    """Comma-separated CIDRs; every bad one is a problem of its own."""

    def __call__(self, key: str, text: str) -> tuple[Network, ...]:
        networks, problems = [], []
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                problems.append(f"{key}: {part!r} is not a network (CIDR such as 10.0.0.0/8)")
        if problems:
            raise Invalid(*problems)
        return tuple(networks)


@attrs.frozen
class RoleName:
    def __call__(self, key: str, text: str) -> Role:
        try:
            return Role.parse(text.strip().lower())
        except ValueError as error:
            raise Invalid(f"{key}: {error}") from None


MAX_HOST_NAME = 253


@attrs.frozen
class HostNames:
    """Comma-separated host names or addresses as a ``Host`` header names them (no port,
    no scheme), lower-cased; ``*`` is any. Every bad one is a problem of its own."""

    def __call__(self, key: str, text: str) -> tuple[str, ...]:
        names, problems = [], []
        for part in filter(None, (p.strip() for p in text.split(","))):
            name = part.lower().rstrip(".")
            if name.startswith("[") and name.endswith("]"):
                name = name[1:-1]
            if name == "*":
                names.append(name)
                continue
            try:
                names.append(str(ipaddress.ip_address(name)))
                continue
            except ValueError:
                pass
            if (
                not name
                or len(name) > MAX_HOST_NAME
                or any(not (c.isalnum() or c in "-._") for c in name)
            ):
                problems.append(
                    f"{key}: {part[:MAX_HOST_NAME]!r} is not a host name "
                    "(a name or address without scheme or port, such as farm.example.com)"
                )
            else:
                names.append(name)
        if problems:
            raise Invalid(*problems)
        if not names:
            raise Invalid(f"{key}: names no host (use * to allow any)")
        return tuple(names)


def _default_allowed_hosts(settings: Settings) -> tuple[str, ...]:
    names = []
    for name in (settings.host, "localhost", "127.0.0.1", "::1"):
        bare = name.lower().strip("[]")
        if bare not in names:
            names.append(bare)
    return tuple(names)


@attrs.frozen
class SoftwareDefaultsJson:
    """A JSON list of ``{"software": ..., "version": ...}``; blank is none."""

    def __call__(self, key: str, text: str) -> SoftwareDefaults:
        if not text.strip():
            return SoftwareDefaults()
        try:
            return SoftwareDefaults.from_config(json.loads(text))
        except json.JSONDecodeError as error:
            raise Invalid(f"{key}: not valid JSON ({error})") from None
        except ValueError as error:
            raise Invalid(f"{key}: {error}") from None


@attrs.frozen
class Text:
    def __call__(self, key: str, text: str) -> str:
        return text


@attrs.frozen
class SecretText:
    """A secret of at least ``minimum`` characters; messages never repeat it."""

    minimum: int

    def __call__(self, key: str, text: str) -> str:
        secret = text.strip()
        if len(secret) < self.minimum:
            raise Invalid(
                f"{key}: must be at least {self.minimum} characters (it has {len(secret)}); "
                f"`python3 -c 'import secrets; print(secrets.token_hex(32))'` makes one"
            )
        return secret


MAX_QUEUE_NAME = 64


@attrs.frozen
class QueueName:
    """Letters, digits, ``-``, ``_`` and ``.``: the queue's keys in Redis are named after it."""

    def __call__(self, key: str, text: str) -> str:
        name = text.strip()
        if (
            not name
            or len(name) > MAX_QUEUE_NAME
            or any(not (c.isascii() and (c.isalnum() or c in "-_.")) for c in name)
        ):
            raise Invalid(
                f"{key}={text[:MAX_QUEUE_NAME]!r}: must be 1 to {MAX_QUEUE_NAME} letters, "
                "digits, '-', '_' or '.'"
            )
        return name


@attrs.frozen
class IpAddress:
    """An IPv4 or IPv6 address (not a host name: what a socket binds to), as Python spells it."""

    def __call__(self, key: str, text: str) -> str:
        try:
            return str(ipaddress.ip_address(text.strip()))
        except ValueError:
            raise Invalid(
                f"{key}={text!r}: must be an IP address such as 127.0.0.1, 0.0.0.0 or ::1"
            ) from None


@attrs.frozen
class Directory:
    def __call__(self, key: str, text: str) -> Path:
        return Path(text).expanduser()


@attrs.frozen
class Url:
    schemes: tuple[str, ...]

    def __call__(self, key: str, text: str) -> str:
        if not text.startswith(self.schemes):
            raise Invalid(f"{key}={text!r}: must start with one of {', '.join(self.schemes)}")
        return text


# -- declarations -----------------------------------------------------------------------------


@attrs.frozen
class Declaration(Generic[T]):
    """How one setting is read and explained. Its default is the ``Settings`` field's default.

    ``shown`` is the default as help prints it. ``blank_is_default``: an empty variable means
    the default (otherwise the empty text is parsed like any other).
    """

    env: str
    parse: Callable[[str, str], T]
    help: str
    shown: str
    blank_is_default: bool = True


@attrs.frozen
class Declared:
    """A setting as the CLI and the help show it."""

    name: str
    env: str
    parse: Callable[[str, str], object]
    help: str
    default: str


_DECLARATION = "farm.setting"


def setting(
    env: str,
    parse: Callable[[str, str], T],
    default: T,
    help: str,
    *,
    shown: str | None = None,
    blank_is_default: bool = True,
    secret: bool = False,
) -> T:
    """A ``Settings`` field read from ``env``; ``shown`` is needed when ``default`` is a factory
    or is not how people write it; a ``secret`` is left out of the settings' repr."""
    declaration = Declaration(env, parse, help, _shown(default, shown), blank_is_default)
    return attrs.field(default=default, repr=not secret, metadata={_DECLARATION: declaration})


def _shown(default: object, shown: str | None) -> str:
    if shown is not None:
        return shown
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # attrs types Factory as the value it makes
        raise TypeError("a setting whose default is a factory says how it is shown")
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return f"{default:g}"
    return "none" if default is None else str(default)


def _embedded(file_name: str) -> str:
    """The default URL of an embedded store: a SQLite file in the data directory."""
    return attrs.Factory(lambda s: f"sqlite:///{s.data_dir / file_name}", takes_self=True)


_MIB = 1024 * 1024
MAX_CREATE_WINDOW = 86_400
LOGIN_WINDOW_SECONDS = 900
FARM_AGENT_HEARTBEAT = 30.0
"""The farm agent's default seconds between heartbeats (``farm agent --heartbeat``; adapters
may not import the agent, and a test holds the two equal)."""
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_LOOPBACK_AND_PRIVATE = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    )
)


@attrs.frozen(kw_only=True)
class Settings:
    """The master's settings; each field is declared with its variable, parser, default and help.

    The fields are read in this order, so problems are listed in it (the URLs last: their
    defaults derive from the data directory).
    """

    data_dir: Path = setting(  # noqa: RUF009  # setting() is attrs.field with its declaration
        "FARM_DATA_DIR",
        Directory(),
        Path("farm-data"),
        "where embedded files live",
        shown="./farm-data",
        blank_is_default=False,
    )
    host: str = setting(
        "FARM_HOST", Text(), "127.0.0.1", "address to listen on", blank_is_default=False
    )
    port: int = setting("FARM_PORT", Whole(1, 65535), 8080, "port to listen on")
    workers: int = setting("FARM_WORKERS", Whole(1, 64), 1, "WSGI worker processes")
    threads: int = setting(
        "FARM_THREADS",
        Whole(1, 256),
        8,
        "threads per worker, also the database pool size",
    )
    idle_timeout_seconds: float = setting(
        "FARM_IDLE_TIMEOUT_SECONDS",
        Number(0.5, 3600),
        30.0,
        "a connection idle after a response, or still sending its request's headers, for this "
        "long is closed",
    )
    body_timeout_seconds: float = setting(
        "FARM_BODY_TIMEOUT_SECONDS",
        Number(0.5, 3600),
        30.0,
        "a request whose body sends nothing for this long is answered 408 and closed (bodies "
        "are received in full before a thread sees the request)",
    )
    max_connections: int = setting(
        "FARM_MAX_CONNECTIONS",
        Whole(1, 100_000),
        1024,
        "connections each worker serves at once; further ones wait to be accepted",
    )
    queue_workers: int = setting("FARM_QUEUE_WORKERS", Whole(1, 64), 2, "queue consumer threads")
    default_agent_software: SoftwareDefaults = setting(  # noqa: RUF009  # as data_dir
        "FARM_DEFAULT_AGENT_SOFTWARE",
        SoftwareDefaultsJson(),
        attrs.Factory(SoftwareDefaults),
        'JSON list of {"software": ..., "version": ...} attached to every new agent',
        shown="[]",
    )
    farm_name: str | None = setting(
        "FARM_NAME",
        Text(),
        None,
        "when set, agents announcing another farm_name are refused",
    )
    trusted_proxies: tuple[Network, ...] = setting(
        "FARM_TRUSTED_PROXIES",
        Networks(),
        (),
        "comma-separated CIDRs whose X-Forwarded-For is believed",
        shown="none",
        blank_is_default=False,
    )
    allowed_hosts: tuple[str, ...] = setting(
        "FARM_ALLOWED_HOSTS",
        HostNames(),
        attrs.Factory(_default_allowed_hosts, takes_self=True),
        "comma-separated names the master answers to in the Host header (others: 400); "
        "* allows any, which re-opens DNS rebinding",
        shown="FARM_HOST and loopback names",
    )
    anonymous_networks: tuple[Network, ...] = setting(
        "FARM_ANONYMOUS_NETWORKS",
        Networks(),
        (),
        "comma-separated CIDRs whose requests without a token act as FARM_ANONYMOUS_ROLE",
        shown="none",
    )
    metrics_networks: tuple[Network, ...] = setting(
        "FARM_METRICS_NETWORKS",
        Networks(),
        _LOOPBACK,
        "comma-separated CIDRs that may read /metrics without a token (elsewhere: a token "
        "that may read the farm); empty: a token everywhere",
        shown="loopback",
        blank_is_default=False,
    )
    anonymous_role: Role = setting(  # noqa: RUF009  # as data_dir
        "FARM_ANONYMOUS_ROLE",
        RoleName(),
        Role.AGENT,
        "the role of requests without a token from FARM_ANONYMOUS_NETWORKS",
        shown="agent",
    )
    allow_loopback_agents: bool = setting(
        "FARM_ALLOW_LOOPBACK_AGENTS",
        TrueOrFalse(),
        True,
        "accept 127.0.0.1/::1 as an agent's remote_ip",
    )
    reconcile_grace_seconds: float = setting(
        "FARM_RECONCILE_GRACE_SECONDS",
        Number(0, 3600),
        30.0,
        "a task sent more recently than this is not failed for missing from an agent's report",
    )
    agent_networks: tuple[Network, ...] = setting(
        "FARM_AGENT_NETWORKS",
        Networks(),
        _LOOPBACK_AND_PRIVATE,
        "CIDRs the master may call agents in",
        shown="loopback and private ranges",
        blank_is_default=False,
    )
    secret_key: str | None = setting(
        "FARM_SECRET_KEY",
        SecretText(32),
        None,
        "the master's secret (32 characters or more), from which each farm agent's signing key "
        "is derived; every process of one master needs the same",
        shown="<data dir>/secret-key",
        secret=True,
    )
    log_level: str = setting(
        "FARM_LOG_LEVEL",
        OneOf(("DEBUG", "INFO", "WARNING", "ERROR")),
        "INFO",
        "logs go to stderr",
        blank_is_default=False,
    )
    log_format: str = setting(
        "FARM_LOG_FORMAT",
        OneOf(("json", "text")),
        "json",
        "one JSON object a line, or text",
        blank_is_default=False,
    )
    access_log: str = setting(
        "FARM_ACCESS_LOG",
        OneOf(("all", "errors", "off")),
        "errors",
        "access-log lines: all requests, only errors (4xx/5xx) and slow requests, or off",
        blank_is_default=False,
    )
    slow_request_ms: float = setting(
        "FARM_SLOW_REQUEST_MS",
        Number(0, 10**7),
        1000.0,
        "requests slower than this are logged as warnings",
    )
    dashboard_refresh_seconds: int = setting(
        "FARM_DASHBOARD_REFRESH",
        Whole(0, 3600),
        5,
        "seconds between the dashboard pages' reloads of themselves; 0 turns it off",
    )
    dashboard_live_seconds: float = setting(
        "FARM_DASHBOARD_LIVE_SECONDS",
        Number(1, 3600),
        300.0,
        "seconds a dashboard page's live-update stream lasts before its browser reconnects",
    )
    secure_cookies: bool = setting(
        "FARM_SECURE_COOKIES",
        TrueOrFalse(),
        False,
        "mark the dashboard's session cookie Secure (sent over https only) even on requests "
        "that reached the master over http (behind a proxy that terminates TLS); requests "
        "over https get it anyway",
    )
    max_json_bytes: int = setting(
        "FARM_MAX_JSON_BYTES",
        Whole(1, 2**40),
        _MIB,
        "largest JSON request body (larger: 413, refused before it is read)",
        shown="1 MiB",
    )
    max_log_bytes: int = setting(
        "FARM_MAX_LOG_BYTES",
        Whole(1, 2**40),
        64 * _MIB,
        "largest task log upload (larger: 413)",
        shown="64 MiB",
    )
    max_update_bytes: int = setting(
        "FARM_MAX_UPDATE_BYTES",
        Whole(1, 2**40),
        512 * _MIB,
        "largest agent update archive (larger: 413)",
        shown="512 MiB",
    )
    max_files_bytes: int = setting(
        "FARM_MAX_FILES_BYTES",
        Whole(1, 2**50),
        20 * 1024 * _MIB,
        "disk budget for all task logs and update archives together (full: 507)",
        shown="20 GiB",
    )
    create_rate_per_second: float = setting(
        "FARM_CREATE_RATE",
        Number(0, 10**6),
        20.0,
        "creates (agents, jobs, software, job types, logs, uploads) each client may make a "
        "second on average: at most FARM_CREATE_BURST in any BURST/RATE seconds; 0 turns the "
        "limit off",
    )
    create_burst: int = setting(
        "FARM_CREATE_BURST",
        Whole(0, 10**6),
        2000,
        "creates each client may make at once (more within BURST/RATE seconds: 429); "
        "0 turns the limit off",
    )
    login_failures: int = setting(
        "FARM_LOGIN_FAILURES",
        Whole(0, 10**6),
        10,
        f"failed dashboard logins allowed per user name and per address in any "
        f"{LOGIN_WINDOW_SECONDS // 60} minutes (more: 429 until the oldest leaves the window); "
        "0 turns the limit off",
    )
    ram_check: str = setting(
        "FARM_RAM_CHECK",
        OneOf(("free", "allocation")),
        "free",
        "a job's ram is compared with the agent's free_ram, or with ram x ram_allocation",
        blank_is_default=False,
    )
    max_failures_per_agent: int = setting(
        "FARM_MAX_FAILURES_PER_AGENT",
        Whole(1, 1000),
        3,
        "an agent that failed this many tasks of a job is not offered the job again",
    )
    max_run_seconds: int = setting(
        "FARM_MAX_RUN_SECONDS",
        Whole(0, MAX_POLICY_SECONDS),
        0,
        "a frame of a job without its own max_run_seconds is killed by the farm agent after "
        "running this long and fails with reason timeout; 0: no limit",
    )
    stall_seconds: int = setting(
        "FARM_STALL_SECONDS",
        Whole(0, MAX_POLICY_SECONDS),
        0,
        "a frame of a job without its own stall_seconds that writes no output for this long is "
        "killed by the farm agent and fails with reason stalled; 0: no limit",
    )
    retry_delay_seconds: float = setting(
        "FARM_RETRY_DELAY_SECONDS",
        Number(0, 86400),
        15.0,
        "a task requeued after its n-th failure waits this x 2^(n-1) seconds before it is "
        "offered again (the agent that failed it: twice that); 0 offers it at once",
    )
    retry_delay_max_seconds: float = setting(
        "FARM_RETRY_DELAY_MAX_SECONDS",
        Number(1, 10**6),
        600.0,
        "the longest retry back-off; at least FARM_RETRY_DELAY_SECONDS",
    )
    block_expiry_seconds: float = setting(
        "FARM_BLOCK_EXPIRY_SECONDS",
        Number(0, 10**7),
        1800.0,
        "an agent kept away from a job for its failures is offered it again after this long "
        "(from its last failure); 0: only requeue or unblock lifts the block",
    )
    stuck_job_seconds: float = setting(
        "FARM_STUCK_JOB_SECONDS",
        Number(0, 10**7),
        300.0,
        "a job that every online agent able to run it is kept away from fails after this long "
        "(from the last of them being blocked); 0: it waits. Shorter than "
        "FARM_BLOCK_EXPIRY_SECONDS",
    )
    agent_timeout_seconds: float = setting(
        "FARM_AGENT_TIMEOUT_SECONDS",
        Number(1, 10**7),
        1800.0,
        "an agent neither heard from nor polled for this long goes offline without a poll "
        "(reachable agents are polled at FARM_AGENT_SILENCE_SECONDS first); at least that",
    )
    agent_silence_seconds: float = setting(
        "FARM_AGENT_SILENCE_SECONDS",
        Number(1, 10**7),
        90.0,
        "an agent (busy, idle or disabled) silent for this long is polled at once; if the poll "
        "fails it goes offline and its tasks are requeued. More than the farm agent's "
        f"{FARM_AGENT_HEARTBEAT:g} s heartbeat",
    )
    poll_busy_seconds: float = setting(
        "FARM_POLL_BUSY_SECONDS",
        Number(0, 10**7),
        600.0,
        "busy agents silent for this long are polled (the silence limit, if shorter, first)",
    )
    poll_idle_seconds: float = setting(
        "FARM_POLL_IDLE_SECONDS",
        Number(0, 10**7),
        3600.0,
        "idle agents silent for this long are polled (the silence limit, if shorter, first)",
    )
    poll_offline_seconds: float = setting(
        "FARM_POLL_OFFLINE_SECONDS",
        Number(0, 10**7),
        7200.0,
        "offline agents are polled this often",
    )
    agent_request_timeout: float = setting(
        "FARM_AGENT_REQUEST_TIMEOUT",
        Number(0.01, 600),
        10.0,
        "seconds for each call to an agent",
    )
    agent_connect_timeout: float = setting(
        "FARM_AGENT_CONNECT_TIMEOUT",
        Number(0.01, 600),
        2.0,
        "seconds to connect to an agent; a connection that fails is not retried in the call",
    )
    agent_retries: int = setting(
        "FARM_AGENT_RETRIES",
        Whole(0, 20),
        3,
        "retries of a call to an agent that connected but got no answer",
    )
    agent_retry_delay: float = setting(
        "FARM_AGENT_RETRY_DELAY",
        Number(0, 600),
        1.0,
        "seconds before the first retry; each next one waits twice as long",
        shown="1.0",
    )
    heartbeat_flush_seconds: float = setting(
        "FARM_HEARTBEAT_FLUSH_SECONDS",
        Number(0, 60),
        1.0,
        "each web worker writes heartbeats' soft state (last_heard_from, free_ram, time_offset) "
        "and idle agents' requests for work in batches this often; 0 writes each at once",
    )
    assign_interval_minutes: int = setting(
        "FARM_ASSIGN_INTERVAL_MINUTES",
        Whole(1, 60),
        4,
        "the periodic assignment sweep (besides the triggers)",
    )
    watch_interval_seconds: float = setting(
        "FARM_WATCH_INTERVAL_SECONDS",
        Number(0.2, 3600),
        30.0,
        "the liveness sweep (silent agents, polls)",
    )
    periodic: bool = setting(
        "FARM_PERIODIC",
        TrueOrFalse(),
        True,
        "whether this process runs the periodic sweeps",
    )
    worker_metrics_port: int | None = setting(
        "FARM_WORKER_METRICS_PORT",
        Whole(1, 65535),
        None,
        "`farm worker` serves its own counters (never the farm's state) on GET /metrics at "
        "this port; none: not served",
    )
    worker_metrics_address: str = setting(
        "FARM_WORKER_METRICS_ADDRESS",
        IpAddress(),
        "127.0.0.1",
        "the IP address `farm worker` serves its metrics on",
    )
    database_url: str = setting(
        "FARM_DATABASE_URL",
        Url(("sqlite:///", "postgresql://", "postgresql+psycopg://")),
        _embedded("farm.db"),
        "sqlite:///path or postgresql://...",
        shown="sqlite:///<data dir>/farm.db",
    )
    queue_url: str = setting(
        "FARM_QUEUE_URL",
        Url(("sqlite:///", "redis://", "rediss://", "unix://", "immediate")),
        _embedded("queue.db"),
        "sqlite:///path, redis://host:port/db or immediate",
        shown="sqlite:///<data dir>/queue.db",
    )

    queue_name: str = setting(
        "FARM_QUEUE_NAME",
        QueueName(),
        "farm",
        "the queue's name: masters sharing one Redis need different names",
    )

    @property
    def queue_is_embedded(self) -> bool:
        """The queue lives in a local file, so ``farm serve`` runs its consumer itself."""
        return self.queue_url.startswith("sqlite:///")

    @property
    def create_rate(self) -> CreateRate:
        return CreateRate(self.create_rate_per_second, self.create_burst)

    @property
    def login_rate(self) -> CreateRate:
        """FARM_LOGIN_FAILURES failed logins in any LOGIN_WINDOW_SECONDS."""
        return CreateRate(self.login_failures / LOGIN_WINDOW_SECONDS, self.login_failures)

    @property
    def database_is_embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def declared(cls) -> dict[str, Declared]:
        """Every setting by field name, in the order they are read."""
        found = {}
        for field in attrs.fields(cls):
            declaration = _declaration(field)
            found[field.name] = Declared(
                field.name, declaration.env, declaration.parse, declaration.help, declaration.shown
            )
        return found

    @classmethod
    def load(cls, environ: Mapping[str, str], **overrides: object) -> Settings:
        """Settings from ``FARM_*`` variables; ``overrides`` (command-line flags, by field name)
        win when not None.

        Raises SettingsError listing every invalid value.
        """
        raw = {key: value for key, value in environ.items() if key.startswith("FARM_")}
        for name, value in overrides.items():
            if value is not None:
                raw[_declaration(attrs.fields_dict(cls)[name]).env] = str(value)
        values: dict[str, Any] = {}  # one value of each field's own type
        problems: list[str] = []
        for field in attrs.fields(cls):
            declaration = _declaration(field)
            text = raw.get(declaration.env)
            if text is None or (text == "" and declaration.blank_is_default):
                continue  # the field's default
            try:
                values[field.name] = declaration.parse(declaration.env, text)
            except Invalid as error:
                problems.extend(error.problems)
        if problems:
            raise SettingsError(problems)
        settings = cls(**values)
        if problems := settings.contradictions():
            raise SettingsError(problems)
        return settings

    def contradictions(self) -> list[str]:
        """Problems of settings that are valid alone but not together."""
        problems = []
        if self.agent_silence_seconds <= FARM_AGENT_HEARTBEAT:
            problems.append(
                f"FARM_AGENT_SILENCE_SECONDS={self.agent_silence_seconds:g}: must exceed the farm "
                f"agent's heartbeat interval ({FARM_AGENT_HEARTBEAT:g} s), or healthy agents "
                "would be polled between every two heartbeats and dropped when one poll fails"
            )
        if self.agent_silence_seconds <= self.heartbeat_flush_seconds:
            problems.append(
                f"FARM_AGENT_SILENCE_SECONDS={self.agent_silence_seconds:g}: must exceed "
                f"FARM_HEARTBEAT_FLUSH_SECONDS={self.heartbeat_flush_seconds:g}, or agents "
                "whose heartbeats wait in a batch would be taken for silent"
            )
        if self.agent_timeout_seconds < self.agent_silence_seconds:
            problems.append(
                f"FARM_AGENT_TIMEOUT_SECONDS={self.agent_timeout_seconds:g}: must not be below "
                f"FARM_AGENT_SILENCE_SECONDS={self.agent_silence_seconds:g}, or silent agents "
                "would go offline without the poll that lets a live one answer"
            )
        if self.heartbeat_flush_seconds >= self.agent_timeout_seconds:
            problems.append(
                f"FARM_HEARTBEAT_FLUSH_SECONDS={self.heartbeat_flush_seconds:g}: must be shorter "
                f"than FARM_AGENT_TIMEOUT_SECONDS={self.agent_timeout_seconds:g}, or agents "
                "heard from would time out before their heartbeats are written"
            )
        if self.retry_delay_max_seconds < self.retry_delay_seconds:
            problems.append(
                f"FARM_RETRY_DELAY_MAX_SECONDS={self.retry_delay_max_seconds:g}: must not be "
                f"below FARM_RETRY_DELAY_SECONDS={self.retry_delay_seconds:g}, the first "
                "back-off it caps"
            )
        if 0 < self.block_expiry_seconds <= self.stuck_job_seconds:
            problems.append(
                f"FARM_STUCK_JOB_SECONDS={self.stuck_job_seconds:g}: must be shorter than "
                f"FARM_BLOCK_EXPIRY_SECONDS={self.block_expiry_seconds:g} (or either 0), or "
                "blocks would lift before a job that every agent fails is found stuck"
            )
        window = self.create_rate.window_seconds
        if window > MAX_CREATE_WINDOW:
            problems.append(
                f"FARM_CREATE_BURST / FARM_CREATE_RATE: a client who spent its burst would wait "
                f"{window} s, more than a day; raise FARM_CREATE_RATE or lower FARM_CREATE_BURST"
            )
        return problems


def _declaration(field: attrs.Attribute[Any]) -> Declaration[object]:
    declaration: Declaration[object] = field.metadata[_DECLARATION]
    return declaration
