"""An Event Grid topic stand-in: a local HTTPS server answering the real ``EventGridPublisherClient``.

It speaks the CloudEvents schema endpoint of a custom topic: ``POST /api/events?api-version=...``
with ``Content-Type: application/cloudevents-batch+json; charset=utf-8`` and the topic key in the
``aeg-sas-key`` header (a wrong key answers 401, as Event Grid does). Received events are kept in
``events``. This module never imports ``ferry``.
"""

from __future__ import annotations

import json
import ssl
import threading
from pathlib import Path
from typing import Any

from tests.harness._http import LoopbackServer, QuietHandler
from tests.harness.certs import make_self_signed_cert


class EventGridStandIn:
    def __init__(self, directory: Path, key: str) -> None:
        self.key = key
        self.ca_bundle, key_path = make_self_signed_cert(Path(directory))
        self.events: list[dict[str, Any]] = []
        self.rejected = 0
        self._lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_bundle, key_path)
        self._server._httpd.socket = context.wrap_socket(self._server._httpd.socket, server_side=True)
        self.endpoint = f"https://127.0.0.1:{self._server.port}/api/events"

    def stop(self) -> None:
        self._server.stop()


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        owner: EventGridStandIn = self.server.owner  # type: ignore[attr-defined]
        body = self.read_body()
        if not self.path.startswith("/api/events") or "api-version=" not in self.path:
            self.reply_json(404, {"error": {"code": "NotFound", "message": "no such route"}})
        elif self.headers.get("aeg-sas-key") != owner.key:
            with owner._lock:
                owner.rejected += 1
            self.reply_json(401, {"error": {"code": "Unauthorized", "message": "bad key"}})
        elif not (self.headers.get("Content-Type") or "").startswith("application/cloudevents-batch+json"):
            self.reply_json(400, {"error": {"code": "BadRequest", "message": "not a CloudEvents batch"}})
        else:
            with owner._lock:
                owner.events.extend(json.loads(body))
            self.reply(200, b"")
