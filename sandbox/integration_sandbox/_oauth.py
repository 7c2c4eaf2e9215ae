"""OAuth2 client credentials for a sandbox app (RFC 6749 4.4): `POST /oauth/token` issues bearer
tokens that expire; the system's static token stays valid as a personal API key for admins. A vendor
with its own habits (Shopify: another path and header, its answer's fields) is configured here."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN_PATH = "/oauth/token"
CLIENT_ID = "sandbox"  # the client secret is the system's token


def standard_answer(token: str, ttl: int) -> dict[str, Any]:
    """RFC 6749 5.1's answer."""
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


class TokenIssuer:
    """Issues, checks and revokes access tokens; `token_ttl_seconds` is how long one lives.

    `header` carries the tokens (`authorization`: as Bearer, another header: bare); `answer` shapes
    the token endpoint's answer, `refusal` its answer (status, body) to a bad client id or secret.
    """

    def __init__(self, client_secret: str, token_ttl_seconds: float = 3600, *, path: str = TOKEN_PATH,
                 header: str = "authorization", answer: Callable[[str, int], dict[str, Any]] = standard_answer,
                 refusal: tuple[int, dict[str, Any]] = (401, {"error": "invalid_client"})):
        self.client_secret, self.ttl = client_secret, token_ttl_seconds
        self.path, self.header, self.answer, self.refusal = path, header, answer, refusal
        self.issued: dict[str, float] = {}  # access token -> expiry (monotonic)

    def presented(self, request: Request) -> str:
        """The token a request carries ("" without one)."""
        value = request.headers.get(self.header, "")
        if self.header != "authorization":
            return value
        scheme, _, token = value.partition(" ")
        return token if scheme == "Bearer" else ""

    def authenticate(self, request: Request, token: str) -> bool:
        """The token endpoint authenticates clients itself; elsewhere an issued or the static token."""
        if request.url.path == self.path:
            return True
        presented = self.presented(request)
        return bool(presented) and (hmac.compare_digest(presented, token)
                                    or self.issued.get(presented, 0.0) > time.monotonic())

    def routes(self) -> list[Route]:
        """The token endpoint and `DELETE /_sandbox/tokens` (revoke every issued token)."""
        return [Route(self.path, self._token, methods=["POST"]),
                Route("/_sandbox/tokens", self._revoke, methods=["DELETE"])]

    async def _token(self, request: Request) -> Response:
        raw = await request.body()
        form: dict[str, Any]
        if "json" in request.headers.get("content-type", ""):
            try:
                form = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                form = {}
            form = {k: str(v) for k, v in form.items()} if isinstance(form, dict) else {}
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode("latin-1")).items()}
        client_id, client_secret = self._basic(request) or (form.get("client_id", ""), form.get("client_secret", ""))
        if not (hmac.compare_digest(client_id, CLIENT_ID) and hmac.compare_digest(client_secret, self.client_secret)):
            status, body = self.refusal
            return JSONResponse(body, status, headers={"WWW-Authenticate": "Basic"} if status == 401 else None)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        token = secrets.token_urlsafe(24)
        self.issued[token] = time.monotonic() + self.ttl
        return JSONResponse(self.answer(token, int(self.ttl)), headers={"Cache-Control": "no-store"})

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
