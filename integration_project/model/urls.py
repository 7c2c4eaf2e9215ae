"""Credentials written into URLs: found in declarations (refused) and removed before display."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
# A query parameter whose name has one of these words carries a credential: ?access_token=,
# ?apiKey=, ?client_secret=, ?sig= (signed URLs), ?password=. Words, so `author` or `monkey` pass.
_SECRET_WORDS = {"password", "passwd", "pwd", "pass", "secret", "token", "key", "apikey", "sig",
                 "signature", "credential", "credentials", "auth", "sas"}
REDACTED = "***"


def _secret_param(name: str) -> bool:
    words = re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    return any(w in _SECRET_WORDS or w.endswith(("token", "secret", "password")) for w in words)


def credentials_in(text: str) -> str | None:
    """What credential a text's URLs carry ('a password', "query parameter 'token'"), else None."""
    for url in URL_RE.findall(text):
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.password:
            return "a password (user:password@)"
        if names := [n for n, _ in parse_qsl(parts.query, keep_blank_values=True) if _secret_param(n)]:
            return f"query parameter {names[0]!r}"
    return None


def redact(text: str) -> str:
    """The text with each URL's user info and credential-like query values replaced by ***."""
    return URL_RE.sub(lambda m: _redact_url(m.group(0)), text)


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED  # not parseable: show nothing rather than a secret
    if "@" in parts.netloc:  # replaced in place: urlunsplit would rewrite some schemes' slashes
        url = url.replace(parts.netloc, f"{REDACTED}@{parts.netloc.rpartition('@')[2]}", 1)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(_secret_param(n) for n, _ in pairs):
        query = urlencode([(n, REDACTED if _secret_param(n) else v) for n, v in pairs], safe="*")
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url
