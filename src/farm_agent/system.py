"""What this machine has: host name, CPUs, RAM, OS, MAC addresses (standard library only)."""

from __future__ import annotations

import os
import platform
import re
import socket
from pathlib import Path

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_LABEL = re.compile(r"[^A-Za-z0-9-]")


def hostname() -> str:
    """This machine's name, made acceptable to the master (RFC 1123 labels)."""
    labels = [
        (_LABEL.sub("-", label).strip("-") or "x")[:63]
        for label in socket.gethostname().split(".")
        if label
    ]
    return ".".join(labels) or "localhost"


def cpus() -> int:
    return max(1, min(256, os.cpu_count() or 1))


def _meminfo() -> dict[str, int]:
    found = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            found[key] = int(rest.split()[0]) // 1024  # kB → MB
    except (OSError, ValueError, IndexError):
        pass
    return found


def ram() -> int:
    """Total RAM in MB."""
    total = _meminfo().get("MemTotal")
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        except (ValueError, OSError, AttributeError):
            total = 1024
    return max(16, min(262144, total))


def free_ram() -> int:
    """Available RAM in MB."""
    info = _meminfo()
    return max(0, info.get("MemAvailable", info.get("MemFree", ram() // 2)))


def os_class() -> str:
    system = platform.system().lower()
    if system == "linux":
        return "linux"
    if system == "windows":
        return "windows"
    if system == "darwin":
        return "mac"
    if "bsd" in system:
        return "bsd"
    return "other"


def os_fullname() -> str:
    return platform.platform()[:128]


def cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()[:128]
    except OSError:
        pass
    return (platform.processor() or None) and platform.processor()[:128]


def mac_addresses() -> list[str]:
    found = set()
    for path in Path("/sys/class/net").glob("*/address"):
        try:
            mac = path.read_text().strip().lower()
        except OSError:
            continue
        if _MAC.match(mac) and mac != "00:00:00:00:00:00":
            found.add(mac)
    return sorted(found)
