"""The baseline: a bare Falcon endpoint that parses the same JSON body, served by the same
server stack as the master, so each scenario reads as a ratio of what the stack allows."""

import falcon
import falcon.media
import orjson


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
