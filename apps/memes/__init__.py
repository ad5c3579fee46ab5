"""The memes collection: memes with an image, a title and a description."""
from apps.memes.routes import app
from apps.memes.validation import MiB

SETTINGS = {
    "meme_image_max_bytes": (20 * MiB, int, (
        "largest meme image in bytes (413 past it); a request carrying one may exceed it "
        "by 1 MiB of form overhead")),
}

__all__ = ["SETTINGS", "app"]
