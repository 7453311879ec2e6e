"""The ``blender`` job type: one Blender render per frame, in background mode.

The agent renders with a Blender binary (``FARM_AGENT_BLENDER``, else ``blender`` on PATH) or,
where there is none, through the ``bpy`` module (Blender as a Python module) imported by a
Python of its own (``FARM_AGENT_BLENDER_PYTHON``, else the agent's own interpreter) running
``blender_render.py``. Progress comes from Blender's output (Cycles' ``Sample x/y``, tiles,
``Fra:`` lines); the file each frame wrote from its ``Saved: '<path>'`` line.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import attrs

log = logging.getLogger("farm_agent.blender")

NAME = "blender"
BLENDER_ERROR = "blender_error"
"""A blender frame failed: the file is missing, Blender or the scene's Python failed, it crashed,
or it wrote no file."""

FORMATS = frozenset({"PNG", "OPEN_EXR", "JPEG"})
ENGINES = frozenset({"CYCLES", "BLENDER_EEVEE", "BLENDER_EEVEE_NEXT", "WORKBENCH"})
MAX_PATH = 4096
MAX_NAME = 256
MAX_ARGS = 256
MAX_ARG = 4096
MAX_SAMPLES = 1 << 24
MAX_PERCENTAGE = 1000
_KEYS = frozenset(
    {"file", "output", "format", "engine", "samples", "resolution_percentage", "scene", "args"}
)
RENDER_SCRIPT = Path(__file__).with_name("blender_render.py")


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value


def data_problem(data: Any) -> str | None:
    """Why a blender job's ``data`` is unusable, or None."""
    shape = (
        'the blender job type needs data {"file": "<.blend>", "output": "<path, # for the '
        'frame number>", ...}'
    )
    if not isinstance(data, dict):
        return shape
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        return f"unknown key(s) in the blender job's data: {', '.join(map(str, unknown))}"
    for key in ("file", "output"):
        if not _text(data.get(key), MAX_PATH):
            return f"`data.{key}` must be a path of 1 to {MAX_PATH} characters ({shape})"
    if data.get("format") is not None and data["format"] not in FORMATS:
        return f"`data.format` must be one of {', '.join(sorted(FORMATS))}"
    if data.get("engine") is not None and data["engine"] not in ENGINES:
        return f"`data.engine` must be one of {', '.join(sorted(ENGINES))}"
    samples = data.get("samples")
    if samples is not None and (type(samples) is not int or not 1 <= samples <= MAX_SAMPLES):
        return f"`data.samples` must be a whole number from 1 to {MAX_SAMPLES}"
    percentage = data.get("resolution_percentage")
    if percentage is not None and (
        type(percentage) is not int or not 1 <= percentage <= MAX_PERCENTAGE
    ):
        return f"`data.resolution_percentage` must be a whole number from 1 to {MAX_PERCENTAGE}"
    if data.get("scene") is not None and not _text(data["scene"], MAX_NAME):
        return f"`data.scene` must be a scene name of 1 to {MAX_NAME} characters"
    args = data.get("args")
    if args is not None and (
        not isinstance(args, list)
        or len(args) > MAX_ARGS
        or not all(isinstance(a, str) and len(a) <= MAX_ARG and "\x00" not in a for a in args)
    ):
        return f"`data.args` must be a list of at most {MAX_ARGS} strings"
    return None


def frames_problem(frames: list[float]) -> str | None:
    if not all(float(f).is_integer() and abs(f) < 2**31 for f in frames):
        return "the blender job type renders whole frames only"
    return None


# -- finding Blender ----------------------------------------------------------------------------


@attrs.frozen
class Renderer:
    """How this agent renders: ``binary`` (a Blender executable) or ``bpy`` (a Python that
    imports the bpy module), and the Blender version it has."""

    kind: str
    program: str
    version: str


_VERSION = re.compile(r"^Blender (\d+\.\d+(?:\.\d+)?)", re.MULTILINE)
PROBE_SECONDS = 60.0


def _probe(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=PROBE_SECONDS,
            check=False,
        )
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


def find_renderer(environ: dict[str, str] | None = None) -> Renderer | None:
    """This machine's Blender: the binary of ``FARM_AGENT_BLENDER`` or ``blender`` on PATH, else
    a Python importing ``bpy`` (``FARM_AGENT_BLENDER_PYTHON``, else this interpreter)."""
    environ = dict(os.environ if environ is None else environ)
    binary = environ.get("FARM_AGENT_BLENDER") or shutil.which("blender", path=environ.get("PATH"))
    if binary:
        out = _probe([binary, "-b", "--factory-startup", "--version"])
        found = _VERSION.search(out or "")
        if found:
            return Renderer("binary", binary, found.group(1))
        log.warning("not a usable Blender binary", extra={"program": binary})
    python = environ.get("FARM_AGENT_BLENDER_PYTHON") or sys.executable
    out = _probe([python, "-c", "import bpy; print('bpy', '.'.join(map(str, bpy.app.version)))"])
    for line in (out or "").splitlines():
        if line.startswith("bpy "):
            return Renderer("bpy", python, line.split()[1])
    return None


class RendererLookup:
    """Finds this machine's Blender once, in the background or when first needed."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = environ
        self._lock = threading.Lock()
        self._done = False
        self._found: Renderer | None = None

    def get(self) -> Renderer | None:
        with self._lock:
            if not self._done:
                self._found = find_renderer(self._environ)
                self._done = True
                log.info(
                    "blender",
                    extra={"found": attrs.asdict(self._found) if self._found else None},
                )
            return self._found

    def known(self) -> bool:
        return self._done


# -- a frame's command ----------------------------------------------------------------------


def _settings_expr(data: dict[str, Any]) -> str | None:
    """Python that applies the settings the command line has no option for."""
    lines = []
    if data.get("samples") is not None and data.get("engine") != "WORKBENCH":
        samples = int(data["samples"])
        lines += [f"s.cycles.samples = {samples}", f"s.eevee.taa_render_samples = {samples}"]
    if data.get("resolution_percentage") is not None:
        lines.append(f"s.render.resolution_percentage = {int(data['resolution_percentage'])}")
    if not lines:
        return None
    return "import bpy\ns = bpy.context.scene\n" + "\n".join(lines)


def engine_for(version: str, engine: str) -> str:
    """``engine`` as Blender ``version`` names it: EEVEE is BLENDER_EEVEE_NEXT in 4.2 to 4.4
    only."""
    if engine not in ("BLENDER_EEVEE", "BLENDER_EEVEE_NEXT"):
        return engine
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return engine
    return "BLENDER_EEVEE_NEXT" if (4, 2) <= major_minor < (5, 0) else "BLENDER_EEVEE"


def argv_for(renderer: Renderer, data: dict[str, Any], frame: int) -> list[str]:
    """The command that renders ``frame`` of the job (``data`` passed ``data_problem``)."""
    if data.get("engine"):
        data = {**data, "engine": engine_for(renderer.version, data["engine"])}
    if renderer.kind == "bpy":
        settings = {key: data.get(key) for key in sorted(_KEYS)}
        settings["frame"] = frame
        return [renderer.program, str(RENDER_SCRIPT), json.dumps(settings)]
    argv = [renderer.program, "-b", data["file"]]
    if data.get("scene"):
        argv += ["-S", data["scene"]]
    if data.get("engine"):
        argv += ["-E", data["engine"]]
    expr = _settings_expr(data)
    if expr:
        argv += ["--python-exit-code", "1", "--python-expr", expr]
    argv += ["-o", data["output"]]
    if data.get("format"):
        argv += ["-F", data["format"]]
    argv += list(data.get("args") or [])
    argv += ["-f", str(frame)]
    return argv


# -- reading its output ---------------------------------------------------------------------

_SAMPLE = re.compile(r"Sample (\d+)/(\d+)")
_TILES = re.compile(r"(?:Rendered|Tile) (\d+)/(\d+)(?: Tiles)?")
_EEVEE = re.compile(r"Rendering (\d+) / (\d+) samples")
_SAVED = re.compile(r"Saved: '(.+)'")
_FRAME = re.compile(r"\bFra:(-?\d+)\b")


def progress_of(line: str) -> float | None:
    """The fraction of the frame done that a line of Blender's output tells, or None. With
    tiles, samples count within the tile."""
    tiles = _TILES.findall(line)
    samples = _SAMPLE.findall(line) or _EEVEE.findall(line)
    fraction: float | None = None
    if samples:
        done, total = map(int, samples[-1])
        fraction = done / total if total else None
    if tiles:
        tile, count = map(int, tiles[-1])
        if count:
            within = fraction if fraction is not None else 0.0
            fraction = (max(tile - 1, 0) + within) / count if samples else tile / count
    if fraction is None or not math.isfinite(fraction):
        return None
    return min(max(fraction, 0.0), 1.0)


def saved_path(line: str) -> str | None:
    found = _SAVED.search(line)
    return found.group(1) if found else None


class FrameWatch:
    """What a frame's output tells: its progress and the files it saved."""

    def __init__(self) -> None:
        self.progress: float | None = None
        self.saved: list[str] = []
        self.frame_seen = False

    def line(self, text: str) -> float | None:
        """Read one line; returns the new progress when it moved."""
        moved = None
        for part in text.split("\r"):
            path = saved_path(part)
            if path is not None and path not in self.saved and len(self.saved) < 64:
                self.saved.append(path)
            if _FRAME.search(part):
                self.frame_seen = True
            fraction = progress_of(part)
            if fraction is not None and fraction != self.progress:
                self.progress = moved = fraction
        return moved


def outputs_of(saved: list[str], cwd: Path | None = None) -> list[dict[str, Any]]:
    """The saved files that exist, with their sizes."""
    found = []
    for name in saved:
        path = Path(name) if cwd is None else cwd / name
        try:
            size = path.stat().st_size
        except OSError:
            continue
        found.append({"path": str(path.resolve())[:MAX_PATH], "size": size})
    return found
