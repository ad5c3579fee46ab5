"""Citizens imports: the Yandex Backend School 2019 task (imports, relatives, birthdays, ages)."""
from apps.citizens.routes import app

MiB = 1024 * 1024

SETTINGS = {
    "imports_max_body": (80 * MiB, int, "body limit of POST /imports in bytes (413 past it)"),
    "citizens_helpers": (True, bool, "serve /generate, /init and /make_citizens_dust"),
}

__all__ = ["SETTINGS", "app"]
