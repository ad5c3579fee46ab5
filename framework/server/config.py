"""Server settings: one table of typed keys, and the JSON file, environment and flags over it.

Precedence is built-in defaults < config file < ``HTTPD_<KEY>`` environment variables <
command-line flags. Apps may declare extra keys (``SETTINGS`` in their package); those join
the table once the app list is known. Every problem is a ``ConfigError`` whose message is one
line meant for stderr.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

from framework.server import forwarded, listeners
from framework.server.log import COMBINED, FormatError, compile_format

MiB = 1024 * 1024


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line for the operator."""


class Setting(NamedTuple):
    """One configuration key: everything the CLI, the environment, the file and the docs need.

    The long flag is ``--key-with-dashes``; ``flags`` adds short aliases. The environment
    variable is ``HTTPD_<KEY>``. ``path`` marks a relative path resolved against where the
    value came from (the config file's directory, or the working directory for flags and
    the environment). ``choices`` limits a string key. ``repeat`` makes a list key's flag
    take one item per use (``-b A -b B``).
    """

    default: Any
    type: type
    doc: str
    flags: tuple[str, ...] = ()
    path: bool = False
    choices: tuple[str, ...] = ()
    repeat: bool = False  # a list key whose flag may be given several times, one item each


Schema = dict[str, Setting]

# The one table of the server's keys. Apps add theirs (``SETTINGS`` in an app package, as
# (default, type, doc) tuples). Flags, HTTPD_* variables, docs/server.md's table and the
# check that server_config.json lists every key are all generated from here.
CORE_SETTINGS: Schema = {
    "host": Setting("127.0.0.1", str, "address to listen on", ("-H",)),
    "port": Setting(8080, int, "TCP port to listen on", ("-p",)),
    "bind": Setting([], list, "addresses to listen on, replacing host/port when given: "
                              "HOST:PORT, [IPV6]:PORT, unix:/path/to.sock, fd://N (an "
                              "inherited listening descriptor); the flag may be repeated",
                    ("-b",), repeat=True),
    "unix_socket_mode": Setting("0660", str, "permissions (octal) of the unix: sockets bound"),
    "certfile": Setting("", str, "TLS certificate chain (PEM); set, every bind speaks HTTPS",
                        path=True),
    "keyfile": Setting("", str, "TLS private key (PEM, unencrypted); empty: in certfile",
                       path=True),
    "ca_certs": Setting("", str, "CA certificates (PEM); set, clients must present a "
                                 "certificate they signed (mutual TLS)", path=True),
    "tls_min_version": Setting("TLSv1.2", str, "oldest TLS version accepted",
                               choices=("TLSv1.2", "TLSv1.3")),
    "forwarded_allow_ips": Setting(["127.0.0.1", "::1"], list, "peers (addresses, CIDR "
                                   "networks, or '*') whose Forwarded / X-Forwarded-For, "
                                   "-Proto, -Host fields are trusted; a unix-socket peer "
                                   "counts as one"),
    "proxy_protocol": Setting(False, bool, "expect a PROXY protocol v1/v2 header (HAProxy, "
                                           "AWS NLB) on every connection; close those "
                                           "without one"),
    "workers": Setting(0, int, "worker processes; 0 means one per CPU", ("-w",)),
    "document_root": Setting("document_root", str, "directory served as static files; '' "
                                                   "(only with wsgi_app) serves none",
                             ("-r",), path=True),
    "log_level": Setting("info", str, "error log level", choices=("debug", "info", "warning",
                                                                  "error")),
    "access_log": Setting("-", str, "access log: '-' for stdout, a file path, or 'off'",
                          path=True),
    "access_log_format": Setting(COMBINED, str, "access log line in gunicorn's atoms (h l u t "
                                                "r m U q H s b B f a D M L p, {Header}i, "
                                                "{Header}o); the default is Combined"),
    "error_log": Setting("-", str, "error log: '-' for stderr, or a file path", path=True),
    "metrics_path": Setting("", str, "URL path answering Prometheus metrics aggregated over "
                                     "all workers, e.g. /metrics; empty: off"),
    "metrics_allow_ips": Setting(["127.0.0.1", "::1"], list, "client addresses allowed to "
                                                             "read metrics_path (others get "
                                                             "403)"),
    "pidfile": Setting("", str, "file holding the master's pid while it runs; empty: none",
                       path=True),
    "user": Setting("", str, "user (name or uid) workers and services run as, after binding as "
                             "root; empty: stay who started"),
    "group": Setting("", str, "group (name or gid) for user; empty: the user's own group"),
    "umask": Setting("", str, "octal umask of every process (e.g. 027); empty: inherited"),
    "max_requests": Setting(0, int, "a worker retires gracefully after this many requests "
                                    "(0: never), handing back its memory"),
    "max_requests_jitter": Setting(0, int, "adds a random 0..N to max_requests per worker, so "
                                           "workers do not all retire at once"),
    "backlog": Setting(0, int, "listen backlog; 0 means the system's somaxconn"),
    "max_connections": Setting(1024, int, "open connections per worker; at the cap the oldest "
                                          "idle keep-alive connections are reused"),
    "worker_timeout": Setting(30.0, float, "seconds without a heartbeat (no progress at all) "
                                           "before a worker is killed"),
    "graceful_timeout": Setting(30.0, float, "seconds a stopping worker may take to finish "
                                             "requests"),
    "header_timeout": Setting(10.0, float, "seconds to receive a complete request head"),
    "body_timeout": Setting(30.0, float, "seconds of silence allowed while receiving a body"),
    "keepalive_timeout": Setting(5.0, float, "seconds an idle keep-alive connection is kept"),
    "send_timeout": Setting(60.0, float, "seconds of no progress sending a response before "
                                         "closing"),
    "max_request_line": Setting(8190, int, "longest request line in bytes (414 past it)"),
    "max_header_size": Setting(32768, int, "largest header section in bytes (431 past it)"),
    "max_header_count": Setting(100, int, "most header fields in one request (431 past it)"),
    "max_body_size": Setting(1 * MiB, int, "default request body limit in bytes (413 past it)"),
    "body_spool_size": Setting(1 * MiB, int, "bodies larger than this are spooled to a temp "
                                             "file"),
    "static_cache_size": Setting(256 * 1024, int, "static files up to this size are cached in "
                                                  "memory"),
    "open_file_cache_valid": Setting(1.0, float, "seconds a static file cached in memory is "
                                                 "served without a stat, 0..1 (a change shows "
                                                 "within this bound); 0 checks on every request"),
    "gzip": Setting(True, bool, "compress static files and app answers of gzip_types when the "
                                "client accepts gzip"),
    "gzip_min_length": Setting(1024, int, "smallest body in bytes worth compressing"),
    "gzip_types": Setting(["text/*", "application/javascript", "application/json",
                           "application/xml", "image/svg+xml", "application/wasm"], list,
                          "media types compressed: exact types, 'main/*', or '*' for all"),
    "gzip_static": Setting(True, bool, "send FILE.gz (when present and not older than FILE) "
                                       "for FILE to clients that accept gzip"),
    "cache_control": Setting({}, dict, "URL-path glob -> Cache-Control value, e.g. "
                                       "{\"*.css\": \"max-age=3600\"}; the first match wins; "
                                       "no header when none matches"),
    "max_ranges": Setting(16, int, "most ranges in one Range header; past it the whole file is "
                                   "sent (200); 0 disables ranges"),
    "index": Setting(["index.html"], list, "index file names tried in a directory, in order"),
    "error_pages": Setting({}, dict, "status code (\"404\", 400..599) -> a file in "
                                     "document_root, served with that status on static paths"),
    "fallback_file": Setting("", str, "a file in document_root served with 200 for a GET/HEAD "
                                      "of a static path that does not exist (single-page "
                                      "apps); empty: off"),
    "mime_types": Setting({}, dict, "extension with the dot ('.wasm') -> Content-Type, over "
                                    "the built-in table"),
    "apps": Setting(["scores", "memes", "citizens", "uploads", "sales"], list,
                    "app packages under apps/ to mount"),
    "database": Setting("var/httpd.sqlite3", str, "sqlite database file, or a PostgreSQL URL "
                                                  "(postgresql://USER@HOST:PORT/DB, "
                                                  "postgresql:///DB?host=/run/postgresql; "
                                                  "needs framework/web/requirements-postgres.txt)",
                        path=True),
    "sqlite_synchronous": Setting("NORMAL", str, "PRAGMA synchronous",
                                  choices=("OFF", "NORMAL", "FULL", "EXTRA")),
    "sqlite_busy_timeout": Setting(10000, int, "PRAGMA busy_timeout in milliseconds; a write "
                                               "waiting longer is answered 503"),
    "media_root": Setting("var/media", str, "directory for uploaded media, outside "
                                            "document_root", path=True),
    "media_store": Setting("local", str, "where media files live: \"local\" (under "
                                         "media_root) or \"s3://BUCKET/PREFIX\" (S3 or a "
                                         "compatible store; needs framework/web/requirements-s3.txt; "
                                         "credentials from AWS_ACCESS_KEY_ID and "
                                         "AWS_SECRET_ACCESS_KEY)"),
    "s3_endpoint_url": Setting("", str, "S3 endpoint for MinIO and other compatibles "
                                        "(http://HOST:PORT); empty: AWS"),
    "s3_region": Setting("us-east-1", str, "S3 region"),
    "s3_presign_seconds": Setting(0, int, "answer media GETs with a 302 to an S3 URL "
                                          "presigned for this many seconds; 0 streams them "
                                          "through the server"),
    "admin_token": Setting("", str, "bearer token enabling admin helpers; empty disables them"),
    "page_size": Setting(10, int, "default page size of paginated lists"),
    "max_page_size": Setting(100, int, "largest page_size a client may ask for"),
    "wsgi_app": Setting("", str, "MODULE:CALLABLE of a WSGI app to host (docs/wsgi.md); with "
                                 "one, apps and document_root default to off",
                        ("--wsgi",)),
    "wsgi_script_name": Setting("", str, "SCRIPT_NAME given to the WSGI app: /path, no "
                                         "trailing slash"),
}

# Hosting a WSGI app, these default to off unless the config file or a flag sets them:
# the app then owns every path, as it does under gunicorn.
WSGI_DEFAULTS = {"apps": [], "document_root": ""}

LOG_LEVELS = CORE_SETTINGS["log_level"].choices
PATH_KEYS = tuple(key for key, spec in CORE_SETTINGS.items() if spec.path)
ENV_PREFIX = "HTTPD_"
AT_LEAST_ONE = ("max_connections", "max_request_line", "max_header_size", "max_header_count",
                "page_size", "max_page_size")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def as_setting(spec: Setting | tuple) -> Setting:
    return spec if isinstance(spec, Setting) else Setting(*spec)


def defaults(schema: Schema) -> dict[str, Any]:
    return {key: spec.default for key, spec in schema.items()}


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def parse_text(key: str, text: str, kind: type) -> Any:
    """A value given as text (a flag, an environment variable) as the key's type.

    bool: true/false/yes/no/on/off/1/0; list: a JSON array or comma-separated words;
    dict: a JSON object; int and float as Python reads them.
    """
    try:
        if kind is str:
            return text
        if kind is bool:
            word = text.strip().lower()
            if word in TRUE_WORDS or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is list:
            if text.lstrip().startswith("["):
                return json.loads(text)
            return [word.strip() for word in text.split(",") if word.strip()]
        if kind is dict:
            return json.loads(text)
    except (ValueError, json.JSONDecodeError):
        pass
    raise ConfigError(f"{key} must be {kind.__name__}, got {text!r}")


def add_flags(parser: Any, schema: Schema) -> None:
    """One argparse option per key: ``--key-with-dashes`` (plus short aliases), read as text
    and typed by ``build``; booleans are ``--key`` / ``--no-key``."""
    import argparse  # only the CLI needs it

    for key, spec in schema.items():
        names = [*spec.flags, flag_name(key)]
        default = json.dumps(spec.default) if isinstance(spec.default, (list, dict)) \
            else spec.default
        help_text = f"{spec.doc} (default: {default}; env {env_name(key)})".replace("%", "%%")
        if spec.type is bool:
            parser.add_argument(*names, dest=key, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        elif spec.repeat:
            parser.add_argument(*names, dest=key, action="append", default=None,
                                metavar=key.upper(), help=help_text)
        else:
            parser.add_argument(*names, dest=key, default=None, metavar=key.upper(),
                                choices=spec.choices or None, help=help_text)


def env_values(schema: Schema, environ: Mapping[str, str]) -> dict[str, Any]:
    """The keys set as HTTPD_<KEY> variables, typed."""
    values = {}
    for key, spec in schema.items():
        text = environ.get(env_name(key))
        if text is not None:
            values[key] = parse_text(env_name(key), text, spec.type)
    return values


def markdown_table(schema: Schema) -> str:
    """The docs table of every key (docs/server.md holds it between markers)."""
    lines = ["| key | flag | type | default | meaning |", "|---|---|---|---|---|"]
    for key, spec in schema.items():
        flags = ", ".join(f"`{f}`" for f in (*spec.flags, flag_name(key)))
        if spec.type is bool:
            flags += f", `--no-{key.replace('_', '-')}`"
        doc = spec.doc + (f" ({', '.join(spec.choices)})" if spec.choices else "")
        lines.append(f"| `{key}` | {flags} | {spec.type.__name__} | "
                     f"`{json.dumps(spec.default)}` | {doc} |")
    return "\n".join(lines)


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
          app_settings: Callable[[list[str]], Schema] | None = None,
          environ: Mapping[str, str] | None = None,
          disabled_keys: Collection[str] = ()) -> dict[str, Any]:
    """Merge defaults < file < environment (HTTPD_<KEY>) < flags, validate, resolve the
    automatic values (``workers`` and ``backlog`` 0), and return the final settings.

    Flag values may be text (as argparse gives them) or typed. ``app_settings`` gives the
    extra keys the enabled apps declare (the server knows no app: ``handlers`` passes it in).
    """
    flags = {k: v for k, v in flag_values.items() if v is not None}
    if flags.get("wsgi_app") or (environ or {}).get(env_name("wsgi_app")) \
            or file_values.get("wsgi_app"):
        file_values = {**WSGI_DEFAULTS, **file_values}
    schema = build_schema(file_values, flags, app_settings, environ or {})
    merged = {**file_values, **env_values(schema, environ or {})}
    for key, value in flags.items():
        if key in schema and isinstance(value, str) and schema[key].type is not str:
            value = parse_text(flag_name(key), value, schema[key].type)
        merged[key] = value
    settings = defaults(schema)
    for key, value in merged.items():
        if key not in schema:
            if key in disabled_keys and key in file_values:
                continue  # a key of an app that is not enabled: kept in the file, unused
            raise ConfigError(f"unknown config key {key!r}")
        settings[key] = check_type(key, value, schema[key].type)
    validate(settings, schema)
    resolve_automatic(settings)
    return settings


def build_schema(file_values: dict[str, Any], flags: dict[str, Any],
                 app_settings: Callable[[list[str]], Schema] | None,
                 environ: Mapping[str, str]) -> Schema:
    """The core keys and those of the enabled apps (the app list itself may come from any
    source, so it is settled first)."""
    apps = file_values.get("apps", CORE_SETTINGS["apps"].default)
    if env_name("apps") in environ:
        apps = parse_text(env_name("apps"), environ[env_name("apps")], list)
    if "apps" in flags:
        apps = flags["apps"]
        if isinstance(apps, str):
            apps = parse_text("--apps", apps, list)
    apps = check_type("apps", apps, list)
    if not all(isinstance(name, str) for name in apps):
        raise ConfigError("config key 'apps' must be a list of app names")
    try:
        extra = app_settings(apps) if app_settings else {}
    except ImportError as exc:
        raise ConfigError(f"cannot load app: {exc}") from None
    return {**CORE_SETTINGS, **{key: as_setting(spec) for key, spec in extra.items()}}


def validate(s: dict[str, Any], schema: Schema = CORE_SETTINGS) -> None:
    """Check every value; changes nothing (``resolve_automatic`` fills in the 0s)."""
    if not 0 <= s["port"] <= 65535:
        raise ConfigError(f"port must be 0..65535, got {s['port']}")
    if s["workers"] < 0:
        raise ConfigError(f"workers must be >= 0, got {s['workers']}")
    for key, spec in schema.items():
        value = s[key]
        if key == "sqlite_synchronous":
            value = value.upper()
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"{key} must be one of {', '.join(spec.choices)}")
    for key in AT_LEAST_ONE:
        if s[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {s[key]}")
    for key, spec in s.items():
        if isinstance(spec, (int, float)) and not isinstance(spec, bool) and spec < 0:
            raise ConfigError(f"{key} must not be negative, got {spec}")
    script = s["wsgi_script_name"]
    if script and (not script.startswith("/") or script.endswith("/")):
        raise ConfigError(f"wsgi_script_name must start with '/' and not end with it, "
                          f"got {script!r}")
    if not s["document_root"] and not s["wsgi_app"]:
        raise ConfigError("document_root may be empty only when a wsgi_app is hosted")
    store = s["media_store"]
    if store != "local" and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?",
                                             store):
        raise ConfigError(f"media_store must be \"local\" or \"s3://BUCKET/PREFIX\", "
                          f"got {store!r}")
    validate_static(s)
    validate_listening(s)
    validate_operations(s)


def validate_listening(s: dict[str, Any]) -> None:
    """bind addresses, the unix socket mode, the trusted proxies, and TLS's key pair."""
    if not all(isinstance(item, str) for item in s["bind"] + s["forwarded_allow_ips"]):
        raise ConfigError("bind and forwarded_allow_ips must be lists of strings")
    try:
        listeners.addresses(s)
        forwarded.parse_entries(s["forwarded_allow_ips"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    mode = s["unix_socket_mode"]
    if not (mode.isascii() and mode.isdigit() and "8" not in mode and "9" not in mode
            and int(mode, 8) <= 0o777):
        raise ConfigError(f"unix_socket_mode must be octal permissions such as 0660, "
                          f"got {mode!r}")
    if bool(s["certfile"]) < bool(s["keyfile"] or s["ca_certs"]):
        raise ConfigError("keyfile and ca_certs need a certfile")


def validate_operations(s: dict[str, Any]) -> None:
    """The process and log keys that need no look at the system."""
    try:
        compile_format(s["access_log_format"])
    except FormatError as exc:
        raise ConfigError(str(exc)) from None
    if s["umask"]:
        try:
            umask_value(s["umask"])
        except ValueError:
            raise ConfigError(f"umask must be octal 000..777, got {s['umask']!r}") from None
    path = s["metrics_path"]
    if path and (not path.startswith("/") or "?" in path or not is_field_value(path)):
        raise ConfigError(f"metrics_path must be a path starting with '/', got {path!r}")
    if not all(isinstance(ip, str) and ip for ip in s["metrics_allow_ips"]):
        raise ConfigError("metrics_allow_ips must be a list of addresses")
    if s["group"] and not s["user"]:
        raise ConfigError("group needs user")


def umask_value(text: str) -> int:
    value = int(text, 8)
    if not 0 <= value <= 0o777:
        raise ValueError(text)
    return value


def user_ids(s: dict[str, Any]) -> tuple[int, int] | None:
    """(uid, gid) of the ``user`` and ``group`` keys, or None when no user is set."""
    if not s["user"]:
        return None
    try:
        entry = pwd.getpwuid(int(s["user"])) if s["user"].isdigit() \
            else pwd.getpwnam(s["user"])
    except KeyError:
        raise ConfigError(f"user {s['user']!r} does not exist") from None
    gid = entry.pw_gid
    if s["group"]:
        try:
            gid = int(s["group"]) if s["group"].isdigit() else grp.getgrnam(s["group"]).gr_gid
        except KeyError:
            raise ConfigError(f"group {s['group']!r} does not exist") from None
    return entry.pw_uid, gid


def writable_by(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid`` (with primary group ``gid``) may write ``path``, by its mode bits."""
    if uid == 0:
        return True
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & 0o200)
    if st.st_gid == gid:
        return bool(st.st_mode & 0o020)
    return bool(st.st_mode & 0o002)


def check_user_can_write(s: dict[str, Any], keys: tuple[str, ...] = ("media_root", "database")
                         ) -> None:
    """With ``user`` set: the directories the workers write must be theirs to write."""
    ids = user_ids(s)
    if ids is None:
        return
    if os.geteuid() not in (0, ids[0]):
        raise ConfigError(f"user {s['user']!r} needs the server started as root")
    for key in keys:
        path = s.get(key, "")
        if not path or path == ":memory:":
            continue
        target = path if os.path.exists(path) else os.path.dirname(path)
        while target and not os.path.exists(target):
            target = os.path.dirname(target)
        if key == "database":  # SQLite writes its journal beside the file
            checks = [path, os.path.dirname(path)] if os.path.exists(path) else [target]
        else:
            checks = [target]
        for checked in checks:
            if not writable_by(checked, *ids):
                raise ConfigError(f"{key} {checked} is not writable by user {s['user']}")


def resolve_automatic(s: dict[str, Any]) -> None:
    """The values 0 stands for: one worker per CPU, the system's listen backlog."""
    if s["workers"] == 0:
        s["workers"] = os.cpu_count() or 1
    if s["backlog"] == 0:
        s["backlog"] = somaxconn()


def validate_static(s: dict[str, Any]) -> None:
    """The static-file keys: lists and mappings of the right strings, no CR/LF in a field."""
    if not 0 <= s["open_file_cache_valid"] <= 1:
        # a path's resolution is remembered one second and renewing it re-reads the file
        raise ConfigError(f"open_file_cache_valid must be 0..1 seconds, "
                          f"got {s['open_file_cache_valid']}")
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
    if s["document_root"] and not os.path.isdir(s["document_root"]):
        raise ConfigError(f"document root is not a directory: {s['document_root']}")
    if s["access_log"] not in ("-", "off"):
        # each worker opens the log itself; a path it cannot open would crash them all in a loop
        try:
            os.close(os.open(s["access_log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as exc:
            raise ConfigError(f"cannot open access log {s['access_log']}: {exc.strerror}") from None
    if s["certfile"]:
        try:
            listeners.tls_context(s)  # the files exist, parse, and the key matches the certificate
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    validate_system(s)


def validate_system(s: dict[str, Any]) -> None:
    """What --check-config adds: the user and group exist, the pidfile can be written."""
    user_ids(s)
    if s["pidfile"] and not os.path.isdir(os.path.dirname(s["pidfile"])):
        raise ConfigError(f"pidfile directory does not exist: {os.path.dirname(s['pidfile'])}")
    if s["error_log"] != "-":
        try:
            os.close(os.open(s["error_log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as exc:
            raise ConfigError(f"cannot open error log {s['error_log']}: {exc.strerror}") from None


def somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024
