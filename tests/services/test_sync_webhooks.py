"""Webhook delivery against a local receiver: what a receiver answers is read only up to a cap and
dropped, one client serves every hook of an event, and a hook off the allow-list is never contacted."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ferry.egress import EgressPolicy
from ferry.sync.definition import Webhook
from ferry.sync.notify import deliver
from tests.harness._http import LoopbackServer, QuietHandler

HUGE = 64 * 1024 * 1024


class Receiver:
    """Answers ``status`` with a ``HUGE`` body, written in 1 MiB pieces until the client hangs up."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.posts = 0
        self.written = 0
        self.lock = threading.Lock()
        self.server = LoopbackServer(_Handler, self)


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        owner: Receiver = self.server.owner  # type: ignore[attr-defined]
        self.read_body()
        with owner.lock:
            owner.posts += 1
        self.send_response(owner.status)
        self.send_header("Content-Length", str(HUGE))
        self.end_headers()
        piece = b"x" * (1024 * 1024)
        try:
            for _ in range(HUGE // len(piece)):
                self.wfile.write(piece)
                with owner.lock:
                    owner.written += len(piece)
        except OSError:  # the client read its few KiB and closed: the point of the test
            self.close_connection = True


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(status: int) -> Receiver:
        made.append(Receiver(status))
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.stop()


def event() -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e1", "type": "ferry.sync.promoted", "source": "ferry", "data": {}}


def test_a_huge_answer_is_not_read_and_a_2xx_is_delivered(receivers):
    ok, failing = receivers(200), receivers(404)
    problems = deliver(event(), (Webhook(ok.server.url, None), Webhook(failing.server.url, None)))
    assert ok.posts == 1 and failing.posts == 1
    assert len(problems) == 1 and "answered 404" in problems[0] and failing.server.url in problems[0]
    # The client stopped after its cap; the receivers could not push the whole answer.
    assert ok.written < HUGE and failing.written < HUGE


def test_a_hook_off_the_allow_list_is_refused_and_the_others_still_get_the_event(receivers):
    allowed = receivers(200)
    host = allowed.server.url.split("//", 1)[1].split("/", 1)[0]
    problems = deliver(event(), (Webhook("http://169.254.169.254/hook?code=SECRETKEY", None),
                                 Webhook(allowed.server.url, None)), egress=EgressPolicy([host]))
    assert allowed.posts == 1
    [refused] = problems
    assert "169.254.169.254" in refused and "not allowed" in refused and "SECRETKEY" not in refused
