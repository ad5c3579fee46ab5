"""Server settings: one schema of typed defaults, a JSON file over it, flags over that.

Precedence is built-in defaults < config file < command-line flags. Apps may declare extra keys
(``SETTINGS`` in their package); those join the schema once the app list is known.
Every problem is a ``ConfigError`` whose message is one line meant for stderr.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

MiB = 1024 * 1024


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line for the operator."""


# key: (default, type, one-line description). The README's config table mirrors this.
CORE_SETTINGS: dict[str, tuple[Any, type, str]] = {
    "host": ("127.0.0.1", str, "address to listen on"),
    "port": (8080, int, "TCP port to listen on"),
    "workers": (0, int, "worker processes; 0 means one per CPU"),
    "document_root": ("document_root", str, "directory served as static files"),
    "log_level": ("info", str, "error log level: debug, info, warning, error"),
    "access_log": ("-", str, "access log: '-' for stdout, a file path, or 'off'"),
    "backlog": (0, int, "listen backlog; 0 means the system's somaxconn"),
    "max_connections": (1024, int, "open connections per worker"),
    "worker_timeout": (30.0, float, "seconds without a heartbeat before a worker is killed"),
    "graceful_timeout": (30.0, float, "seconds a stopping worker may take to finish requests"),
    "header_timeout": (10.0, float, "seconds to receive a complete request head"),
    "body_timeout": (30.0, float, "seconds of silence allowed while receiving a body"),
    "keepalive_timeout": (5.0, float, "seconds an idle keep-alive connection is kept"),
    "send_timeout": (60.0, float, "seconds of no progress sending a response before closing"),
    "max_request_line": (8190, int, "longest request line in bytes (414 past it)"),
    "max_header_size": (32768, int, "largest header section in bytes (431 past it)"),
    "max_header_count": (100, int, "most header fields in one request (431 past it)"),
    "max_body_size": (1 * MiB, int, "default request body limit in bytes (413 past it)"),
    "body_spool_size": (1 * MiB, int, "bodies larger than this are spooled to a temp file"),
    "static_cache_size": (256 * 1024, int, "static files up to this size are cached in memory"),
    "gzip": (True, bool, "compress answers of gzip_types with gzip when the client accepts it"),
    "gzip_min_length": (1024, int, "smallest body in bytes worth compressing"),
    "gzip_types": (["text/*", "application/javascript", "application/json", "application/xml",
                    "image/svg+xml", "application/wasm"], list,
                   "media types compressed ('text/*' matches every text type)"),
    "gzip_static": (True, bool, "send FILE.gz, when present and not older, for FILE"),
    "cache_control": ({}, dict, "URL path glob -> Cache-Control value; the first match wins"),
    "max_ranges": (16, int, "most ranges in one Range header; past it the whole file is sent"),
    "index": (["index.html"], list, "index file names tried in a directory, in order"),
    "error_pages": ({}, dict, "status code -> file in document_root served with that status"),
    "fallback_file": ("", str, "file in document_root served for missing paths (SPA)"),
    "mime_types": ({}, dict, "extension ('.wasm') -> Content-Type, over the built-in table"),
    "apps": (["scores", "memes", "citizens", "uploads", "sales"], list,
             "app packages under apps/ to mount"),
    "database": ("var/httpd.sqlite3", str, "sqlite database file"),
    "sqlite_synchronous": ("NORMAL", str, "PRAGMA synchronous: OFF, NORMAL, FULL"),
    "sqlite_busy_timeout": (10000, int, "PRAGMA busy_timeout in milliseconds"),
    "media_root": ("var/media", str, "directory for uploaded media, outside document_root"),
    "admin_token": ("", str, "bearer token enabling admin helpers; empty disables them"),
    "page_size": (10, int, "default page size of paginated lists"),
    "max_page_size": (100, int, "largest page_size a client may ask for"),
}

LOG_LEVELS = ("debug", "info", "warning", "error")
PATH_KEYS = ("document_root", "database", "media_root", "access_log")
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def defaults(schema: dict[str, tuple[Any, type, str]]) -> dict[str, Any]:
    return {key: spec[0] for key, spec in schema.items()}


def check_type(key: str, value: Any, expected: type) -> Any:
    """Return value coerced where lossless (int -> float), or raise ConfigError."""
    if expected is float and type(value) is int:
        return float(value)
    if type(value) is not expected:
        raise ConfigError(
            f"config key {key!r} must be {expected.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    return data


def build(file_values: dict[str, Any], flag_values: dict[str, Any],
          app_settings: Callable[[list[str]], dict[str, tuple[Any, type, str]]] | None = None,
          ) -> dict[str, Any]:
    """Merge defaults < file < flags, validate, and return the final settings.

    ``app_settings`` gives the extra keys the enabled apps declare (the server knows no app:
    ``handlers`` passes it in).
    """
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    apps = check_type("apps", merged.get("apps", CORE_SETTINGS["apps"][0]), list)
    if not all(isinstance(name, str) for name in apps):
        raise ConfigError("config key 'apps' must be a list of app names")
    try:
        schema = {**CORE_SETTINGS, **(app_settings(apps) if app_settings else {})}
    except ImportError as exc:
        raise ConfigError(f"cannot load app: {exc}") from None
    settings = defaults(schema)
    for key, value in merged.items():
        if key not in schema:
            raise ConfigError(f"unknown config key {key!r}")
        settings[key] = check_type(key, value, schema[key][1])
    if not settings["admin_token"]:
        settings["admin_token"] = os.environ.get("HTTPD_ADMIN_TOKEN", "")
    validate(settings)
    return settings


def validate(s: dict[str, Any]) -> None:
    if not 0 <= s["port"] <= 65535:
        raise ConfigError(f"port must be 0..65535, got {s['port']}")
    if s["workers"] < 0:
        raise ConfigError(f"workers must be >= 0, got {s['workers']}")
    if s["log_level"] not in LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    if s["sqlite_synchronous"].upper() not in SYNCHRONOUS:
        raise ConfigError(f"sqlite_synchronous must be one of {', '.join(SYNCHRONOUS)}")
    for key in ("max_connections", "max_request_line", "max_header_size", "max_header_count",
                "page_size", "max_page_size"):
        if s[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {s[key]}")
    for key, spec in s.items():
        if isinstance(spec, (int, float)) and not isinstance(spec, bool) and spec < 0:
            raise ConfigError(f"{key} must not be negative, got {spec}")
    validate_static(s)
    if s["workers"] == 0:
        s["workers"] = os.cpu_count() or 1
    if s["backlog"] == 0:
        s["backlog"] = somaxconn()


def validate_static(s: dict[str, Any]) -> None:
    """The static-file keys: lists and mappings of the right strings, no CR/LF in a field."""
    for key in ("gzip_types", "index"):
        if not all(isinstance(item, str) and item for item in s[key]):
            raise ConfigError(f"{key} must be a list of non-empty strings")
    if not s["index"]:
        raise ConfigError("index must name at least one file")
    for name in s["index"]:
        if "/" in name or "\\" in name or name in (".", ".."):
            raise ConfigError(f"index names a file, not a path: {name!r}")
    for key in ("cache_control", "error_pages", "mime_types"):
        for name, value in s[key].items():
            if not isinstance(value, str) or not value or not is_field_value(value):
                raise ConfigError(f"{key}[{name!r}] must be a non-empty string of printable "
                                  f"ASCII, got {value!r}")
    for status in s["error_pages"]:
        if not (status.isascii() and status.isdigit() and 400 <= int(status) <= 599):
            raise ConfigError(f"error_pages keys are status codes 400..599, got {status!r}")
    for extension, mime in s["mime_types"].items():
        if not (extension.startswith(".") and len(extension) > 1 and "/" not in extension):
            raise ConfigError(f"mime_types keys are extensions with the dot ('.wasm'), "
                              f"got {extension!r}")
        if mime.count("/") != 1 or mime.startswith("/") or "/;" in mime or mime.endswith("/"):
            raise ConfigError(f"mime_types[{extension!r}] is not a media type: {mime!r}")


def is_field_value(text: str) -> bool:
    return text.isascii() and text.isprintable()


def validate_paths(s: dict[str, Any]) -> None:
    """Checks that need the final, absolute paths."""
    if not os.path.isdir(s["document_root"]):
        raise ConfigError(f"document root is not a directory: {s['document_root']}")
    if s["access_log"] not in ("-", "off"):
        # each worker opens the log itself; a path it cannot open would crash them all in a loop
        try:
            os.close(os.open(s["access_log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as exc:
            raise ConfigError(f"cannot open access log {s['access_log']}: {exc.strerror}") from None


def somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024
