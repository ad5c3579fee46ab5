"""Integer query parameters declared once: the handler's bounds and /openapi.json's schema.

A bound may name a setting (``IntParam("...", 1, "sales_max_cnt")``), so a configured limit
reaches the validation and the document alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IntParam:
    """A decimal integer query parameter in ``minimum .. maximum``; ``default`` when absent."""
    description: str
    minimum: int
    maximum: int | str  # a number, or the name of the setting holding it
    default: int | None = None

    def highest(self, settings: dict[str, Any]) -> int:
        return settings[self.maximum] if isinstance(self.maximum, str) else self.maximum

    def bounds(self, settings: dict[str, Any],
               default: int | None = None) -> tuple[int | None, int, int]:
        """``(default, lowest, highest)``; ``default`` stands in for a computed one (now)."""
        return (self.default if default is None else default, self.minimum,
                self.highest(settings))

    def schema(self, settings: dict[str, Any]) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": self.minimum,
                                  "maximum": self.highest(settings)}
        if self.default is not None:
            schema["default"] = self.default
        return schema
