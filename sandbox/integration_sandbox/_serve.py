"""One sandbox system in its own process: `python -m integration_sandbox._serve` (internal).

The config arrives as JSON in the environment (never on the command line, where `ps` shows it).
The process binds 127.0.0.1:<port> itself (0 picks a free port), writes the bound port to
`<data_dir>/run/<system>.port`, then serves until SIGTERM (or, given `--with-parent`, until the
process that started it is gone). Exit code 3: the port is taken.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import threading
import time

import uvicorn

from ._config import CONFIG_ENV, SystemConfig
from ._faults import ConnectionDropped

EXIT_PORT_TAKEN = 3
EXIT_BAD_CONFIG = 2


class _QuietDrops(logging.Filter):
    """Injected connection drops are the point, not an error worth a traceback in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    return sock


def _exit_with_parent() -> None:
    """Stop (gracefully, by SIGTERM) once the starting process is gone, so no system outlives a crashed test."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def main() -> int:
    """Serve the system described by the environment's config; returns the exit code."""
    try:
        config = SystemConfig.model_validate_json(os.environ[CONFIG_ENV])
        port = int(sys.argv[1])
        if sys.argv[2:] == ["--with-parent"]:
            _exit_with_parent()
    except (KeyError, IndexError, ValueError) as exc:
        print(f"sandbox: bad process configuration: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        sock = bind(port)
    except OSError as exc:
        taken = exc.errno == errno.EADDRINUSE
        print(f"sandbox {config.system}: port {port} is {'already in use' if taken else exc.strerror}", file=sys.stderr)
        return EXIT_PORT_TAKEN
    run_dir = config.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    port_file = run_dir / f"{config.system}.port"
    port_file.with_suffix(".tmp").write_text(str(sock.getsockname()[1]))
    port_file.with_suffix(".tmp").replace(port_file)
    if config.system == "billing":
        from .billing import serve

        serve(config, sock)
        return 0
    from ._systems import build_app

    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    app = build_app(config)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
