"""Local stand-ins for the example business's eight vendor systems, for the demo and the tests.

Each system is a small app on 127.0.0.1 with the habits of the vendor it stands for, its state in a
SQLite file under a data folder, seeded reproducibly (with deliberate data-quality problems listed in
`<data_dir>/<system>.seed-report.json`), with fault injection and signed webhooks.

    from integration_project.sandbox import Sandbox

    with Sandbox(tmp_path, systems=["crm", "billing"], ports={"crm": 0, "billing": 0}) as sb:
        httpx.get(sb.url("crm") + "/crm/v3/objects/contacts",
                  headers={"Authorization": f"Bearer {sb.token('crm')}"})
        sb.seed_report("crm")["problems"]["invalid_email"]   # ids, as strings

`Sandbox(data_dir, systems=None, ports=None, seed=42, size=50, *, tokens=None, faults=None,
options=None, webhook_url=None, startup_timeout=120.0)`; `.start()` / `.stop()` or `with`;
`.url(system)`, `.port(system)`, `.token(system)`, `.webhook_secret(system)`, `.seed_report(system)`.
Ports default to `DEFAULT_PORTS` (crm 8101 ... legacy_erp 8108); 0 picks a free port.
`running(data_dir)` lists the systems a sandbox started from that folder (also from another process,
e.g. `integrations sandbox up`); `stop_running(data_dir)` stops them. Failures raise `SandboxError`.

Every starlette system also serves `/_sandbox/health` (no auth) and `/_sandbox/faults` (GET, PUT a
`Faults` JSON body; system token required) to change faults live.
"""

from ._config import DEFAULT_PORTS, DEFAULT_TOKENS, DEFAULT_WEBHOOK_SECRETS, SYSTEMS, SystemConfig
from ._faults import Faults
from ._runner import RunningSystem, Sandbox, SandboxError, running, stop_running

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_TOKENS",
    "DEFAULT_WEBHOOK_SECRETS",
    "SYSTEMS",
    "Faults",
    "RunningSystem",
    "Sandbox",
    "SandboxError",
    "SystemConfig",
    "running",
    "stop_running",
]
