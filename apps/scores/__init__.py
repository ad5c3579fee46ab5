"""Client interests and scores: the OTUS scoring API as REST collections."""
from apps.scores.routes import app

__all__ = ["app"]
