"""A tiny animated Blender scene, built with ``bpy`` in a subprocess, for the render tests."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path

import pytest

HAS_BPY = importlib.util.find_spec("bpy") is not None
needs_bpy = pytest.mark.skipif(
    not HAS_BPY,
    reason="the bpy module is not installed (pip install '.[blender]', Python 3.11 only)",
)

WIDTH, HEIGHT = 64, 48

_BUILD = """
import sys
import bpy

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.name = "Shot"
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 4
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = %(width)d, %(height)d
scene.render.resolution_percentage = 100
scene.frame_start, scene.frame_end = 1, 4
bpy.ops.mesh.primitive_plane_add(size=20, location=(0, 0, -1))
bpy.ops.mesh.primitive_uv_sphere_add(radius=0.7, location=(-2, 0, 0))
bpy.ops.mesh.primitive_cube_add(size=1, location=(-3, 0, 0))
cube = bpy.context.object
# The cube moves across the view: every frame differs.
for frame, x in ((1, -3.0), (4, 3.0)):
    cube.location = (x, 0, 0)
    cube.keyframe_insert("location", frame=frame)
bpy.ops.object.light_add(type="SUN", location=(0, 0, 5))
bpy.context.object.data.energy = 3
bpy.ops.object.camera_add(location=(0, -9, 2), rotation=(1.4, 0, 0))
scene.camera = bpy.context.object
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""


def build_scene(path: Path, python: str = sys.executable) -> Path:
    """Save the scene to ``path`` (a .blend): a plane, a sphere, a cube moving over frames
    1 to 4, a sun and a camera; CYCLES on the CPU, 4 samples, 64x48."""
    subprocess.run(
        [python, "-c", _BUILD % {"width": WIDTH, "height": HEIGHT}, str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height
