"""Settings come from the environment and flags, and every bad value is reported at once."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from farm_adapters import composition
from farm_adapters.settings import Settings, SettingsError
from farm_domain.access import Role


def test_defaults_are_the_embedded_farm() -> None:
    settings = Settings.load({})
    assert settings.data_dir == Path("farm-data")
    assert settings.database_url == "sqlite:///farm-data/farm.db"
    assert settings.queue_url == "sqlite:///farm-data/queue.db"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 1)
    assert settings.queue_is_embedded and settings.database_is_embedded
    assert settings.allow_loopback_agents
    assert settings.reconcile_grace_seconds == 30
    assert ipaddress.ip_network("192.168.0.0/16") in settings.agent_networks
    assert (settings.access_log, settings.slow_request_ms) == ("errors", 1000)
    assert settings.dashboard_refresh_seconds == 5


def test_flags_override_the_environment() -> None:
    settings = Settings.load(
        {"FARM_PORT": "9000", "FARM_DATA_DIR": "/srv/farm"}, port=9100, database_url=None
    )
    assert settings.port == 9100
    assert settings.database_url == "sqlite:////srv/farm/farm.db"


def test_every_problem_is_reported_with_its_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.load(
            {
                "FARM_PORT": "eighty",
                "FARM_WORKERS": "0",
                "FARM_ALLOW_LOOPBACK_AGENTS": "maybe",
                "FARM_RECONCILE_GRACE_SECONDS": "-1",
                "FARM_AGENT_NETWORKS": "10.0.0.0/8,lan",
                "FARM_DEFAULT_AGENT_SOFTWARE": '[{"software": "blender"}]',
                "FARM_DATABASE_URL": "mysql://x",
                "FARM_QUEUE_URL": "amqp://x",
                "FARM_LOG_LEVEL": "chatty",
                "FARM_ACCESS_LOG": "some",
                "FARM_DASHBOARD_REFRESH": "-5",
            }
        )
    problems = "\n".join(caught.value.problems)
    for expected in (
        "FARM_PORT='eighty'",
        "FARM_WORKERS='0'",
        "FARM_ALLOW_LOOPBACK_AGENTS",
        "FARM_RECONCILE_GRACE_SECONDS",
        "'lan' is not a network",
        "FARM_DEFAULT_AGENT_SOFTWARE: item 0",
        "FARM_DATABASE_URL='mysql://x'",
        "FARM_QUEUE_URL='amqp://x'",
        "FARM_LOG_LEVEL",
        "FARM_ACCESS_LOG='some'",
        "FARM_DASHBOARD_REFRESH='-5'",
    ):
        assert expected in problems
    assert len(caught.value.problems) == 11


def test_default_agent_software_must_be_a_json_list() -> None:
    with pytest.raises(SettingsError, match="not valid JSON"):
        Settings.load({"FARM_DEFAULT_AGENT_SOFTWARE": "blender=2.79"})
    with pytest.raises(SettingsError, match="must be a JSON list"):
        Settings.load({"FARM_DEFAULT_AGENT_SOFTWARE": '{"software": "blender"}'})
    settings = Settings.load(
        {"FARM_DEFAULT_AGENT_SOFTWARE": '[{"software": "blender", "version": "2.79"}]'}
    )
    assert [(d.software, d.version) for d in settings.default_agent_software.defaults] == [
        ("blender", "2.79")
    ]


def test_the_readme_lists_every_setting_with_its_declared_default() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    listed: dict[str, str] = {}
    for row in readme.splitlines():
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        names = re.findall(r"`(FARM_\w+)`", cells[0]) if row.startswith("| `FARM_") else []
        defaults = [d.strip().strip("`") for d in cells[2].split(", ")] if names else []
        listed.update(zip(names, defaults, strict=True))
    declared = {s.env: s.default for s in Settings.declared().values()}
    assert listed == declared


def test_trust_settings_default_to_no_anonymous_access_and_loopback_hosts() -> None:
    settings = Settings.load({})
    assert settings.anonymous_networks == ()
    assert settings.anonymous_role is Role.AGENT
    assert settings.allowed_hosts == ("127.0.0.1", "localhost", "::1")
    bound = Settings.load({"FARM_HOST": "Farm.Studio.Lan"})
    assert bound.allowed_hosts == ("farm.studio.lan", "localhost", "127.0.0.1", "::1")


def test_trust_settings_are_read_and_checked() -> None:
    settings = Settings.load(
        {
            "FARM_ANONYMOUS_NETWORKS": "10.1.0.0/16, ::1/128",
            "FARM_ANONYMOUS_ROLE": "Wrangler",
            "FARM_ALLOWED_HOSTS": "farm.lan., [::1], 10.0.0.2",
        }
    )
    assert settings.anonymous_networks == (
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("::1/128"),
    )
    assert settings.anonymous_role is Role.WRANGLER
    assert settings.allowed_hosts == ("farm.lan", "::1", "10.0.0.2")
    assert Settings.load({"FARM_ALLOWED_HOSTS": "*"}).allowed_hosts == ("*",)
    with pytest.raises(SettingsError) as caught:
        Settings.load(
            {
                "FARM_ANONYMOUS_NETWORKS": "lan",
                "FARM_ANONYMOUS_ROLE": "root",
                "FARM_ALLOWED_HOSTS": "farm.lan:8080,http://farm,ok",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "FARM_ANONYMOUS_NETWORKS: 'lan' is not a network" in problems
    assert "FARM_ANONYMOUS_ROLE: `root` is not a role" in problems
    assert "FARM_ALLOWED_HOSTS: 'farm.lan:8080' is not a host name" in problems
    assert "FARM_ALLOWED_HOSTS: 'http://farm' is not a host name" in problems
    assert len(caught.value.problems) == 4
    with pytest.raises(SettingsError, match="names no host"):
        Settings.load({"FARM_ALLOWED_HOSTS": " , "})


def test_create_limit_settings_are_read_and_checked() -> None:
    default = Settings.load({}).create_rate
    assert (default.per_second, default.burst, default.window_seconds) == (20, 2000, 100)
    read = Settings.load({"FARM_CREATE_RATE": "2.5", "FARM_CREATE_BURST": "10"}).create_rate
    assert (read.limited, read.window_seconds) == (True, 4)
    assert not Settings.load({"FARM_CREATE_RATE": "0"}).create_rate.limited
    assert not Settings.load({"FARM_CREATE_BURST": "0"}).create_rate.limited
    with pytest.raises(SettingsError) as caught:
        Settings.load({"FARM_CREATE_RATE": "-1", "FARM_CREATE_BURST": "many"})
    problems = "\n".join(caught.value.problems)
    assert "FARM_CREATE_RATE='-1': must be between 0 and" in problems
    assert "FARM_CREATE_BURST='many': must be a whole number" in problems
    # 1,000,000 creates at 0.001 a second: a spent client would wait for years.
    with pytest.raises(SettingsError, match="FARM_CREATE_BURST / FARM_CREATE_RATE"):
        Settings.load({"FARM_CREATE_RATE": "0.001", "FARM_CREATE_BURST": "1000000"})


def test_the_body_timeout_is_a_positive_number_of_seconds() -> None:
    assert Settings.load({}).body_timeout_seconds == 30
    assert Settings.load({"FARM_BODY_TIMEOUT_SECONDS": "2.5"}).body_timeout_seconds == 2.5
    for bad in ("0", "-1", "nan", "soon", "1e9"):
        with pytest.raises(SettingsError, match="FARM_BODY_TIMEOUT_SECONDS"):
            Settings.load({"FARM_BODY_TIMEOUT_SECONDS": bad})


def test_the_heartbeat_flush_interval_is_checked_and_shorter_than_the_agent_timeout() -> None:
    assert Settings.load({}).heartbeat_flush_seconds == 1.0
    assert Settings.load({"FARM_HEARTBEAT_FLUSH_SECONDS": "0"}).heartbeat_flush_seconds == 0
    with pytest.raises(
        SettingsError, match="FARM_HEARTBEAT_FLUSH_SECONDS='soon': must be a number"
    ):
        Settings.load({"FARM_HEARTBEAT_FLUSH_SECONDS": "soon"})
    with pytest.raises(SettingsError, match="FARM_HEARTBEAT_FLUSH_SECONDS='61': must be between"):
        Settings.load({"FARM_HEARTBEAT_FLUSH_SECONDS": "61"})
    with pytest.raises(SettingsError, match="must be shorter than FARM_AGENT_TIMEOUT_SECONDS=5"):
        Settings.load({"FARM_HEARTBEAT_FLUSH_SECONDS": "5", "FARM_AGENT_TIMEOUT_SECONDS": "5"})


def test_the_silence_limit_is_checked_against_the_heartbeats_and_the_timeout() -> None:
    settings = Settings.load({})
    assert (settings.agent_silence_seconds, settings.agent_timeout_seconds) == (90, 1800)
    with pytest.raises(
        SettingsError,
        match=re.escape(
            "FARM_AGENT_SILENCE_SECONDS=30: must exceed the farm agent's heartbeat interval (30 s)"
        ),
    ):
        Settings.load({"FARM_AGENT_SILENCE_SECONDS": "30"})
    with pytest.raises(
        SettingsError,
        match="FARM_AGENT_SILENCE_SECONDS=45: must exceed FARM_HEARTBEAT_FLUSH_SECONDS=50",
    ):
        Settings.load({"FARM_AGENT_SILENCE_SECONDS": "45", "FARM_HEARTBEAT_FLUSH_SECONDS": "50"})
    # The case: a timeout below the heartbeat dropped healthy agents.
    with pytest.raises(
        SettingsError,
        match="FARM_AGENT_TIMEOUT_SECONDS=20: must not be below FARM_AGENT_SILENCE_SECONDS=90",
    ):
        Settings.load({"FARM_AGENT_TIMEOUT_SECONDS": "20"})
    accepted = Settings.load(
        {"FARM_AGENT_SILENCE_SECONDS": "31", "FARM_AGENT_TIMEOUT_SECONDS": "31"}
    )
    assert (accepted.agent_silence_seconds, accepted.agent_timeout_seconds) == (31, 31)


def test_the_heartbeat_the_settings_assume_is_the_farm_agents_default() -> None:
    import attrs

    from farm_adapters.settings import FARM_AGENT_HEARTBEAT
    from farm_agent.agent import AgentConfig

    assert attrs.fields(AgentConfig).heartbeat.default == FARM_AGENT_HEARTBEAT


def test_failure_settings_are_read_and_contradictions_refused() -> None:
    settings = Settings.load(
        {
            "FARM_RETRY_DELAY_SECONDS": "2",
            "FARM_RETRY_DELAY_MAX_SECONDS": "8",
            "FARM_BLOCK_EXPIRY_SECONDS": "0",
            "FARM_STUCK_JOB_SECONDS": "5",
        }
    )
    assert (
        settings.retry_delay_seconds,
        settings.retry_delay_max_seconds,
        settings.block_expiry_seconds,
        settings.stuck_job_seconds,
    ) == (2, 8, 0, 5)
    with pytest.raises(SettingsError, match="FARM_RETRY_DELAY_MAX_SECONDS=10: must not be below"):
        Settings.load({"FARM_RETRY_DELAY_SECONDS": "20", "FARM_RETRY_DELAY_MAX_SECONDS": "10"})
    with pytest.raises(SettingsError, match="FARM_STUCK_JOB_SECONDS=600: must be shorter than"):
        Settings.load({"FARM_BLOCK_EXPIRY_SECONDS": "600", "FARM_STUCK_JOB_SECONDS": "600"})
    with pytest.raises(SettingsError, match="FARM_RETRY_DELAY_SECONDS='-1'"):
        Settings.load({"FARM_RETRY_DELAY_SECONDS": "-1"})
    Settings.load({"FARM_BLOCK_EXPIRY_SECONDS": "60", "FARM_STUCK_JOB_SECONDS": "0"})


def test_the_queue_name_keeps_masters_sharing_one_redis_apart(tmp_path: Path) -> None:
    assert Settings.load({}).queue_name == "farm"
    for bad in ("two words", "x" * 65, "ferm\u00e9", "a/b", "a:b"):
        with pytest.raises(SettingsError, match="FARM_QUEUE_NAME"):
            Settings.load({"FARM_QUEUE_NAME": bad})
    settings = Settings.load(
        {
            "FARM_DATA_DIR": str(tmp_path),
            "FARM_QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
            "FARM_QUEUE_NAME": "studio-b.farm_2",
        }
    )
    runtime = composition.build_runtime(settings)
    try:
        assert runtime.huey.name == "studio-b.farm_2"
    finally:
        runtime.close()


def test_the_workers_metrics_port_is_off_by_default_and_checked() -> None:
    settings = Settings.load({})
    assert (settings.worker_metrics_port, settings.worker_metrics_address) == (None, "127.0.0.1")
    assert Settings.load({"FARM_WORKER_METRICS_PORT": ""}).worker_metrics_port is None
    served = Settings.load(
        {"FARM_WORKER_METRICS_PORT": "9100", "FARM_WORKER_METRICS_ADDRESS": " 0:0::1 "}
    )
    assert (served.worker_metrics_port, served.worker_metrics_address) == (9100, "::1")
    flagged = Settings.load(
        {"FARM_WORKER_METRICS_PORT": "9100"},
        worker_metrics_port=9200,
        worker_metrics_address="0.0.0.0",
    )
    assert (flagged.worker_metrics_port, flagged.worker_metrics_address) == (9200, "0.0.0.0")
    with pytest.raises(SettingsError) as caught:
        Settings.load(
            {"FARM_WORKER_METRICS_PORT": "65536", "FARM_WORKER_METRICS_ADDRESS": "farm.lan"}
        )
    assert caught.value.problems == [
        "FARM_WORKER_METRICS_PORT='65536': must be between 1 and 65535",
        (
            "FARM_WORKER_METRICS_ADDRESS='farm.lan': must be an IP address such as 127.0.0.1, "
            "0.0.0.0 or ::1"
        ),
    ]
