"""A stand-in external validator on loopback (the only kind Ferry talks to is the user's own
service, so no real one exists to run): it records each POSTed candidate and answers with
``answer(request)`` after ``delay`` seconds. This module never imports ``ferry``."""

from __future__ import annotations

import contextlib
import json
import threading
import time

from tests.harness._http import LoopbackServer, QuietHandler


class Validator:
    """Answers with ``answer`` (a callable of the request JSON) after ``delay`` seconds."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answer = lambda request: (200, {"verdict": "approve"})
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server = LoopbackServer(_Handler, self)


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        owner: Validator = self.server.owner  # type: ignore[attr-defined]
        request = json.loads(self.read_body())
        with owner.lock:
            owner.requests.append(request)
        time.sleep(owner.delay)
        status, body = owner.answer(request)
        with contextlib.suppress(OSError):  # the client may have given up waiting
            self.reply(status, body if isinstance(body, bytes) else json.dumps(body).encode(),
                       content_type="application/json")
