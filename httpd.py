#!/usr/bin/env python3
"""httpd.py: a prefork HTTP/1.1 server in pure Python, serving static files and JSON apps.

    python3 httpd.py -w 4 -r document_root

Settings come from built-in defaults, then server_config.json (or -c FILE), then flags.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from framework import __version__, config  # noqa: E402
from framework.log import setup_error_log  # noqa: E402

DEFAULT_CONFIG = os.path.join(HERE, "server_config.json")


def parse_args(argv: list[str]) -> argparse.Namespace:
    # the seed's spelling "-config FILE" would otherwise read as "-c onfig"
    argv = ["--config" if arg == "-config" else arg for arg in argv]
    p = argparse.ArgumentParser(
        prog="httpd.py", description="Prefork HTTP/1.1 server: static files and JSON APIs.")
    p.add_argument("-w", "--workers", type=int, help="worker processes (default: CPU count)")
    p.add_argument("-r", "--document-root", help="directory to serve (default: document_root/)")
    p.add_argument("-H", "--host", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("-p", "--port", type=int, help="port to listen on (default: 8080)")
    p.add_argument("-c", "--config", help="JSON config file (default: server_config.json)")
    p.add_argument("--log-level", choices=config.LOG_LEVELS, help="error log level")
    p.add_argument("--access-log", metavar="PATH|-|off", help="access log target")
    p.add_argument("--admin-token", help="enable admin helpers with this bearer token")
    p.add_argument("--wsgi", metavar="MODULE:CALLABLE",
                   help="host this WSGI app (imported from the current directory or PYTHONPATH)")
    p.add_argument("--version", action="version", version=f"httpd.py {__version__}")
    return p.parse_args(argv)


def load_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults < config file < flags. Relative paths are taken from where each came from:
    the defaults from this directory, the file's from the file's directory, flags from cwd."""
    path = args.config
    # the bundled server_config.json describes the bundled site: a hosted WSGI app starts
    # from the defaults (and -c FILE), as under gunicorn
    if path is None and not args.wsgi:
        path = DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None
    file_values = config.read_file(path) if path else {}
    base = os.path.dirname(os.path.abspath(path)) if path else HERE
    for key in config.PATH_KEYS:
        if isinstance(file_values.get(key), str):
            file_values[key] = absolute(file_values[key], base)
    flags = {
        "workers": args.workers, "document_root": args.document_root, "host": args.host,
        "port": args.port, "log_level": args.log_level, "access_log": args.access_log,
        "admin_token": args.admin_token, "wsgi_app": args.wsgi,
    }
    for key in config.PATH_KEYS:
        if flags.get(key) is not None:
            flags[key] = absolute(flags[key], os.getcwd())
    settings = config.build(file_values, flags)
    for key in config.PATH_KEYS:
        settings[key] = absolute(settings[key], HERE)
    config.validate_paths(settings)
    return settings


def absolute(path: str, base: str) -> str:
    if path in ("", "-", "off", ":memory:") or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from framework.master import Master
    from handlers import build_plan

    try:
        settings = load_settings(args)
        setup_error_log(settings["log_level"])
        plan = build_plan(settings)
        master = Master(plan, lambda: build_plan(load_settings(args)))
    except config.ConfigError as exc:
        print(f"httpd.py: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"httpd.py: cannot start: {exc.strerror or exc}"
              f"{' (' + exc.filename + ')' if getattr(exc, 'filename', None) else ''}",
              file=sys.stderr)
        return 1
    except Exception as exc:  # e.g. a database that cannot be opened or migrated
        print(f"httpd.py: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        master.bind()
    except OSError as exc:  # the port is taken, the address is not ours, no permission...
        print(f"httpd.py: cannot listen on {settings['host']}:{settings['port']}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    return master.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
