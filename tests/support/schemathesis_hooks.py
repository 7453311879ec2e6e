"""Schemathesis extensions for the live OpenAPI test (loaded through ``SCHEMATHESIS_HOOKS``):
the agent update upload, a zip archive, is sent as the bytes generated for it."""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias("application/zip", "application/octet-stream")
