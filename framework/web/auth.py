"""Admin-only endpoints: off unless a token is configured, then a bearer token."""
from __future__ import annotations

import hmac

from framework.web.app import ApiError, ApiRequest

DISABLED = ("admin helpers are disabled; set admin_token in the config, pass --admin-token, "
            "or set HTTPD_ADMIN_TOKEN to enable them")


def require_admin(req: ApiRequest) -> None:
    """403 when no token is configured; 401 unless ``Authorization: Bearer <token>`` matches."""
    token = req.settings.get("admin_token", "")
    if not token:
        raise ApiError(403, DISABLED)
    scheme, _, given = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), token.encode("utf-8")):
        raise ApiError(401, "a valid admin bearer token is required",
                       headers=[("WWW-Authenticate", 'Bearer realm="admin"')])
