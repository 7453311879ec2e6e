"""The WSGI entry module (``farm_http.wsgi:app``): wires the master from the environment.

This is the one module of the HTTP layer that imports the composition root; it is what the WSGI
server's worker processes import.
"""

import atexit
import os

from farm_adapters.composition import build_runtime
from farm_adapters.logs import configure_logging
from farm_adapters.settings import Settings
from farm_http.app import HttpOptions, create_app

settings = Settings.load(os.environ)
configure_logging(settings.log_level, settings.log_format)
# `farm serve` created the queue's tables before starting this worker.
# No connection pre-ping here: see create_database_engine.
runtime = build_runtime(settings, create_queue_tables=False, pre_ping=False, batching=True)
runtime.start_batching()
# What waits in the batches is written as the worker exits (farm serve stopping on SIGTERM).
atexit.register(runtime.close)
app = create_app(runtime.farm, HttpOptions.of(settings))
