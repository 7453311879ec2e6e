"""Settings, read from the environment (and command-line overrides) in one place.

Every problem is collected and reported at start-up, so a misconfigured master never half-starts.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from farm_domain.defaults import SoftwareDefaults

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_AGENT_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


class SettingsError(Exception):
    """One or more settings are invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@attrs.frozen
class Settings:
    data_dir: Path
    database_url: str
    queue_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 8
    queue_workers: int = 2
    default_agent_software: SoftwareDefaults = attrs.field(factory=SoftwareDefaults)
    farm_name: str | None = None
    trusted_proxies: tuple[Network, ...] = ()
    allow_loopback_agents: bool = True
    reconcile_grace_seconds: float = 30.0
    agent_networks: tuple[Network, ...] = ()
    log_level: str = "INFO"
    log_format: str = "json"
    access_log: str = "errors"
    slow_request_ms: float = 1000.0
    dashboard_refresh_seconds: int = 5
    max_log_bytes: int = 64 * 1024 * 1024
    max_update_bytes: int = 512 * 1024 * 1024
    ram_check: str = "free"
    max_failures_per_agent: int = 3
    agent_timeout_seconds: float = 1800.0
    poll_busy_seconds: float = 600.0
    poll_idle_seconds: float = 3600.0
    poll_offline_seconds: float = 7200.0
    agent_request_timeout: float = 10.0
    agent_retries: int = 3
    agent_retry_delay: float = 1.0
    assign_interval_minutes: int = 4
    watch_interval_seconds: float = 30.0
    periodic: bool = True

    @property
    def queue_is_embedded(self) -> bool:
        """The queue lives in a local file, so ``farm serve`` runs its consumer itself."""
        return self.queue_url.startswith("sqlite:///")

    @property
    def database_is_embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def load(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Settings from ``FARM_*`` variables; ``overrides`` (command-line flags) win when not None.

        Raises SettingsError listing every invalid value.
        """
        raw = {key: value for key, value in environ.items() if key.startswith("FARM_")}
        for name, value in overrides.items():
            if value is not None:
                raw["FARM_" + name.upper()] = str(value)
        reader = _Reader(raw)
        data_dir = Path(raw.get("FARM_DATA_DIR", "farm-data")).expanduser()
        settings = {
            "data_dir": data_dir,
            "database_url": raw.get("FARM_DATABASE_URL") or f"sqlite:///{data_dir / 'farm.db'}",
            "queue_url": raw.get("FARM_QUEUE_URL") or f"sqlite:///{data_dir / 'queue.db'}",
            "host": raw.get("FARM_HOST", "127.0.0.1"),
            "port": reader.integer("FARM_PORT", 8080, 1, 65535),
            "workers": reader.integer("FARM_WORKERS", 1, 1, 64),
            "threads": reader.integer("FARM_THREADS", 8, 1, 256),
            "queue_workers": reader.integer("FARM_QUEUE_WORKERS", 2, 1, 64),
            "default_agent_software": reader.software_defaults("FARM_DEFAULT_AGENT_SOFTWARE"),
            "farm_name": raw.get("FARM_NAME") or None,
            "trusted_proxies": reader.networks("FARM_TRUSTED_PROXIES", ""),
            "allow_loopback_agents": reader.boolean("FARM_ALLOW_LOOPBACK_AGENTS", True),
            "reconcile_grace_seconds": reader.number("FARM_RECONCILE_GRACE_SECONDS", 30.0, 0, 3600),
            "agent_networks": reader.networks("FARM_AGENT_NETWORKS", DEFAULT_AGENT_NETWORKS),
            "log_level": reader.choice(
                "FARM_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")
            ),
            "log_format": reader.choice("FARM_LOG_FORMAT", "json", ("json", "text")),
            "access_log": reader.choice("FARM_ACCESS_LOG", "errors", ("all", "errors", "off")),
            "slow_request_ms": reader.number("FARM_SLOW_REQUEST_MS", 1000, 0, 10**7),
            "dashboard_refresh_seconds": reader.integer("FARM_DASHBOARD_REFRESH", 5, 0, 3600),
            "max_log_bytes": reader.integer("FARM_MAX_LOG_BYTES", 64 * 1024 * 1024, 1, 2**40),
            "max_update_bytes": reader.integer(
                "FARM_MAX_UPDATE_BYTES", 512 * 1024 * 1024, 1, 2**40
            ),
            "ram_check": reader.choice("FARM_RAM_CHECK", "free", ("free", "allocation")),
            "max_failures_per_agent": reader.integer("FARM_MAX_FAILURES_PER_AGENT", 3, 1, 1000),
            "agent_timeout_seconds": reader.number("FARM_AGENT_TIMEOUT_SECONDS", 1800, 1, 10**7),
            "poll_busy_seconds": reader.number("FARM_POLL_BUSY_SECONDS", 600, 0, 10**7),
            "poll_idle_seconds": reader.number("FARM_POLL_IDLE_SECONDS", 3600, 0, 10**7),
            "poll_offline_seconds": reader.number("FARM_POLL_OFFLINE_SECONDS", 7200, 0, 10**7),
            "agent_request_timeout": reader.number("FARM_AGENT_REQUEST_TIMEOUT", 10, 0.01, 600),
            "agent_retries": reader.integer("FARM_AGENT_RETRIES", 3, 0, 20),
            "agent_retry_delay": reader.number("FARM_AGENT_RETRY_DELAY", 1.0, 0, 600),
            "assign_interval_minutes": reader.integer("FARM_ASSIGN_INTERVAL_MINUTES", 4, 1, 60),
            "watch_interval_seconds": reader.number("FARM_WATCH_INTERVAL_SECONDS", 30, 0.2, 3600),
            "periodic": reader.boolean("FARM_PERIODIC", True),
        }
        for key in ("FARM_DATABASE_URL", "FARM_QUEUE_URL"):
            value = str(settings[key.removeprefix("FARM_").lower()])
            if not value.startswith(_SCHEMES[key]):
                reader.problems.append(
                    f"{key}={value!r}: must start with one of {', '.join(_SCHEMES[key])}"
                )
        if reader.problems:
            raise SettingsError(reader.problems)
        return cls(**settings)


_SCHEMES = {
    "FARM_DATABASE_URL": ("sqlite:///", "postgresql://", "postgresql+psycopg://"),
    "FARM_QUEUE_URL": ("sqlite:///", "redis://", "rediss://", "unix://", "immediate"),
}


class _Reader:
    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        text = self.raw.get(key)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            self.problems.append(f"{key}={text!r}: must be a whole number")
            return default
        if not low <= value <= high:
            self.problems.append(f"{key}={text!r}: must be between {low} and {high}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        text = self.raw.get(key)
        if text is None or text == "":
            return default
        try:
            value = float(text)
        except ValueError:
            self.problems.append(f"{key}={text!r}: must be a number")
            return default
        if not low <= value <= high:
            self.problems.append(f"{key}={text!r}: must be between {low:g} and {high:g}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        text = self.raw.get(key)
        if text is None or text == "":
            return default
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{key}={text!r}: must be true or false")
        return default

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        text = self.raw.get(key, default)
        if text.upper() in choices or text.lower() in choices:
            return text.upper() if text.upper() in choices else text.lower()
        self.problems.append(f"{key}={text!r}: must be one of {', '.join(choices)}")
        return default

    def networks(self, key: str, default: str) -> tuple[Network, ...]:
        text = self.raw.get(key, default)
        networks = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                self.problems.append(f"{key}: {part!r} is not a network (CIDR such as 10.0.0.0/8)")
        return tuple(networks)

    def software_defaults(self, key: str) -> SoftwareDefaults:
        text = self.raw.get(key, "")
        if not text.strip():
            return SoftwareDefaults()
        try:
            return SoftwareDefaults.from_config(json.loads(text))
        except json.JSONDecodeError as error:
            self.problems.append(f"{key}: not valid JSON ({error})")
        except ValueError as error:
            self.problems.append(f"{key}: {error}")
        return SoftwareDefaults()
