"""The entry module the web workers import: wires the master from the environment.

``farm_http.wsgi:front`` is what ``farm serve`` serves (ASGI: bodies are received in full before
the Falcon app sees a request, see farm_http.front); ``farm_http.wsgi:app`` is the Falcon (WSGI)
app itself.

This is the one module of the HTTP layer that imports the composition root.
"""

import atexit
import os

from farm_adapters.composition import build_runtime
from farm_adapters.logs import configure_logging
from farm_adapters.settings import Settings
from farm_http.app import HttpOptions, create_app
from farm_http.front import BodyLimits, BufferedFront
from farm_http.routes import ROUTES

settings = Settings.load(os.environ)
configure_logging(settings.log_level, settings.log_format)
# `farm serve` created the queue's tables before starting this worker.
# No connection pre-ping here: see create_database_engine.
runtime = build_runtime(settings, create_queue_tables=False, pre_ping=False, batching=True)
runtime.start_batching()
# What waits in the batches is written as the worker exits (farm serve stopping on SIGTERM).
atexit.register(runtime.close)
app = create_app(runtime.farm, HttpOptions.of(settings))
front = BufferedFront(
    app,
    BodyLimits(
        settings.max_json_bytes,
        # Each upload route's store enforces its own limit; the front, the larger of the two.
        max(settings.max_log_bytes, settings.max_update_bytes),
        [route.template for route in ROUTES if route.raw_bodies],
    ),
    body_timeout=settings.body_timeout_seconds,
    # As many as the database pool has connections (FARM_THREADS).
    threads=settings.threads,
)
