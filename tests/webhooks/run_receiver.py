"""Serve a receiver for the tests on an inherited socket: `python run_receiver.py <database-url> <fd>`.

The endpoints come as JSON in RECEIVER_ENDPOINTS: {"system": ["scheme", ["secret", ...]], ...};
RECEIVER_LIMITS may hold ReceiverLimits fields as JSON, {"read_timeout": 1}, to test them quickly.
"""

from __future__ import annotations

import json
import os
import socket
import sys

import uvicorn
from pydantic import SecretStr

from integration_project.webhooks import Endpoint, Inbox, ReceiverLimits, create_receiver
from integration_project.webhooks.server import receiver_config


def main() -> None:
    """Build the app from the arguments and serve it until killed."""
    url, fd = sys.argv[1], int(sys.argv[2])
    config = json.loads(os.environ["RECEIVER_ENDPOINTS"])
    endpoints = {name: Endpoint(scheme, [SecretStr(s) for s in secrets]) for name, (scheme, secrets) in config.items()}
    limits = ReceiverLimits(**json.loads(os.environ.get("RECEIVER_LIMITS", "{}")))
    config = receiver_config(create_receiver(endpoints, Inbox(url), limits), limits, log_level="warning")
    # uvicorn's own fd= would take the socket for AF_UNIX and leave Nagle on (40 ms per request)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])


if __name__ == "__main__":
    main()
