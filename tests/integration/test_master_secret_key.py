"""The master's secret key: FARM_SECRET_KEY or a 0600 file made on first use, and the agents'
signing keys derived from it."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading
import uuid
from pathlib import Path

import pytest

from farm_adapters.settings import Settings, SettingsError
from farm_adapters.signing import (
    AgentSigningKeys,
    SecretKeyError,
    secret_key_from_file,
    signature,
    signed_headers,
)

AGENT = uuid.UUID("0b5e3f3c-52a4-4f43-9c39-8d0d3ad2b8e1")


def test_the_key_file_is_made_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret-key"
    first = secret_key_from_file(path)
    assert len(first) == 64 and bytes.fromhex(first.decode())  # 32 random bytes, as hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key_from_file(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret-key"]  # no temporary left


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    found: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: found.append(secret_key_from_file(path))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len(set(found)) == 1


def test_a_key_file_others_can_read_or_too_short_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    secret_key_from_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecretKeyError, match="open to other users.*chmod 600"):
        secret_key_from_file(path)
    os.chmod(path, 0o600)
    path.write_text("short\n")
    with pytest.raises(SecretKeyError, match="fewer than 32"):
        secret_key_from_file(path)


def test_farm_secret_key_is_checked_at_start_up_and_never_shown() -> None:
    with pytest.raises(SettingsError, match="FARM_SECRET_KEY: must be at least 32") as caught:
        Settings.load({"FARM_SECRET_KEY": "hunter2-hunter2"})
    assert "hunter2" not in str(caught.value)
    secret = "s" * 32
    settings = Settings.load({"FARM_SECRET_KEY": secret})
    assert settings.secret_key == secret and secret not in repr(settings)
    assert Settings.load({}).secret_key is None


def test_the_setting_wins_over_the_file(tmp_path: Path) -> None:
    keys = AgentSigningKeys.of("k" * 40, tmp_path)
    assert keys.secret() == b"k" * 40 and not (tmp_path / "secret-key").exists()
    from_file = AgentSigningKeys.of(None, tmp_path)
    assert from_file.secret() == (tmp_path / "secret-key").read_text().strip().encode()


def test_each_agent_has_its_own_key_derived_from_the_secret(tmp_path: Path) -> None:
    keys = AgentSigningKeys(lambda: b"m" * 32)
    expected = hmac.new(b"m" * 32, b"farm-agent-signing:" + AGENT.bytes, hashlib.sha256)
    assert keys.key_for(AGENT) == expected.hexdigest()
    assert keys.key_for(uuid.uuid4()) != keys.key_for(AGENT)
    assert AgentSigningKeys(lambda: b"n" * 32).key_for(AGENT) != keys.key_for(AGENT)


def test_a_signature_covers_method_path_time_nonce_and_body() -> None:
    headers = signed_headers("k", "POST", "/api/v1/assign", b"{}", now=1_700_000_000.7)
    assert headers["X-Farm-Timestamp"] == "1700000000"
    assert len(headers["X-Farm-Nonce"]) == 32
    message = (
        f"POST\n/api/v1/assign\n1700000000\n{headers['X-Farm-Nonce']}\n"
        + hashlib.sha256(b"{}").hexdigest()
    )
    assert (
        headers["X-Farm-Signature"] == hmac.new(b"k", message.encode(), hashlib.sha256).hexdigest()
    )
    again = signed_headers("k", "POST", "/api/v1/assign", b"{}", now=1_700_000_000)
    assert again["X-Farm-Nonce"] != headers["X-Farm-Nonce"]
    nonce, stamp = headers["X-Farm-Nonce"], "1700000000"
    original = signature("k", "POST", "/api/v1/assign", stamp, nonce, b"{}")
    assert signature("k", "POST", "/api/v1/update", stamp, nonce, b"{}") != original
    assert signature("k", "POST", "/api/v1/assign", stamp, nonce, b"{ }") != original
