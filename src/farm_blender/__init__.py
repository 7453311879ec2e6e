"""Submit the open scene to a farm: a Blender add-on (Output Properties > Farm) and the operator
``bpy.ops.farm.submit(...)`` for scripts.

Install ``dist/farm_blender.zip`` (``make addon``) with Edit > Preferences > Add-ons > Install
from Disk, or enable it from ``bpy``: ``bpy.ops.preferences.addon_install(filepath=...)`` then
``bpy.ops.preferences.addon_enable(module="farm_blender")``. It needs only Blender's Python:
the standard library and ``bpy``. ``bpy`` is imported on registration only, so the API calls in
``farm_blender.farm`` can be used and tested without Blender.
"""

from __future__ import annotations

bl_info = {
    "name": "Farm submitter",
    "author": "farm",
    "version": (1, 0, 0),
    "blender": (4, 2, 0),
    "location": "Properties > Output > Farm",
    "description": "Submit the open scene to a farm as a blender job",
    "category": "Render",
}


def register() -> None:
    from . import addon

    addon.register()


def unregister() -> None:
    from . import addon

    addon.unregister()
