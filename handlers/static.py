"""The document root: static files under DOCUMENT_ROOT, served as the settings say.

The file-serving engine (path safety, validators, ranges, compression) is
``framework.web.files``, shared with the media store; this is its configuration for the
site the server was started with.
"""
from __future__ import annotations

from typing import Any

from framework.web.files import StaticFiles, StaticOptions


def document_root(settings: dict[str, Any]) -> StaticFiles:
    return StaticFiles(settings["document_root"], settings["static_cache_size"],
                       StaticOptions.from_settings(settings))
