"""Master → agent trust: the master's secret key, the per-agent signing keys derived from it,
and the signature every call to an agent carries.

A call is signed with ``X-Farm-Timestamp`` (unix seconds), ``X-Farm-Nonce`` (random hex) and
``X-Farm-Signature``: hex HMAC-SHA256 under the agent's signing key of
``"METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\n" + sha256(body).hexdigest()``, PATH being the request
target as sent (``/api/v1/assign``). ``farm_agent`` checks it with its own copy of these rules
(it imports nothing of the master's).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("farm.signing")

SECRET_KEY_FILE = "secret-key"
MINIMUM_SECRET_LENGTH = 32
_DERIVATION = b"farm-agent-signing:"


class SecretKeyError(Exception):
    """The master's secret key file cannot be used (unreadable, too short, or open to others)."""


def secret_key_from_file(path: Path) -> bytes:
    """The key kept in ``path``: created with 32 random bytes (hex, mode 0600) if missing.

    Several processes of one master may start at once: the file is written whole under a
    temporary name and linked into place, so a reader never sees half a key and the first
    writer wins. Raises SecretKeyError when the file exists but is open to group or others,
    or holds fewer than 32 characters.
    """
    try:
        return _read_secret_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
            log.info("secret key created", extra={"file": str(path)})
        except FileExistsError:
            pass  # another process of this master created it first: use theirs
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret_key(path)


def _read_secret_key(path: Path) -> bytes:
    descriptor = os.open(path, os.O_RDONLY)
    with os.fdopen(descriptor, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretKeyError(
                f"the master's secret key {path} is open to other users "
                f"(mode {stat.S_IMODE(mode):o}): run `chmod 600 {path}`"
            )
        key = handle.read().strip()
    if len(key) < MINIMUM_SECRET_LENGTH:
        raise SecretKeyError(
            f"the master's secret key {path} holds {len(key)} characters, fewer than "
            f"{MINIMUM_SECRET_LENGTH}: remove it to have a new one made, or set FARM_SECRET_KEY"
        )
    return key


class AgentSigningKeys:
    """The AgentKeys port: each agent's signing key, HMAC-SHA256 of the master's secret key
    and the agent's id. The secret is loaded on first use (``load`` builds it) and kept."""

    def __init__(self, load: Callable[[], bytes]) -> None:
        self._load = load
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, secret_key: str | None, data_dir: Path) -> AgentSigningKeys:
        """From FARM_SECRET_KEY when set, else from ``<data dir>/secret-key``."""
        if secret_key is not None:
            given = secret_key.encode()
            return cls(lambda: given)
        return cls(lambda: secret_key_from_file(data_dir / SECRET_KEY_FILE))

    def secret(self) -> bytes:
        """The master's secret key (loaded or created now if need be). Raises SecretKeyError."""
        with self._lock:
            if self._secret is None:
                self._secret = self._load()
            return self._secret

    def key_for(self, agent_id: uuid.UUID) -> str:
        return hmac.new(self.secret(), _DERIVATION + agent_id.bytes, hashlib.sha256).hexdigest()


def signature(key: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of one call under an agent's signing key."""
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_headers(key: str, method: str, path: str, body: bytes, now: float) -> dict[str, str]:
    """The three headers that prove a call comes from the master."""
    timestamp, nonce = str(int(now)), secrets.token_hex(16)
    return {
        "X-Farm-Timestamp": timestamp,
        "X-Farm-Nonce": nonce,
        "X-Farm-Signature": signature(key, method, path, timestamp, nonce, body),
    }
