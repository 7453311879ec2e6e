"""Render one frame of a .blend through the ``bpy`` module (Blender as a Python module).

Run by the agent as ``python blender_render.py '<settings as JSON>'`` where no Blender binary
exists; standalone (it imports nothing of the agent). It prints Blender's render statistics as
``Fra:<n> ...`` lines (``Sample x/y`` among them) and ``Saved: '<path>'`` for the file written,
as the Blender binary does, and exits non-zero on any error.
"""

import json
import sys
from typing import Any

# The agent's package directory is this script's: nothing there is for bpy.
if sys.path and sys.path[0].endswith("farm_agent"):
    del sys.path[0]


def main(settings: dict[str, Any]) -> int:
    import bpy

    frame = int(settings["frame"])
    bpy.ops.wm.open_mainfile(filepath=settings["file"], load_ui=False)
    if settings.get("scene"):
        scene = bpy.data.scenes.get(settings["scene"])
        if scene is None:
            print(f"Error: no scene named {settings['scene']!r} in {settings['file']}", flush=True)
            return 1
    else:
        scene = bpy.context.scene
    render = scene.render
    if settings.get("engine"):
        render.engine = settings["engine"]
    if settings.get("samples") is not None:
        scene.cycles.samples = settings["samples"]
        scene.eevee.taa_render_samples = settings["samples"]
    if settings.get("resolution_percentage") is not None:
        render.resolution_percentage = settings["resolution_percentage"]
    if settings.get("format"):
        render.image_settings.file_format = settings["format"]
    render.filepath = settings["output"]
    scene.frame_start = scene.frame_end = frame
    scene.frame_set(frame)

    def stats(text: str, *_: object) -> None:
        print(f"Fra:{frame} {text}", flush=True)

    bpy.app.handlers.render_stats.append(stats)
    bpy.ops.render.render(animation=True, scene=scene.name)
    print(f"Saved: '{render.frame_path(frame=frame)}'", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
