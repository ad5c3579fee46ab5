"""Bounded collection of per-field validation problems, shared by every app.

A hostile body can break a rule a million times (``{"citizens": [0, 0, ...]}``). Listing
each problem would make the answer tens of megabytes and the worker hundreds: the collector
keeps the first ``MAX_FIELDS`` fields with up to ``MAX_MESSAGES`` messages each and only
counts the rest, so memory stays proportional to the input and the 400 stays small.
"""
from __future__ import annotations

from typing import Any

from framework.server.heartbeat import beat

__all__ = ["BEAT_EVERY", "FieldErrors", "beat", "bounded", "shorten"]

MAX_FIELDS = 100  # fields listed in one error answer
MAX_MESSAGES = 10  # messages listed per field
MAX_MESSAGE_LENGTH = 300  # characters of one message (a message may quote the input)
MAX_KEY_LENGTH = 200  # characters of one field path
BEAT_EVERY = 4096  # items checked between heartbeats in long validations


class FieldErrors(dict):
    """Field path -> list of messages, bounded; ``dropped`` counts what was not kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.dropped = 0
        for key, messages in dict(*args, **kwargs).items():
            self[key] = messages

    def add(self, field: str, message: str) -> None:
        messages = self.get(field)
        if messages is None:
            if len(self) >= MAX_FIELDS:
                self.dropped += 1
                return
            super().__setitem__(shorten(field, MAX_KEY_LENGTH), [shorten(message)])
        elif len(messages) < MAX_MESSAGES:
            messages.append(shorten(message))
        else:
            self.dropped += 1

    def __setitem__(self, field: str, messages: list[str]) -> None:
        """``errors[field] = [...]`` replaces that field's messages, within the bounds."""
        if field not in self and len(self) >= MAX_FIELDS:
            self.dropped += len(messages)
            return
        kept = [shorten(m) for m in messages[:MAX_MESSAGES]]
        self.dropped += len(messages) - len(kept)
        super().__setitem__(shorten(field, MAX_KEY_LENGTH), kept)

    def setdefault(self, field: str, default: Any = None) -> Any:
        raise TypeError("use FieldErrors.add(field, message)")  # would bypass the bounds

    @property
    def total(self) -> int:
        return sum(len(m) for m in self.values()) + self.dropped


def bounded(fields: dict[str, list[str]] | None) -> tuple[FieldErrors, int]:
    """Any field -> messages mapping cut to the bounds, and how many messages were dropped."""
    if isinstance(fields, FieldErrors):
        return fields, fields.dropped
    out = FieldErrors()
    for key, messages in (fields or {}).items():
        out[key] = list(messages)
    return out, out.dropped


def shorten(text: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"
