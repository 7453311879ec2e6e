"""The Blender add-on ``farm_blender`` as an artist uses it: built into a zip (``make addon``),
installed and enabled in ``bpy`` (in a subprocess, with Blender's user folders in the test's
directory), submitting the open scene to a real ``farm serve`` with an artist's token; two real
``farm agent``s render the job. Refusals save and submit nothing. Its HTTP calls (the standard
library's, no bpy needed) against answers the master never gives."""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.metadata
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from farm_blender import farm
from tests.client.conftest import make_token
from tests.e2e.test_farm import Farm
from tests.support.blender_scene import HEIGHT, WIDTH, build_scene, needs_bpy, png_size
from tests.support.processes import Process, StartMaster

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]

# Run with -S: without site-packages' .pth files, so `farm_blender` is the installed zip's, not
# this checkout's editable install; bpy comes from its folder, added by hand.
_PRELUDE = """
import json, sys, types
given = json.loads(sys.argv[-1])
sys.path.append(given["site"])
import bpy

assert bpy.ops.preferences.addon_install(filepath=given["zip"]) == {"FINISHED"}
assert bpy.ops.preferences.addon_enable(module="farm_blender") == {"FINISHED"}
import farm_blender
assert farm_blender.__file__.startswith(given["scripts"]), farm_blender.__file__
results = {}

def submit(**options):
    try:
        finished = bpy.ops.farm.submit(**options)
    except RuntimeError as error:  # how bpy hands a script the operator's ERROR report
        return {"error": str(error).strip(), "job": bpy.context.scene.farm.last_job_id}
    farm = bpy.context.scene.farm
    return {"result": sorted(finished), "job": farm.last_job_id, "link": farm.last_job_url}

class Layout:
    "Records what the panel draws; every property it shows must exist."
    def __init__(self):
        self.drawn = []
    def prop(self, data, name, **options):
        assert name in data.bl_rna.properties, name
        self.drawn.append(name)
    def column(self, **options):
        return self
    def row(self, **options):
        return self
    def label(self, text="", **options):
        self.drawn.append("label: " + text)
    def operator(self, idname, **options):
        self.drawn.append("operator: " + idname)
        return types.SimpleNamespace()

def draw_panel():
    panel = bpy.types.FARM_PT_submit
    assert (panel.bl_space_type, panel.bl_context) == ("PROPERTIES", "output")
    fake = types.SimpleNamespace(layout=Layout())
    panel.draw(fake, bpy.context)
    return fake.layout.drawn
"""

_SUBMIT_SCENE = """
bpy.ops.wm.open_mainfile(filepath=given["scene"])
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 3, 6
scene.render.filepath = "//renders/shot_####"  # beside the file the agents open
scene.farm.url = given["url"]
scene.farm.shared_path = given["shared"]
scene.farm.chunk_size = 2
scene.farm.priority = 5
bpy.context.window_manager.farm_token = given["token"]
results["submitted"] = submit()
results["panel"] = draw_panel()
# The artist saves the file: the token is in no .blend.
bpy.ops.wm.save_as_mainfile(filepath=given["resaved"])
print("RESULT " + json.dumps(results))
"""

_REFUSALS = """
assert not bpy.data.filepath  # the startup file, never saved
results["unsaved"] = submit(url=given["url"], token=given["token"])
results["wrong token"] = submit(url=given["url"], token="farm_wrong", shared_path=given["shared"])
results["no job type"] = submit(url=given["url"], token=given["token"], shared_path=given["shared"])
results["backwards"] = submit(
    url=given["url"], token=given["token"], shared_path=given["shared"], frame_start=5, frame_end=2
)
results["no url"] = submit(shared_path=given["shared"])
assert bpy.ops.preferences.addon_disable(module="farm_blender") == {"FINISHED"}
results["disabled"] = [hasattr(bpy.types.Scene, "farm"), hasattr(bpy.types, "FARM_OT_submit")]
print("RESULT " + json.dumps(results))
"""

_ADMIN_SUBMITS = """
bpy.ops.wm.save_as_mainfile(filepath=given["scene"])  # the startup scene, saved by the artist
# The farm's URL and token from FARM_URL and FARM_TOKEN.
results["submitted"] = submit(
    title="by script", frame_start=2, frame_end=2, output=given["output"], priority=-3
)
print("RESULT " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make addon``, into the test's directory."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    built = tmp_path_factory.mktemp("addon") / "farm_blender.zip"
    subprocess.run(
        ["make", "-s", "addon", f"ADDON_ZIP={built}", f"PYTHON={sys.executable}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return built


def run_blender(
    tmp_path: Path,
    addon_zip: Path,
    script: str,
    environ: dict[str, str] | None = None,
    **given: Any,
) -> dict[str, Any]:
    """``script`` after the prelude (add-on installed and enabled) in a Python with bpy; the
    ``RESULT`` it prints. Blender's user folders and HOME are under ``tmp_path``."""
    home = tmp_path / "blender-home"
    scripts = home / "scripts"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FARM_", "BLENDER_")) and not key.lower().endswith("_proxy")
    }
    env.update(
        HOME=str(home),
        BLENDER_USER_RESOURCES=str(home / "resources"),
        BLENDER_USER_SCRIPTS=str(scripts),
        BLENDER_USER_CONFIG=str(home / "config"),
    )
    env.update(environ or {})
    spec = importlib.util.find_spec("bpy")
    assert spec is not None and spec.origin is not None
    site = Path(spec.origin).parent.parent
    given.update(zip=str(addon_zip), scripts=str(scripts), site=str(site))
    done = subprocess.run(
        [sys.executable, "-S", "-c", _PRELUDE + script, json.dumps(given)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


@pytest.fixture
def start_farm(
    tmp_path: Path, processes: list[Process], start_master: StartMaster
) -> Callable[[], Farm]:
    return lambda: Farm(start_master(), tmp_path, processes)


@needs_bpy
def test_the_addon_submits_the_open_scene_and_agents_render_it(
    tmp_path: Path, addon_zip: Path, start_farm: Callable[[], Farm]
) -> None:
    scene = build_scene(tmp_path / "shot.blend")
    before = scene.read_bytes()
    farm = start_farm()
    # The operator's part: the job type, which an artist's token may not create, and Blender
    # in the catalogue, so that the agent can say it found its Blender.
    assert farm.api.post("/jobtypes/", json={"name": "blender"}).status_code == 201
    version = importlib.metadata.version("bpy")
    blender = {"software": "blender", "versions": [{"version": version}]}
    assert farm.api.post("/software/", json=blender).status_code == 201
    token = make_token(farm.master, "artist", "ann")
    nodes = ("node1", "node2")
    for node in nodes:
        farm.start_agent(node)

    # Rendering starts once the agents have found their Blender (they look when they start).
    def found_blender(node: str) -> bool:
        if not (tmp_path / node / "agent_id").exists():
            return False
        found = farm.api.get(f"/agents/{farm.agent_id(node)}/software").json()
        return bool(found == [{"software": "blender", "version": version}])

    for node in nodes:
        farm.wait(functools.partial(found_blender, node), f"{node} to report its Blender")
    shared = tmp_path / "shared"
    result = run_blender(
        tmp_path,
        addon_zip,
        _SUBMIT_SCENE,
        scene=str(scene),
        url=farm.master.url,
        token=token,
        shared=str(shared),
        resaved=str(tmp_path / "resaved.blend"),
    )
    job_id = result["submitted"]["job"]
    link = f"{farm.master.url}/jobs/{job_id}"
    assert result["submitted"] == {"result": ["FINISHED"], "job": job_id, "link": link}
    # The panel shows the settings and the job it submitted, with its dashboard page.
    assert result["panel"] == [
        "url",
        "farm_token",
        "priority",
        "chunk_size",
        "use_scene_range",
        "frame_start",
        "frame_end",
        "output",
        "shared_path",
        "title",
        "operator: farm.submit",
        f"label: Submitted job {job_id}",
        "operator: wm.url_open",
    ]
    assert httpx.get(link, timeout=10).status_code == 200

    job = farm.job(job_id)
    copies = list(shared.glob("*.blend"))
    assert len(copies) == 1 and copies[0].name.startswith("shot-"), copies
    assert (job["jobtype"], job["start"], job["end"], job["by"]) == ("blender", 3, 6, 1)
    assert (job["batch"], job["priority"], job["title"]) == (2, 5, "shot: Shot")
    assert job["data"] == {
        "file": str(copies[0]),
        "output": str(shared / "renders" / "shot_####"),
        "scene": "Shot",
        "format": "PNG",
        "engine": "CYCLES",
    }
    assert scene.read_bytes() == before  # a copy was saved, the artist's file left alone
    for saved in (copies[0], tmp_path / "resaved.blend"):
        assert token.encode() not in saved.read_bytes(), saved

    farm.wait(lambda: farm.job(job_id)["state"] == "done", "the agents to render", timeout=90)
    tasks = farm.tasks(job_id)
    assert [t["frame"] for t in tasks] == [3.0, 4.0, 5.0, 6.0]
    assert all(t["state"] == "done" for t in tasks), tasks
    images = [shared / "renders" / f"shot_{frame:04d}.png" for frame in range(3, 7)]
    assert [Path(t["outputs"][0]["path"]) for t in tasks] == [i.resolve() for i in images]
    assert all(png_size(image) == (WIDTH, HEIGHT) for image in images)
    assert images[0].read_bytes() != images[1].read_bytes()  # the cube moves from 3 to 4


@needs_bpy
def test_refusals_save_nothing_and_submit_nothing(
    tmp_path: Path, addon_zip: Path, start_farm: Callable[[], Farm]
) -> None:
    farm = start_farm()
    token = make_token(farm.master, "artist", "ann")
    shared = tmp_path / "shared"
    result = run_blender(
        tmp_path, addon_zip, _REFUSALS, url=farm.master.url, token=token, shared=str(shared)
    )
    assert result == {
        "unsaved": {
            "error": "Error: the file has never been saved: save it where every agent can read "
            "it, or set a shared path for the farm's copy",
            "job": 0,
        },
        "wrong token": {"error": result["wrong token"]["error"], "job": 0},
        "no job type": {
            "error": "Error: the farm has no `blender` job type and this token may not create "
            "one: ask an admin to create it (`farm jobs submit --jobtype blender` creates it, "
            'or POST /api/v1/jobtypes {"name": "blender"})',
            "job": 0,
        },
        "backwards": {"error": "Error: the frame range ends (2) before it starts (5)", "job": 0},
        "no url": {
            "error": "Error: no farm URL: set it in the Farm panel, in the add-on's "
            "preferences or in FARM_URL",
            "job": 0,
        },
        "disabled": [False, False],
    }
    # The API's own message, as the master words it.
    refused = httpx.get(
        f"{farm.master.url}/api/v1/jobtypes/blender",
        headers={"Authorization": "Bearer farm_wrong"},
        timeout=10,
    )
    assert refused.status_code == 401
    message = refused.json()["error"]
    assert result["wrong token"]["error"] == f"Error: the farm refused (401): {message}"
    assert farm.api.get("/jobs/").json() == []
    assert farm.api.get("/jobtypes/blender").status_code == 404
    assert not shared.exists()  # nothing saved


@needs_bpy
def test_an_admin_token_creates_the_missing_job_type(
    tmp_path: Path, addon_zip: Path, start_farm: Callable[[], Farm]
) -> None:
    scene = tmp_path / "shot.blend"
    farm = start_farm()
    admin = (farm.master.data_dir / "admin-token").read_text().strip()
    result = run_blender(
        tmp_path,
        addon_zip,
        _ADMIN_SUBMITS,
        {"FARM_URL": farm.master.url + "/", "FARM_TOKEN": admin},
        scene=str(scene),
        output="//out/frame_##",
    )
    job_id = result["submitted"]["job"]
    assert result["submitted"]["result"] == ["FINISHED"]
    assert farm.api.get("/jobtypes/blender").status_code == 200
    job = farm.job(job_id)
    # No shared path: the file itself was saved and is what the agents open.
    assert (job["title"], job["start"], job["end"], job["priority"]) == ("by script", 2, 2, -3)
    assert job["data"]["file"] == str(scene) and scene.exists()
    assert job["data"]["output"] == str(tmp_path / "out" / "frame_##")


class _Odd(http.server.BaseHTTPRequestHandler):
    """Answers the master never gives: by path."""

    def do_GET(self) -> None:
        if self.path.endswith("/plain"):
            self._answer(502, b"<html>bad gateway</html>", "text/html")
        elif self.path.endswith("/huge"):
            self._answer(200, b"[" + b"0," * farm.MAX_ANSWER + b"0]", "application/json")
        elif self.path.endswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "/api/v1/jobs")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._answer(200, b"not json", "text/plain")

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # read in part
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def odd_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/plain", "the farm answered 502"),
        ("/huge", f"the farm's answer to GET /huge is larger than {farm.MAX_ANSWER} bytes"),
        ("/moved", "the farm answered 302"),
        ("/text", "the farm answered 200 to GET /text with no JSON"),
    ],
)
def test_answers_without_the_apis_shape_are_clear_errors(
    odd_server: str, path: str, message: str
) -> None:
    with pytest.raises(farm.FarmError) as raised:
        farm.call("GET", odd_server, path, "farm_token")
    assert raised.value.message == message


def test_an_unreachable_farm_and_a_bad_url_are_clear_errors() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(farm.FarmError, match=f"could not reach the farm at {url}: "):
            farm.call("GET", url, "/jobs", "", timeout=5)
    for bad in ("farm:8080", "ftp://farm", "http://", ""):
        with pytest.raises(farm.FarmError, match="the farm URL must be http://host:port"):
            farm.farm_url(bad)
    assert farm.farm_url(" https://farm.lan:8080/ ") == "https://farm.lan:8080"
