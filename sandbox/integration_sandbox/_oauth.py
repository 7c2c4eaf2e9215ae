"""OAuth2 client credentials for a sandbox app (RFC 6749 4.4): `POST /oauth/token` issues bearer
tokens that expire; the system's static token stays valid as a personal API key for admins."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from urllib.parse import parse_qs, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._app import bearer

TOKEN_PATH = "/oauth/token"
CLIENT_ID = "sandbox"  # the client secret is the system's token


class TokenIssuer:
    """Issues, checks and revokes access tokens; `token_ttl_seconds` is how long one lives."""

    def __init__(self, client_secret: str, token_ttl_seconds: float = 3600):
        self.client_secret, self.ttl = client_secret, token_ttl_seconds
        self.issued: dict[str, float] = {}  # access token -> expiry (monotonic)

    def authenticate(self, request: Request, token: str) -> bool:
        """The token endpoint authenticates clients itself; elsewhere an issued or the static token."""
        if request.url.path == TOKEN_PATH:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return bearer(request, token) or (scheme == "Bearer" and self.issued.get(value, 0.0) > time.monotonic())

    def routes(self) -> list[Route]:
        """The token endpoint and `DELETE /_sandbox/tokens` (revoke every issued token)."""
        return [Route(TOKEN_PATH, self._token, methods=["POST"]),
                Route("/_sandbox/tokens", self._revoke, methods=["DELETE"])]

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        client_id, client_secret = self._basic(request) or (form.get("client_id", ""), form.get("client_secret", ""))
        if not (hmac.compare_digest(client_id, CLIENT_ID) and hmac.compare_digest(client_secret, self.client_secret)):
            return JSONResponse({"error": "invalid_client"}, 401, headers={"WWW-Authenticate": "Basic"})
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        token = secrets.token_urlsafe(24)
        self.issued[token] = time.monotonic() + self.ttl
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": int(self.ttl)},
                            headers={"Cache-Control": "no-store"})

    async def _revoke(self, _: Request) -> Response:
        self.issued.clear()
        return Response(status_code=204)

    @staticmethod
    def _basic(request: Request) -> tuple[str, str] | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return unquote(user), unquote(password)
