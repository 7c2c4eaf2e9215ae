"""The sandbox 3PL's OAuth2 client-credentials endpoint behaves as RFC 6749 4.4 says."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.testclient import TestClient

from integration_sandbox import SystemConfig
from integration_sandbox.fulfilment import build_app


def test_tokens_are_issued_to_the_right_client_only_and_expire(tmp_path: Path) -> None:
    config = SystemConfig(system="fulfilment", data_dir=tmp_path, size=4, options={"token_ttl_seconds": 1})
    with TestClient(build_app(config)) as client:
        grant = {"grant_type": "client_credentials"}
        wrong = client.post("/oauth/token", data=grant, auth=("sandbox", "not-the-secret"))
        assert wrong.status_code == 401 and wrong.json() == {"error": "invalid_client"}
        other = client.post("/oauth/token", data={"grant_type": "password"}, auth=("sandbox", config.token))
        assert other.status_code == 400 and other.json() == {"error": "unsupported_grant_type"}
        posted = client.post("/oauth/token", data={**grant, "client_id": "sandbox", "client_secret": config.token})
        assert posted.status_code == 200  # client_secret_post works too
        issued = client.post("/oauth/token", data=grant, auth=("sandbox", config.token)).json()
        assert issued["token_type"] == "Bearer" and issued["expires_in"] == 1
        as_client = {"Authorization": f"Bearer {issued['access_token']}"}
        assert client.get("/v1/shipments", headers=as_client).status_code == 200
        assert client.get("/v1/shipments", headers={"Authorization": "Bearer made-up"}).status_code == 401
        time.sleep(1.1)
        assert client.get("/v1/shipments", headers=as_client).status_code == 401  # expired
        assert client.get("/v1/shipments", headers={"Authorization": f"Bearer {config.token}"}).status_code == 200
