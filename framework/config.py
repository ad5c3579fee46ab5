"""Server settings: one schema of typed defaults, a JSON file over it, flags over that.

Precedence is built-in defaults < config file < command-line flags. Apps may declare extra keys
(``SETTINGS`` in their package); those join the schema once the app list is known.
Every problem is a ``ConfigError`` whose message is one line meant for stderr.
"""
from __future__ import annotations

import json
import os
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
    "apps": (["scores", "memes", "citizens", "uploads", "sales"], list,
             "app packages under apps/ to mount"),
    "database": ("var/httpd.sqlite3", str, "sqlite database file"),
    "sqlite_synchronous": ("NORMAL", str, "PRAGMA synchronous: OFF, NORMAL, FULL"),
    "sqlite_busy_timeout": (10000, int, "PRAGMA busy_timeout in milliseconds"),
    "media_root": ("var/media", str, "directory for uploaded media, outside document_root"),
    "admin_token": ("", str, "bearer token enabling admin helpers; empty disables them"),
    "page_size": (10, int, "default page size of paginated lists"),
    "max_page_size": (100, int, "largest page_size a client may ask for"),
    "wsgi_app": ("", str, "MODULE:CALLABLE of a WSGI app to host; empty hosts none"),
    "wsgi_script_name": ("", str, "SCRIPT_NAME given to the WSGI app (the path it is mounted at)"),
}

# Hosting a WSGI app, these default to off unless the config file or a flag sets them:
# the app then owns every path, as it does under gunicorn.
WSGI_DEFAULTS = {"apps": [], "document_root": ""}

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


def app_settings(app_names: list[str]) -> dict[str, tuple[Any, type, str]]:
    """The extra keys the enabled apps declare (``SETTINGS`` in each app package)."""
    from framework.app import load_app_modules  # late: apps import the framework

    schema: dict[str, tuple[Any, type, str]] = {}
    for module in load_app_modules(app_names):
        schema.update(getattr(module, "SETTINGS", {}))
    return schema


def build(file_values: dict[str, Any], flag_values: dict[str, Any]) -> dict[str, Any]:
    """Merge defaults < file < flags, validate, and return the final settings."""
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    if merged.get("wsgi_app"):
        merged = {**WSGI_DEFAULTS, **merged}
    apps = check_type("apps", merged.get("apps", CORE_SETTINGS["apps"][0]), list)
    if not all(isinstance(name, str) for name in apps):
        raise ConfigError("config key 'apps' must be a list of app names")
    try:
        schema = {**CORE_SETTINGS, **app_settings(apps)}
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
    script = s["wsgi_script_name"]
    if script and (not script.startswith("/") or script.endswith("/")):
        raise ConfigError(f"wsgi_script_name must start with '/' and not end with it, got {script!r}")
    if not s["document_root"] and not s["wsgi_app"]:
        raise ConfigError("document_root may be empty only when a wsgi_app is hosted")
    if s["workers"] == 0:
        s["workers"] = os.cpu_count() or 1
    if s["backlog"] == 0:
        s["backlog"] = somaxconn()


def validate_paths(s: dict[str, Any]) -> None:
    """Checks that need the final, absolute paths."""
    if s["document_root"] and not os.path.isdir(s["document_root"]):
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
