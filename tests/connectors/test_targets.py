"""No credential leaves the API's host, and no private target is reached unless declared.

Nothing here sends traffic off loopback: a refusal is shown by a recording transport that sees
nothing, names resolve through the seam's resolver replaced by the test, and the cross-host case
runs real servers on 127.0.0.1 and 127.0.0.2 (Linux routes all of 127/8 to lo).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from integration_project.connectors import http as seam
from integration_project.connectors.http import VendorClient
from integration_project.connectors.zendesk import Zendesk
from integration_project.errors import PermanentError
from integration_project.model import Api, Auth


@contextlib.contextmanager
def serving(app: Starlette, host: str) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port of a loopback address; yield its base URL."""
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), f"the server on {host} did not start"
        threading.Event().wait(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def zendesk_with_a_link_to(elsewhere: str) -> Iterator[tuple[str, str, list[dict[str, str]]]]:
    """A Zendesk stand-in on 127.0.0.1 whose first users page links its next page on another
    loopback address, where a server records the headers of every request it receives."""
    received: list[dict[str, str]] = []

    async def second_page(request: Request) -> JSONResponse:
        received.append(dict(request.headers))
        return JSONResponse({"users": [{"id": 2, "external_id": "crm-2"}], "meta": {"has_more": False},
                             "links": {"next": None}})

    with serving(Starlette(routes=[Route("/api/v2/users.json", second_page)]), elsewhere) as other:
        async def first_page(request: Request) -> JSONResponse:
            return JSONResponse({"users": [{"id": 1, "external_id": "crm-1"}], "meta": {"has_more": True},
                                 "links": {"next": f"{other}/api/v2/users.json?page%5Bsize%5D=100&page%5Bafter%5D=1"}})

        with serving(Starlette(routes=[Route("/api/v2/users.json", first_page)]), "127.0.0.1") as url:
            yield url, other, received


def zendesk_api(url: str, **changes) -> Api:
    return Api(connector="zendesk", base_url=url, version="v2",
               auth=Auth(type="bearer", token_env="SUPPORT_TOKEN"), **changes)


def test_a_next_page_on_another_host_never_gets_the_token(monkeypatch):
    """It did: the connector followed the vendor's absolute link and sent the bearer token there."""
    monkeypatch.setenv("SUPPORT_TOKEN", "zendesk-secret")
    monkeypatch.setenv("INTEGRATIONS_ALLOW_PRIVATE_NETWORK", "1")  # the test's servers are on loopback
    with zendesk_with_a_link_to("127.0.0.2") as (url, other, received):
        zendesk = Zendesk(zendesk_api(url))
        try:
            found: dict[str, str] | PermanentError = zendesk.index("users", "external_id")
        except PermanentError as exc:
            found = exc
        finally:
            zendesk.close()
    assert not [h for h in received if "zendesk-secret" in str(h)], "the token reached 127.0.0.2"
    assert received == []  # refused before any connection
    assert isinstance(found, PermanentError) and "refused, not the API's host 127.0.0.1" in str(found)
    assert other.removeprefix("http://") in str(found) and "zendesk-secret" not in str(found)


def test_a_host_declared_in_follow_hosts_is_followed_without_credentials(monkeypatch):
    monkeypatch.setenv("SUPPORT_TOKEN", "zendesk-secret")
    with zendesk_with_a_link_to("127.0.0.2") as (url, _, received):
        zendesk = Zendesk(zendesk_api(url, follow_hosts=["127.0.0.2"], allow_private_network=True))
        try:
            assert zendesk.index("users", "external_id") == {"crm-1": "1", "crm-2": "2"}
        finally:
            zendesk.close()
    assert len(received) == 1 and "authorization" not in received[0]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Requests that reached the transport; names resolve through a table (never a DNS server)."""
    table = {"intranet.example.com": ["10.0.0.1"], "mixed.example.com": ["93.184.215.14", "10.0.0.1"],
             "api.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]}

    def resolve(host: str) -> list[str]:
        if host not in table:
            raise AssertionError(f"{host} was sent to DNS")
        return table[host]

    monkeypatch.setattr(seam, "resolve", resolve)
    monkeypatch.delenv(seam.ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.setenv("VENDOR_TOKEN", "vendor-secret")
    return []


def client(base_url: str, seen: list[httpx.Request], **changes) -> VendorClient:
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={"ok": True}))
    return VendorClient(Api(connector="rest", base_url=base_url, version="1",
                            auth=Auth(type="bearer", token_env="VENDOR_TOKEN"), **changes), transport=transport)


PRIVATE = ["http://10.1.2.3", "http://172.16.0.9", "http://192.168.1.1", "http://127.0.0.1:8101",
           "http://169.254.169.254", "http://[fd00::1]", "http://[fe80::1]", "http://[::1]",
           "http://[::ffff:10.0.0.1]", "http://0.0.0.0", "http://intranet.example.com",
           "http://mixed.example.com", "http://localhost:8000", "http://metadata.google.internal"]


@pytest.mark.parametrize("base_url", PRIVATE)
def test_private_loopback_and_link_local_targets_are_refused_before_connecting(base_url, recorded):
    with client(base_url, recorded) as c, pytest.raises(PermanentError, match="private, loopback or link-local") as err:
        c.request("GET", "/v1/stock")
    assert recorded == []
    assert "allow_private_network" in str(err.value)


@pytest.mark.parametrize("base_url", PRIVATE)
def test_private_targets_are_reached_when_the_declaration_allows_them(base_url, recorded, monkeypatch):
    monkeypatch.setattr(seam, "resolve", lambda host: ["10.0.0.1"])  # unknown names too, still no DNS
    with client(base_url, recorded, allow_private_network=True) as c:
        assert c.request("GET", "/v1/stock").body == {"ok": True}
    assert len(recorded) == 1 and recorded[0].headers["Authorization"] == "Bearer vendor-secret"


def test_the_sandbox_profile_allows_private_targets(recorded, monkeypatch):
    monkeypatch.setenv(seam.ALLOW_PRIVATE_ENV, "1")
    with client("http://127.0.0.1:8101", recorded) as c:
        c.request("GET", "/v1/stock")
    assert len(recorded) == 1


def test_a_public_host_is_reached_and_a_link_to_a_private_one_is_refused(recorded):
    with client("https://api.example.com", recorded, follow_hosts=["intranet.example.com"]) as c:
        c.request("GET", "/v1/stock")
        with pytest.raises(PermanentError, match=r"intranet\.example\.com \(10\.0\.0\.1\) is a private"):
            c.request("GET", "https://intranet.example.com/v1/stock")
    assert [str(r.url) for r in recorded] == ["https://api.example.com/v1/stock"]


def test_an_absolute_link_to_the_api_itself_keeps_its_credentials_and_others_are_refused(recorded):
    with client("https://api.example.com", recorded) as c:
        c.request("GET", "https://api.example.com/v1/stock?page=2")
        for elsewhere in ("https://mixed.example.com/v1/stock", "http://api.example.com/v1/stock",
                          "https://api.example.com:8443/v1/stock"):  # another host, scheme or port
            with pytest.raises(PermanentError, match="not the API's host"):
                c.request("GET", elsewhere)
    assert len(recorded) == 1 and recorded[0].headers["Authorization"] == "Bearer vendor-secret"


def test_basic_auth_is_not_sent_to_a_followed_host(recorded, monkeypatch):
    monkeypatch.setenv("VENDOR_PASSWORD", "hunter2")
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={}))
    api = Api(connector="rest", base_url="https://api.example.com", version="1", follow_hosts=["Mixed.Example.com"],
              allow_private_network=True,
              auth=Auth(type="basic", username_env="VENDOR_TOKEN", password_env="VENDOR_PASSWORD"))
    with VendorClient(api, transport=transport) as c:
        c.request("GET", "/v1/stock")
        c.request("GET", "https://mixed.example.com/files/1")
    assert "Authorization" in seen[0].headers and "Authorization" not in seen[1].headers


def test_follow_hosts_takes_host_names_only():
    with pytest.raises(ValueError, match="host names without scheme, port or path: https://cdn.example.com"):
        Api(connector="rest", base_url="https://api.example.com", version="1", follow_hosts=["https://cdn.example.com"])
