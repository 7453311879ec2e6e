"""One ``farm serve`` per data directory and per port.

The embedded database and queue are files that only one master may own, and granian's workers
bind with SO_REUSEPORT on Linux, so a second master on the same port would silently share the
connections of the first. Both are checked before anything is started.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO

LOCK_FILE = "serve.lock"


class AlreadyServed(Exception):
    """Another master holds the data directory, or something already listens on the port."""


def hold_data_dir(data_dir: Path) -> IO[str]:
    """Lock ``<data_dir>/serve.lock`` for as long as the returned file stays open (the life of
    this process: the descriptor is not inherited by the workers, and the kernel drops the lock
    when the process dies)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    lock = path.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise AlreadyServed(
            f"the data directory {data_dir} is already served by {holder} "
            f"(lock {path}); stop it first, or give this master its own FARM_DATA_DIR"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"farm serve (pid {os.getpid()})\n")
    lock.flush()
    return lock


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` once without SO_REUSEPORT: that fails while any socket listens there,
    granian's included."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise AlreadyServed(f"cannot listen on {host}:{port}: {error.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        # A restart may leave connections in TIME_WAIT; those do not hold the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise AlreadyServed(
                    f"port {port} on {host} is already in use (another farm serve?); "
                    "stop it or choose another FARM_PORT"
                ) from None
            raise AlreadyServed(f"cannot listen on {host}:{port}: {error.strerror}") from None
