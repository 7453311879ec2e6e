"""The baselines: a bare Falcon endpoint that parses the same JSON body, served by granian as a
WSGI app (``app``: the stack's limit) and behind the master's own front (``front``: what farm's
server stack allows, its bodies received on the event loop and the app run on a pool of threads),
so each scenario reads as a ratio of what the stack allows."""

import falcon
import falcon.media
import orjson

from farm_http.front import BodyLimits, BufferedFront


class Echo:
    def on_post(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        body = req.get_media()
        resp.media = {"ok": True, "keys": len(body) if isinstance(body, dict) else 0}

    def on_get(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        resp.media = [{"ok": True}]


handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
app = falcon.App()
app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: handler})
app.resp_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: handler})
app.add_route("/api/v1/agents", Echo())
app.add_route("/api/v1/agents/{agent_id}", Echo())
# As `farm serve` builds it with the default settings (1 MiB bodies, 30 s, 8 threads).
front = BufferedFront(app, BodyLimits(1 << 20, 1 << 20, []), body_timeout=30, threads=8)
