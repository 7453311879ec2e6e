"""What the master gave this agent when it enrolled: its own bearer credential and the key the
master signs its calls with. Kept in the data directory, readable by its owner only."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import attrs

log = logging.getLogger("farm_agent.credentials")

_SIGNING_KEY = re.compile(r"[0-9a-f]{64}")
_CREDENTIAL = re.compile(r"[\x21-\x7e]{1,512}")
"""A bearer token: printable, no spaces, bounded."""


class CredentialsError(Exception):
    """The stored credentials cannot be read."""


@attrs.frozen
class Credentials:
    credential: str | None = None
    signing_key: str | None = None


def parsed(answer: Any) -> Credentials:
    """The credential and signing key in a master's announce answer (each None when absent or
    not well formed)."""
    if not isinstance(answer, dict):
        return Credentials()
    credential, key = answer.get("credential"), answer.get("signing_key")
    return Credentials(
        credential if isinstance(credential, str) and _CREDENTIAL.fullmatch(credential) else None,
        key if isinstance(key, str) and _SIGNING_KEY.fullmatch(key) else None,
    )


class CredentialStore:
    """One JSON file, mode 0600, replaced whole on every change (never half written)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Credentials:
        """The stored credentials (none when the file is missing). Raises CredentialsError."""
        try:
            descriptor = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return Credentials()
        except OSError as error:
            raise CredentialsError(f"cannot read {self.path}: {error}") from None
        with os.fdopen(descriptor, "rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if mode & 0o077:
                log.warning(
                    "credentials file open to other users: made private",
                    extra={"file": str(self.path), "mode": f"{mode:o}"},
                )
                os.fchmod(handle.fileno(), 0o600)
            raw = handle.read(64 * 1024)
        try:
            stored = json.loads(raw)
        except ValueError:
            raise CredentialsError(f"{self.path} is not JSON: remove it to enroll again") from None
        found = parsed(stored)
        if not isinstance(stored, dict) or (
            (stored.get("credential") is not None and found.credential is None)
            or (stored.get("signing_key") is not None and found.signing_key is None)
        ):
            raise CredentialsError(f"{self.path} is not usable: remove it to enroll again")
        return found

    def save(self, credentials: Credentials) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(attrs.asdict(credentials), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
