"""What the server needs from the rest of the program, and nothing more.

``handlers`` builds a ``Plan`` (settings, the ``Application`` that answers requests, and the
``Service`` processes to run beside the workers); the master runs it. The server imports
nothing from ``framework.web``, ``handlers`` or ``apps``: these types are the whole seam.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from framework.server.messages import Response
from framework.server.protocol import Request


class Application(Protocol):
    def preflight(self, request: Request) -> Response | int:
        """Before the body is read: a Response to answer at once, or the body size limit."""

    def handle(self, request: Request) -> Response:
        """Answer a complete request."""

    def error(self, status: int, message: str, request: Request | None) -> Response:
        """The response for a protocol-level error (``request`` when the head was parsed)."""


@dataclass
class Service:
    """A long-running process beside the workers (e.g. the uploads processor)."""
    name: str
    target: Callable[[dict[str, Any]], None]


@dataclass
class Plan:
    """What the master runs: settings, the app serving requests and the services."""
    settings: dict[str, Any]
    app: Any
    services: list[Service] = field(default_factory=list)
