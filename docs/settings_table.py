"""Rewrite the settings table in docs/server.md from the settings table in code (`make docs`)."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from framework.server import config  # noqa: E402
from handlers import every_app_setting  # noqa: E402

START, END = "<!-- settings:start -->\n", "\n<!-- settings:end -->"


def render(text: str) -> str:
    head, rest = text.split(START)
    _, tail = rest.split(END.lstrip("\n"), 1)
    table = config.markdown_table({**config.CORE_SETTINGS, **every_app_setting()})
    return head + START + table + END + tail


if __name__ == "__main__":
    path = REPO / "docs" / "server.md"
    path.write_text(render(path.read_text()))
