"""The add-on's Blender side: the scene's farm settings, the token (never saved in a .blend), the
``farm.submit`` operator and the Farm panel in Output Properties.

Where a setting comes from, first found first: the operator's property when a script passes it;
the panel's (the scene's ``farm`` settings, saved with the .blend); the add-on's preferences
(Blender's user preferences); the environment (``FARM_URL``, ``FARM_TOKEN``). The token is kept on
the window manager for the session (Blender saves no add-on property of the window manager), in
the preferences or in ``FARM_TOKEN``: never on the scene.
"""

# No `from __future__ import annotations`: Blender reads the properties from the classes'
# annotations, which must be the property definitions themselves, not strings.

import os
import time
from typing import Any

import bpy
from bpy.props import BoolProperty, IntProperty, PointerProperty, StringProperty

from . import farm

ADDON = __package__ or "farm_blender"
MAX_BATCH = 10000
MAX_PRIORITY = 1000


class FarmPreferences(bpy.types.AddonPreferences):  # type: ignore[misc]
    """Defaults for every file: the farm's URL and a token (kept in Blender's user preferences,
    not in .blend files)."""

    bl_idname = ADDON

    url: StringProperty(  # type: ignore[valid-type]
        name="Farm URL",
        description="The farm's address, e.g. http://farm.studio.lan:8080 (else FARM_URL)",
    )
    token: StringProperty(  # type: ignore[valid-type]
        name="Token",
        description="Your farm token (else FARM_TOKEN); kept in the user preferences",
        subtype="PASSWORD",
    )

    def draw(self, context: Any) -> None:
        self.layout.prop(self, "url")
        self.layout.prop(self, "token")


class FarmSettings(bpy.types.PropertyGroup):  # type: ignore[misc]
    """The panel's settings, saved with the scene (the token is not among them)."""

    url: StringProperty(  # type: ignore[valid-type]
        name="Farm URL",
        description="The farm's address, e.g. http://farm.studio.lan:8080 "
        "(empty: the add-on's preferences, else FARM_URL)",
    )
    priority: IntProperty(  # type: ignore[valid-type]
        name="Priority",
        description="Higher runs first",
        default=0,
        min=-MAX_PRIORITY,
        max=MAX_PRIORITY,
    )
    chunk_size: IntProperty(  # type: ignore[valid-type]
        name="Chunk Size",
        description="Frames an agent renders per assignment",
        default=1,
        min=1,
        max=MAX_BATCH,
    )
    use_scene_range: BoolProperty(  # type: ignore[valid-type]
        name="Scene Frame Range",
        description="Render the scene's frame range (off: the range below)",
        default=True,
    )
    frame_start: IntProperty(name="Start", default=1)  # type: ignore[valid-type]
    frame_end: IntProperty(name="End", default=250)  # type: ignore[valid-type]
    output: StringProperty(  # type: ignore[valid-type]
        name="Output",
        description="Where the agents write the frames, # runs become the frame number "
        "(empty: the scene's output path); // is the saved file's folder",
        subtype="FILE_PATH",
    )
    shared_path: StringProperty(  # type: ignore[valid-type]
        name="Shared Path",
        description="A folder every agent can read: a copy of the file is saved there and "
        "rendered (empty: the file itself is saved and rendered)",
        subtype="DIR_PATH",
    )
    title: StringProperty(  # type: ignore[valid-type]
        name="Title", description="The job's title (empty: the file's and the scene's names)"
    )
    last_job_id: IntProperty(name="Last Job", default=0)  # type: ignore[valid-type]
    last_job_url: StringProperty(name="Last Job's Page")  # type: ignore[valid-type]


def _preferences(context: Any) -> Any:
    addon = context.preferences.addons.get(ADDON)
    return None if addon is None else addon.preferences


class FARM_OT_submit(bpy.types.Operator):  # type: ignore[misc]
    """Save the file (or a copy in the shared path) and submit the scene as a blender job"""

    bl_idname = "farm.submit"
    bl_label = "Submit to Farm"
    bl_options = {"REGISTER"}  # noqa: RUF012 (as Blender reads it)

    # Unset, each falls back to the panel's setting; SKIP_SAVE: a script's values are not
    # remembered for the next call (nor the token kept anywhere).
    url: StringProperty(name="Farm URL", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    token: StringProperty(  # type: ignore[valid-type]
        name="Token", subtype="PASSWORD", options={"SKIP_SAVE", "HIDDEN"}
    )
    priority: IntProperty(  # type: ignore[valid-type]
        name="Priority", min=-MAX_PRIORITY, max=MAX_PRIORITY, options={"SKIP_SAVE"}
    )
    chunk_size: IntProperty(  # type: ignore[valid-type]
        name="Chunk Size", default=1, min=1, max=MAX_BATCH, options={"SKIP_SAVE"}
    )
    frame_start: IntProperty(name="Start", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    frame_end: IntProperty(name="End", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    output: StringProperty(name="Output", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    shared_path: StringProperty(  # type: ignore[valid-type]
        name="Shared Path", options={"SKIP_SAVE"}
    )
    title: StringProperty(name="Title", options={"SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def execute(self, context: Any) -> set[str]:
        try:
            job_id, link = self._submit(context)
        except farm.FarmError as error:
            self.report({"ERROR"}, error.message)
            return {"CANCELLED"}
        settings = context.scene.farm
        settings.last_job_id = job_id
        settings.last_job_url = link
        self.report({"INFO"}, f"Submitted job {job_id}: {link}")
        return {"FINISHED"}

    def _given(self, name: str) -> bool:
        return bool(self.properties.is_property_set(name))

    def _pick(self, name: str, fallback: Any) -> Any:
        return getattr(self, name) if self._given(name) else fallback

    def _submit(self, context: Any) -> tuple[int, str]:
        scene = context.scene
        settings = scene.farm
        preferences = _preferences(context)
        url = farm.setting(
            self.url if self._given("url") else "",
            settings.url,
            preferences.url if preferences else "",
            env="FARM_URL",
        )
        if not url:
            raise farm.FarmError(
                "no farm URL: set it in the Farm panel, in the add-on's preferences or in FARM_URL"
            )
        url = farm.farm_url(url)
        token = farm.setting(
            self.token if self._given("token") else "",
            context.window_manager.farm_token,
            preferences.token if preferences else "",
            env="FARM_TOKEN",
        )
        if settings.use_scene_range:
            start, end = scene.frame_start, scene.frame_end
        else:
            start, end = settings.frame_start, settings.frame_end
        start = self._pick("frame_start", start)
        end = self._pick("frame_end", end)
        output = self._pick("output", settings.output) or scene.render.filepath
        farm.check_frames_and_output(start, end, output)
        shared = self._pick("shared_path", settings.shared_path).strip()
        current = bpy.data.filepath
        if not shared and not current:
            raise farm.FarmError(
                "the file has never been saved: save it where every agent can read it, or set "
                "a shared path for the farm's copy"
            )
        stem = os.path.splitext(os.path.basename(current))[0] if current else "untitled"
        title = self._pick("title", settings.title).strip() or f"{stem}: {scene.name}"
        # The token, the farm and its job type first: a refusal saves nothing.
        farm.ensure_jobtype(url, token)
        saved = _save(current, shared, stem)
        body = farm.job_body(
            title=title,
            start=start,
            end=end,
            by=scene.frame_step,
            batch=self._pick("chunk_size", settings.chunk_size),
            priority=self._pick("priority", settings.priority),
            file=saved,
            # As Blender on an agent reads it: // is the folder of the file it opens.
            output=bpy.path.abspath(output, start=os.path.dirname(saved)),
            scene=scene.name,
            file_format=scene.render.image_settings.file_format,
            engine=scene.render.engine,
        )
        job_id = farm.submit(url, token, body)
        return job_id, farm.dashboard_link(url, job_id)


def _save(current: str, shared: str, stem: str) -> str:
    """Save the file, or a copy of it under ``shared`` (a new name each time, so that a job
    still rendering keeps its file); the path the agents are to open."""
    if shared:
        if shared.startswith("//") and not current:
            raise farm.FarmError(
                "the shared path is relative to the file (//), which has never been saved"
            )
        folder = bpy.path.abspath(shared)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise farm.FarmError(f"cannot create the shared path {folder}: {error}") from None
        target = _free_name(folder, f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
        run, arguments = bpy.ops.wm.save_as_mainfile, {"filepath": target, "copy": True}
    else:
        target = current
        run, arguments = bpy.ops.wm.save_mainfile, {}
    try:
        result = run(**arguments)
    except RuntimeError as error:
        raise farm.FarmError(f"Blender could not save {target}: {error}") from None
    if "FINISHED" not in result:
        raise farm.FarmError(f"Blender did not save {target}")
    return str(target)


def _free_name(folder: str, name: str) -> str:
    path = os.path.join(folder, f"{name}.blend")
    number = 1
    while os.path.exists(path):
        number += 1
        path = os.path.join(folder, f"{name}-{number}.blend")
    return path


class FARM_PT_submit(bpy.types.Panel):  # type: ignore[misc]
    """Output Properties > Farm."""

    bl_label = "Farm"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "output"

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        scene = context.scene
        settings = scene.farm
        layout.prop(settings, "url")
        layout.prop(context.window_manager, "farm_token")
        layout.prop(settings, "priority")
        layout.prop(settings, "chunk_size")
        layout.prop(settings, "use_scene_range")
        frames = layout.column(align=True)
        if settings.use_scene_range:
            frames.enabled = False
            frames.prop(scene, "frame_start", text="Start")
            frames.prop(scene, "frame_end", text="End")
        else:
            frames.prop(settings, "frame_start")
            frames.prop(settings, "frame_end")
        layout.prop(settings, "output")
        layout.prop(settings, "shared_path")
        layout.prop(settings, "title")
        layout.operator(FARM_OT_submit.bl_idname, icon="RENDER_ANIMATION")
        if settings.last_job_id:
            row = layout.row()
            row.label(text=f"Submitted job {settings.last_job_id}")
            row.operator("wm.url_open", text="Open", icon="URL").url = settings.last_job_url


CLASSES = (FarmPreferences, FarmSettings, FARM_OT_submit, FARM_PT_submit)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.farm = PointerProperty(type=FarmSettings)
    # On the window manager: Blender writes no add-on property of it into a .blend.
    bpy.types.WindowManager.farm_token = StringProperty(
        name="Token",
        description="Your farm token for this session, never saved in the file "
        "(empty: the add-on's preferences, else FARM_TOKEN)",
        subtype="PASSWORD",
    )


def unregister() -> None:
    del bpy.types.WindowManager.farm_token
    del bpy.types.Scene.farm
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
