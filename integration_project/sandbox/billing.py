"""The sandbox billing system: the third-party Stripe emulator `localstripe`, run on loopback.

localstripe (GPL-3.0, the optional `sandbox` extra) is imported and run unmodified; this module only
binds its aiohttp app to the socket it is given (its own CLI listens on every interface), moves its
pickle file from the fixed `/tmp/localstripe.pickle` into the data folder, seeds customers, and
registers the webhook receiver through localstripe's `/_config/webhooks` mechanism.

Known gaps of localstripe (the billing connector must cope): it ignores `Idempotency-Key`, has no
`/v1/prices`, delivers each webhook once after one second with no retry, forgets webhook
registrations on restart (this module re-registers), and has no fault injection.
"""

from __future__ import annotations

import json
import pickle
import random
import socket
from pathlib import Path
from typing import Any

from ._config import SystemConfig
from . import _fake


def _load(store: dict[str, Any], path: Path) -> None:
    if path.exists():
        with path.open("rb") as f:
            saved = pickle.load(f)
        store.clear()
        dict.update(store, saved)


def _dump(store: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)


def seed(config: SystemConfig) -> dict[str, Any]:
    """Create customers (one per five CRM contacts, at most 2,000) in localstripe's store; returns the report."""
    from localstripe.resources import Customer

    random.seed(config.seed)  # localstripe draws its object ids from the module-level generator
    count = min(2_000, max(1, config.size // 5))
    ids = []
    for index in range(101, 101 + count):
        p = _fake.person(index, config.seed)
        customer = Customer._api_create(
            name=f"{p.first} {p.last}", email=p.email, phone=p.phone,
            address={"country": p.country}, metadata={"crm_contact_id": str(index)})
        ids.append(customer.id)
    return {"system": "billing", "seed": config.seed, "size": config.size, "counts": {"customers": count},
            "customers": ids, "problems": {}}


def serve(config: SystemConfig, sock: socket.socket) -> None:
    """Run localstripe on an already bound socket until terminated."""
    from aiohttp import web
    from localstripe import server
    from localstripe.resources import store
    from localstripe.webhooks import register_webhook

    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.data_dir / "billing.pickle"
    # Instance attributes shadow the Store methods that hard-code /tmp/localstripe.pickle.
    store.try_load_from_disk = lambda: _load(store, path)
    store.dump_to_disk = lambda: None
    store.try_load_from_disk()
    fresh = not path.exists()

    async def on_startup(_: web.Application) -> None:
        if fresh:
            report = seed(config)
            config.seed_report.write_text(json.dumps(report, indent=1))
        store.dump_to_disk = lambda: _dump(store, path)
        store.dump_to_disk()
        if config.webhook_url:
            register_webhook("sandbox", config.webhook_url, config.webhook_secret, None)

    server.app.on_startup.append(on_startup)
    web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)
