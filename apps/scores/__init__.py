"""App E, client interests and scores (API.md §E): the OTUS scoring API as REST collections."""
from apps.scores.routes import app

__all__ = ["app"]
