"""The layers, checked from the imports each file makes (module level or inside functions).

- ``framework/server/`` (bytes, sockets, processes) imports nothing from ``framework/web/``,
  ``handlers/`` or ``apps/``;
- ``framework/`` imports neither ``handlers/`` nor ``apps/``;
- an app imports only ``framework/web/`` and itself (never the server, never another app).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, by full dotted name (``from x import y`` gives x and x.y)."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def project_imports(path: Path) -> set[str]:
    return {name for name in imported_modules(path)
            if name.split(".")[0] in ("framework", "handlers", "apps")}


def files_under(folder: str) -> list[Path]:
    files = sorted((REPO / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}/"
    return files


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


SERVER = files_under("framework/server")
FRAMEWORK = files_under("framework")
APPS = files_under("apps")


@pytest.mark.parametrize("path", SERVER, ids=ids(SERVER))
def test_the_server_imports_only_itself(path: Path) -> None:
    bad = {name for name in project_imports(path)
           if not (name == "framework" or name.startswith("framework.server"))
           or name.startswith(("framework.web", "handlers", "apps"))}
    # "from framework import __version__" is the package itself, not a layer
    bad.discard("framework.__version__")
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", FRAMEWORK, ids=ids(FRAMEWORK))
def test_the_framework_imports_no_handler_and_no_app(path: Path) -> None:
    bad = {name for name in project_imports(path) if name.startswith(("handlers", "apps"))}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", APPS, ids=ids(APPS))
def test_an_app_imports_the_web_toolkit_and_itself_only(path: Path) -> None:
    app = path.relative_to(REPO / "apps").parts[0]
    allowed = ("framework.web", f"apps.{app}")
    bad = {name for name in project_imports(path)
           if not name.startswith(allowed) and name not in ("apps", "framework")}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The checker sees function-level and dotted imports (a negative control)."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from framework.web.app import App\n    import handlers.api\n")
    assert project_imports(sample) == {"framework.web.app", "framework.web.app.App",
                                       "handlers.api"}
