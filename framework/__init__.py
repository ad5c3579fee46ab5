"""The server: HTTP/1.1 protocol, worker event loop, prefork master, and the app toolkit."""

__version__ = "0.1.0"
