#!/usr/bin/env python3
"""httpd.py: a prefork HTTP/1.1 server in pure Python, serving static files and JSON apps.

    python3 httpd.py -w 4 -r document_root

Settings come from built-in defaults, then server_config.json (or -c FILE), then HTTPD_<KEY>
environment variables, then flags; every key is a flag (``--help`` lists them).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from framework import __version__  # noqa: E402
from framework.server import config  # noqa: E402
from framework.server.listeners import BindError  # noqa: E402
from framework.server.log import setup_error_log  # noqa: E402
from handlers import app_settings, every_app_setting  # noqa: E402

DEFAULT_CONFIG = os.path.join(HERE, "server_config.json")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Every setting is a flag (generated from the settings table, apps' keys included)."""
    # the original spelling "-config FILE" would otherwise read as "-c onfig"
    argv = ["--config" if arg == "-config" else arg for arg in argv]
    p = argparse.ArgumentParser(
        prog="httpd.py", description="Prefork HTTP/1.1 server: static files and JSON APIs.",
        epilog="Precedence: defaults < config file < HTTPD_<KEY> environment < flags.")
    p.add_argument("-c", "--config", help="JSON config file (default: server_config.json)")
    p.add_argument("--print-config", action="store_true",
                   help="print the effective configuration as JSON and exit")
    p.add_argument("-t", "--check-config", action="store_true",
                   help="check the configuration (keys, paths, user, apps) without binding; "
                        "exit 0, or 2 with one line")
    p.add_argument("--version", action="version", version=f"httpd.py {__version__}")
    config.add_flags(p, {**config.CORE_SETTINGS, **every_app_setting()})
    return p.parse_args(argv)


COMMANDS = ("config", "print_config", "check_config")  # options that are not settings


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (typed later, with the rest, by config.build)."""
    return {key: value for key, value in vars(args).items()
            if key not in COMMANDS and value is not None}


def load_settings(args: argparse.Namespace, environ: dict[str, str] | None = None
                  ) -> dict[str, Any]:
    """Defaults < config file < environment < flags. Relative paths are taken from where each
    came from: the defaults from this directory, the file's from the file's directory, the
    environment's and flags' from the working directory."""
    environ = dict(os.environ if environ is None else environ)
    path = args.config
    # the bundled server_config.json describes the bundled site: a hosted WSGI app starts
    # from the defaults (and -c FILE), as under gunicorn
    if path is None and not (args.wsgi_app or environ.get(config.env_name("wsgi_app"))):
        path = DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None
    file_values = config.read_file(path) if path else {}
    base = os.path.dirname(os.path.abspath(path)) if path else HERE
    flags = flag_values(args)
    for key in config.PATH_KEYS:
        if isinstance(file_values.get(key), str):
            file_values[key] = absolute(file_values[key], base)
        name = config.env_name(key)
        if name in environ:
            environ[name] = absolute(environ[name], os.getcwd())
        if isinstance(flags.get(key), str):
            flags[key] = absolute(flags[key], os.getcwd())
    settings = config.build(file_values, flags, app_settings, environ,
                            disabled_keys=every_app_setting())
    for key in config.PATH_KEYS:
        settings[key] = absolute(settings[key], HERE)
    config.validate_paths(settings)
    return settings


def absolute(path: str, base: str) -> str:
    if path in ("", "-", "off", ":memory:") or os.path.isabs(path) or "://" in path:
        return path
    return os.path.normpath(os.path.join(base, path))


def check_config(settings: dict[str, Any]) -> None:
    """--check-config: what a start would check, and the apps load; nothing is bound or
    written (beyond opening the log files for append)."""
    config.check_user_can_write(settings)
    from framework.server import listeners

    for address in listeners.addresses(settings):  # bind (or -H/-p): every TCP host resolves
        if address.kind != "tcp":
            continue
        try:
            socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise config.ConfigError(f"cannot listen on {address}: {exc.strerror}") from None
    if settings["wsgi_app"]:
        from handlers.wsgi import load_app

        load_app(settings["wsgi_app"])  # any failure is a one-line ConfigError


def reload_plan(args: argparse.Namespace) -> Any:
    """HUP: the settings read anew and the app code imported anew (apps/, handlers/ and
    framework/web/; the server core itself changes only with USR2)."""
    from framework.server.master import acting_as

    settings = load_settings(args)
    config.check_user_can_write(settings)
    for name in [n for n in sys.modules if n.split(".")[0] in ("apps", "handlers")
                 or n.startswith("framework.web")]:
        del sys.modules[name]
    if settings["wsgi_app"]:
        module = settings["wsgi_app"].partition(":")[0]
        for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
            del sys.modules[name]
    from handlers import build_plan

    with acting_as(settings):
        return build_plan(settings)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from framework.server.master import Master, acting_as, inherited_sockets
    from handlers import build_plan

    try:
        settings = load_settings(args)
        if args.print_config:
            print(json.dumps(settings, indent=2, sort_keys=True))
            return 0
        if args.check_config:
            check_config(settings)
            print(f"httpd.py: configuration OK ({args.config or DEFAULT_CONFIG})")
            return 0
        config.check_user_can_write(settings)
        if settings["umask"]:
            os.umask(config.umask_value(settings["umask"]))
        setup_error_log(settings["log_level"], settings["error_log"])
        with acting_as(settings):
            plan = build_plan(settings)
        master = Master(plan, lambda: reload_plan(args))
    except config.ConfigError as exc:
        print(f"httpd.py: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"httpd.py: cannot start: {exc.strerror or exc}"
              f"{' (' + exc.filename + ')' if getattr(exc, 'filename', None) else ''}",
              file=sys.stderr)
        return 1
    except Exception as exc:  # e.g. a database that cannot be opened or migrated
        detail = " ".join(str(exc).split())  # one line, whatever the driver's message
        print(f"httpd.py: cannot start: {type(exc).__name__}: {detail}", file=sys.stderr)
        return 1
    inherited = inherited_sockets(os.environ)  # started by USR2 from a previous generation
    if inherited:
        master.adopt(inherited)
        return master.run()
    try:
        master.bind()
    except BindError as exc:  # the port is taken, the address is not ours, no permission...
        print(f"httpd.py: {exc}", file=sys.stderr)
        return 1
    return master.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
