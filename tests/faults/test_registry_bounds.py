"""Bounds of the registry client: pagination, body sizes, present blobs, upload sessions, retry budget.

Each test reproduces an attack or a fault from issue 8 against services on loopback only:
- a tag list whose ``Link`` loops, never ends, or points at another host (127.0.0.2, another port);
- manifests, tag pages, referrers, token and error bodies far over their caps, sent as streams;
- a target registry that claims a blob with the wrong size;
- uploads abandoned after an integrity failure or spent retries (their sessions must be cancelled);
- a commit whose answer is lost (the blob arrived; the retry must not fail or re-send it);
- persistent 429 with ``Retry-After: 60``, nested retries, and a registry that never answers.

A remote that loops, floods, lies about a blob or tampers with its bytes is an `attack` (refused);
a cut, a lost answer, 429, 503 or silence is a `fault` (survived, or failed in bounded time). The
uploads that survive a fault record the bytes they sent again in `figures`.

Hand-made servers here are tiny `ScriptedServer`s on 127.0.0.1 answering with a function; real
registries (`registry`, `registry_b`) sit behind the harness's `FaultProxy` where uploads matter.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ferry.copy import CopyRequest, copy_artifacts
from ferry.errors import IntegrityError, RegistryError, TransientRegistryError
from ferry.oci.descriptor import Descriptor
from ferry.registry.client import RegistryClient
from ferry.registry.credentials import Credentials
from ferry.registry.retry import RetryPolicy
from ferry.transports.registry import RegistryDestination, RegistrySource
from tests.harness import content as c
from tests.harness._http import LoopbackServer, QuietHandler
from tests.harness.faultproxy import FaultProxy

KiB = 1024
MiB = 1024 * KiB
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)


# --- small loopback servers --------------------------------------------------------------------


class ScriptedServer:
    """HTTP/1.1 on 127.0.0.1 answering every request with ``respond(handler, url)``.

    `requests` counts ``"METHOD /path"``; `stopping` is set by `stop()` for handlers that wait.
    """

    def __init__(self, respond: Callable[[QuietHandler, Any], None]) -> None:
        self.respond = respond
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = LoopbackServer(_ScriptedHandler, self)
        self.port = self._server.port
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"

    def count(self, substring: str = "", method: str | None = None) -> int:
        with self.lock:
            return sum(n for key, n in self.requests.items()
                       if substring in key and (method is None or key.startswith(method + " ")))

    def stop(self) -> None:
        self.stopping.set()
        self._server.stop()


class _ScriptedHandler(QuietHandler):
    def _any(self) -> None:
        owner: ScriptedServer = self.server.owner  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        with owner.lock:
            owner.requests[f"{self.command} {url.path}"] += 1
        if self.command in ("POST", "PUT", "PATCH"):
            self.read_body()
        try:
            owner.respond(self, url)
        except OSError:  # the client hung up, as it should when a body is too large
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any


def stream_chunked(handler: QuietHandler, status: int, total: int, *, prefix: bytes = b"",
                   headers: dict[str, str] | None = None) -> None:
    """Send `prefix` then filler up to `total` bytes, chunked (no Content-Length), from one reused buffer."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    filler = b"a" * (64 * KiB)
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(prefix), prefix))
    sent = len(prefix)
    while sent < total:
        handler.wfile.write(b"%x\r\n" % len(filler))
        handler.wfile.write(filler)
        handler.wfile.write(b"\r\n")
        sent += len(filler)
    handler.wfile.write(b"0\r\n\r\n")
    handler.close_connection = True


class Listener:
    """A TCP listener on `host` that only counts the connections it accepts (and closes them)."""

    def __init__(self, host: str) -> None:
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def stop(self) -> None:
        with suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[QuietHandler, Any], None]], ScriptedServer]]:
    started: list[ScriptedServer] = []

    def start(respond: Callable[[QuietHandler, Any], None]) -> ScriptedServer:
        server = ScriptedServer(respond)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def within(seconds: float, action: Callable[[], Any]) -> BaseException | Any:
    """Run `action` in a thread; fail if it is still running after `seconds` (a loop or a hang).

    Returns the exception it raised, or its result.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as exc:
            outcome["value"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return outcome["value"]


def peak_memory(action: Callable[[], Any]) -> tuple[int, Any]:
    """(peak bytes traced by tracemalloc while running `action`, its result or exception)."""
    tracemalloc.start()
    try:
        try:
            value: Any = action()
        except BaseException as exc:
            value = exc
        return tracemalloc.get_traced_memory()[1], value
    finally:
        tracemalloc.stop()


def tags_page(name: str, tags: list[str], link: str | None = None) -> tuple[bytes, dict[str, str]]:
    headers = {"Link": f'<{link}>; rel="next"'} if link else {}
    return json.dumps({"name": name, "tags": tags}).encode(), headers


def opener_for(data: bytes):
    @contextmanager
    def open_() -> Iterator[Iterator[bytes]]:
        yield iter([data[i:i + 64 * KiB] for i in range(0, len(data), 64 * KiB)])

    return open_


def descriptor_of(blob: c.Blob) -> Descriptor:
    return Descriptor.from_json(blob.descriptor())


def image_with_layer(size: int, seed: int) -> tuple[c.Manifest, c.Blob]:
    layer = c.random_layer(size, seed)
    return c.oci_image([layer], seed=seed), layer


# --- 1. pagination ----------------------------------------------------------------------------


@pytest.mark.attack
def test_tag_list_link_to_itself_stops(fake_registry):
    body, headers = tags_page("loop/img", ["a"], "/v2/loop/img/tags/list?n=10")
    fake_registry.fail_next("/tags/list", 200, times=1_000_000, headers=headers, body=body)
    with RegistryClient(fake_registry.host, retry=FAST) as client:
        error = within(10, lambda: client.list_tags("loop/img", page_size=10))
    assert isinstance(error, RegistryError), error
    assert "loop/img" in str(error) and "already read" in str(error)
    assert fake_registry.count("/tags/list", "GET") == 1


@pytest.mark.attack
def test_tag_list_link_cycle_stops(scripted):
    def respond(handler: QuietHandler, url: Any) -> None:
        last = parse_qs(url.query).get("last", [""])[0]
        # page 1 -> page 2 (last=b) -> page 1 again, forever
        link = "/v2/cyc/img/tags/list?n=2&last=b" if not last else "/v2/cyc/img/tags/list?n=2"
        body, headers = tags_page("cyc/img", ["c", "d"] if last else ["a", "b"], link)
        handler.reply(200, body, headers=headers)

    server = scripted(respond)
    with RegistryClient(server.host, retry=FAST) as client:
        error = within(10, lambda: client.list_tags("cyc/img", page_size=2))
    assert isinstance(error, RegistryError), error
    assert "cyc/img" in str(error) and "already read" in str(error) and "after 2 pages" in str(error)
    assert server.count("/tags/list", "GET") == 2


@pytest.mark.attack
def test_tag_list_of_endless_distinct_pages_is_capped(scripted):
    def respond(handler: QuietHandler, url: Any) -> None:
        n = int(parse_qs(url.query).get("last", ["0"])[0] or 0)
        body, headers = tags_page("endless/img", [f"t{n}"], f"/v2/endless/img/tags/list?n=1&last={n + 1}")
        handler.reply(200, body, headers=headers)

    server = scripted(respond)
    with RegistryClient(server.host, retry=FAST, max_tag_pages=50) as client:
        error = within(30, lambda: client.list_tags("endless/img", page_size=1))
    assert isinstance(error, RegistryError), error
    assert "endless/img" in str(error) and "more than 50 pages" in str(error)
    assert server.count("/tags/list", "GET") == 50


@pytest.mark.attack
def test_default_page_cap_is_set():
    with RegistryClient("127.0.0.1:1") as client:
        assert 0 < client.max_tag_pages <= 10_000


@pytest.mark.attack
@pytest.mark.parametrize("elsewhere", ["127.0.0.2", "other-port", "https"])
def test_tag_list_link_to_another_host_is_not_followed(fake_registry, elsewhere):
    listener = Listener("127.0.0.2" if elsewhere == "127.0.0.2" else "127.0.0.1")
    try:
        # Same host and port with another scheme is another origin too.
        target = f"https://{fake_registry.host}" if elsewhere == "https" else f"http://{listener.host}:{listener.port}"
        body, headers = tags_page("leak/img", ["a"], f"{target}/v2/leak/img/tags/list?n=10&last=a")
        fake_registry.fail_next("/tags/list", 200, times=1, headers=headers, body=body)
        with RegistryClient(fake_registry.host, retry=FAST) as client:
            error = within(20, lambda: client.list_tags("leak/img", page_size=10))
        assert isinstance(error, RegistryError), error
        assert "leak/img" in str(error) and "not followed" in str(error)
        assert target.split("://", 1)[1] in str(error)
        assert listener.connections == 0
        assert fake_registry.count("/tags/list", "GET") == 1
    finally:
        listener.stop()


@pytest.mark.attack
def test_relative_and_same_origin_links_are_followed(fake_registry):
    tags = [f"t{i:02d}" for i in range(7)]
    image, _ = image_with_layer(1000, 71)
    fake_registry.add_manifest("ok/img", image.media_type, image.raw, tags=tags)
    # The fake's own Link is relative; an absolute one to the same origin is fine too.
    body, headers = tags_page("ok/img", tags[:3], f"{fake_registry.url}/v2/ok/img/tags/list?n=3&last=t02")
    fake_registry.fail_next("/tags/list", 200, times=1, headers=headers, body=body)
    with RegistryClient(fake_registry.host, retry=FAST) as client:
        assert client.list_tags("ok/img", page_size=3) == tags
    assert fake_registry.count("/tags/list", "GET") == 3


# --- 2. size caps -----------------------------------------------------------------------------


@pytest.mark.attack
def test_huge_manifest_is_refused_while_streaming(scripted):
    """The 800 MB manifest of the issue, scaled to 48 MiB: Ferry stops at 4 MiB, memory stays small."""

    def respond(handler: QuietHandler, url: Any) -> None:
        if "/manifests/" in url.path:
            stream_chunked(handler, 200, 48 * MiB, prefix=b'{"schemaVersion": 2, "junk": "',
                           headers={"Content-Type": c.OCI_MANIFEST})
        else:
            handler.reply_json(404, {})

    server = scripted(respond)
    with RegistryClient(server.host, retry=FAST) as client:
        peak, error = peak_memory(lambda: within(30, lambda: client.get_manifest("big/img", "v1")))
    assert isinstance(error, RegistryError), error
    assert "manifest" in str(error) and "big/img:v1" in str(error) and "4 MiB" in str(error)
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert server.count("/manifests/v1", "GET") == 1  # too large is permanent: not retried


@pytest.mark.attack
def test_manifest_announcing_800_mb_is_refused_before_reading(scripted):
    def respond(handler: QuietHandler, url: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", c.OCI_MANIFEST)
        handler.send_header("Content-Length", str(800_000_000))
        handler.end_headers()
        handler.wfile.write(b"{" + b" " * 1000)
        handler.wfile.flush()
        owner: ScriptedServer = handler.server.owner  # type: ignore[attr-defined]
        owner.stopping.wait(20)  # then trickle nothing more: a reader waiting for 800 MB hangs
        handler.close_connection = True

    server = scripted(respond)
    started = time.monotonic()
    with RegistryClient(server.host, retry=FAST, timeout=30) as client:
        error = within(10, lambda: client.get_manifest("huge/img", "v1"))
    assert isinstance(error, RegistryError), error
    assert "announced 800000000 bytes" in str(error) and "huge/img:v1" in str(error)
    assert time.monotonic() - started < 5


@pytest.mark.attack
@pytest.mark.parametrize("kind", ["tag list page", "referrers"])
def test_huge_json_bodies_are_refused(scripted, kind):
    def respond(handler: QuietHandler, url: Any) -> None:
        if url.path.endswith("/tags/list") or "/referrers/" in url.path:
            stream_chunked(handler, 200, 24 * MiB, prefix=b'{"tags": ["')
        else:
            handler.reply_json(404, {})

    server = scripted(respond)
    with RegistryClient(server.host, retry=FAST) as client:
        if kind == "tag list page":
            action = lambda: client.list_tags("big/img")  # noqa: E731
        else:
            action = lambda: client.list_referrers("big/img", "sha256:" + "1" * 64)  # noqa: E731
        peak, error = peak_memory(lambda: within(30, action))
    assert isinstance(error, RegistryError), error
    assert kind in str(error) and "big/img" in str(error) and "4 MiB" in str(error)
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.attack
def test_huge_token_response_is_refused(scripted):
    def respond(handler: QuietHandler, url: Any) -> None:
        owner: ScriptedServer = handler.server.owner  # type: ignore[attr-defined]
        if url.path == "/token":
            stream_chunked(handler, 200, 24 * MiB, prefix=b'{"token": "')
        else:
            challenge = f'Bearer realm="{owner.url}/token",service="scripted"'
            handler.reply_json(401, {"errors": [{"code": "UNAUTHORIZED"}]}, headers={"WWW-Authenticate": challenge})

    server = scripted(respond)
    with RegistryClient(server.host, Credentials(username="u", password="p"), retry=FAST) as client:
        peak, error = peak_memory(lambda: within(30, lambda: client.get_manifest("tok/img", "v1")))
    assert isinstance(error, RegistryError), error
    assert "token service" in str(error) and "/token" in str(error) and "4 MiB" in str(error)
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert server.count("/token", "GET") == 1


@pytest.mark.attack
@pytest.mark.parametrize("status", [500, 400, 401])
def test_huge_error_bodies_are_cut(scripted, status):
    def respond(handler: QuietHandler, url: Any) -> None:
        stream_chunked(handler, status, 32 * MiB, prefix=b'{"errors": [{"code": "X", "message": "')

    server = scripted(respond)
    with RegistryClient(server.host, retry=RetryPolicy(attempts=1)) as client:
        peak, error = peak_memory(lambda: within(30, lambda: client.get_manifest("err/img", "v1")))
    assert isinstance(error, RegistryError), error
    assert f"answered {status}" in str(error) and "err/img:v1" in str(error)
    assert len(str(error)) < 1000
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.attack
def test_manifests_up_to_the_cap_still_pass(fake_registry):
    raw = json.dumps({"schemaVersion": 2, "mediaType": c.OCI_MANIFEST,
                      "config": c.EMPTY_BLOB.descriptor(), "layers": [],
                      "annotations": {"pad": "x" * (4 * MiB - 400)}}).encode()
    assert 4 * MiB - 200 < len(raw) <= 4 * MiB
    fake_registry.add_manifest("cap/img", c.OCI_MANIFEST, raw, tags=["v1"])
    with RegistryClient(fake_registry.host, retry=FAST) as client:
        assert client.get_manifest("cap/img", "v1").raw == raw


# --- 3. a present blob must have the right size -----------------------------------------------


@pytest.mark.attack
def test_present_blob_with_wrong_size_is_not_accepted(fake_registry):
    layer = c.random_layer(30_000, 31)
    fake_registry.add_blob(layer.data[:1000], digest=layer.digest)  # the target "has" it, 1000 bytes
    destination = RegistryDestination(RegistryClient(fake_registry.host, retry=FAST))
    try:
        with pytest.raises(IntegrityError) as info:
            destination.has_blob("dst/img", descriptor_of(layer))
        message = str(info.value)
        assert layer.digest in message and "1000 bytes" in message and str(layer.size) in message
        right = c.random_layer(500, 32)
        fake_registry.add_blob(right.data)
        assert destination.has_blob("dst/img", descriptor_of(right)) is True
    finally:
        destination.client.close()


@pytest.mark.attack
def test_copy_onto_a_wrong_size_blob_fails_before_any_manifest(registry, fake_registry, unique_repo):
    image, layer = image_with_layer(30_000, 33)
    c.push(registry.url, unique_repo, image, tag="v1")
    for blob in image.all_blobs():  # the target claims every blob, the layer with the wrong size
        fake_registry.add_blob(blob.data[:1000] if blob.digest == layer.digest else blob.data, digest=blob.digest)
    with RegistryClient(registry.host, retry=FAST) as src, RegistryClient(fake_registry.host, retry=FAST) as dst:
        report = copy_artifacts(RegistrySource(src), RegistryDestination(dst),
                                [CopyRequest(unique_repo, "v1", "dst/img", ("v1",))])
    assert not report.ok
    error = report.artifacts[0].error or ""
    assert layer.digest in error and "1000" in error
    assert fake_registry.count("/manifests/", "PUT") == 0


# --- 4. and 5. upload sessions: cancel what is abandoned, keep what arrived ---------------------


@pytest.fixture
def proxy(registry_b) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry_b.host)
    yield proxy
    proxy.stop()


def upload_sessions(proxy: FaultProxy) -> set[str]:
    """Paths of the upload sessions the client used (``/v2/<repo>/blobs/uploads/<uuid>``)."""
    with proxy._lock:
        keys = list(proxy.requests)
    return {key.split(" ", 1)[1] for key in keys
            if key.split(" ", 1)[0] in ("PATCH", "PUT") and "/blobs/uploads/" in key
            and not key.endswith("/blobs/uploads/")}


def session_status(registry_b, path: str) -> int:
    return httpx.get(f"{registry_b.url}{path}").status_code


@pytest.mark.attack
def test_integrity_failure_cancels_the_upload_session(fake_registry, registry_b, proxy, unique_repo):
    image, layer = image_with_layer(1_000_000, 41)
    for blob in image.all_blobs():
        fake_registry.add_blob(blob.data)
    fake_registry.add_blob(bytes([layer.data[0] ^ 0xFF]) + layer.data[1:], digest=layer.digest)  # same size
    with RegistryClient(fake_registry.host, retry=FAST) as src, \
            RegistryClient(proxy.host, retry=FAST, chunk_size=256 * KiB, monolithic_limit=512 * KiB) as dst, \
            pytest.raises(IntegrityError, match="digest mismatch"):
        dst.push_blob(unique_repo, descriptor_of(layer),
                      lambda: RegistrySource(src).open_blob("src/img", descriptor_of(layer)))
    sessions = upload_sessions(proxy)
    assert len(sessions) == 1  # chunks were sent: the session held ~768 KiB of bad bytes
    assert proxy.count("/blobs/uploads/", "DELETE") == 1
    for path in sessions:
        assert session_status(registry_b, path) == 404, path
    assert httpx.head(f"{registry_b.url}/v2/{unique_repo}/blobs/{layer.digest}").status_code == 404


@pytest.mark.fault
def test_upload_given_up_cancels_every_session(fake_registry, registry_b, proxy, unique_repo):
    layer = c.random_layer(3_000_000, 42)
    fake_registry.add_blob(layer.data)
    # Every read dies after 2.6 MB: several 256 KiB chunks pass (a source's stream holds back its
    # last read, up to 256 KiB, until it is verified).
    fake_registry.truncate_blob(layer.digest, 2_600_000)
    with RegistryClient(fake_registry.host, retry=FAST) as src, \
            RegistryClient(proxy.host, retry=FAST, chunk_size=256 * KiB, monolithic_limit=512 * KiB) as dst:
        # Each attempt gets the registry to accept those chunks again: that is no new ground, so it
        # must not refill the budget (the upload would restart forever).
        error = within(60, lambda: dst.push_blob(
            unique_repo, descriptor_of(layer), lambda: RegistrySource(src).open_blob("src/img", descriptor_of(layer))))
    assert isinstance(error, TransientRegistryError), error
    assert "gave up after 3 attempts" in str(error) and "connection lost" in str(error)
    sessions = upload_sessions(proxy)
    assert len(sessions) == 3  # one per attempt, each holding the chunks it got
    for path in sessions:
        assert session_status(registry_b, path) == 404, path


@pytest.mark.fault
def test_lost_commit_answer_of_a_chunked_upload_counts_as_done(registry_b, proxy, unique_repo, figures):
    layer = c.random_layer(1_000_000, 51)
    proxy.cut_request("PUT", nth=1, after_body_bytes=0, path_substring="/blobs/uploads/")  # answer lost
    with RegistryClient(proxy.host, retry=FAST, chunk_size=256 * KiB, monolithic_limit=512 * KiB) as dst:
        sent = dst.push_blob(unique_repo, descriptor_of(layer), opener_for(layer.data))
    assert proxy.cuts == 1
    assert sent == layer.size
    assert c.get_blob(registry_b.url, unique_repo, layer.digest) == layer.data
    assert proxy.count("/blobs/uploads/", "POST") == 1  # no restart
    assert proxy.body_bytes["PATCH"] == layer.size  # nothing re-sent
    assert proxy.count(f"/blobs/{layer.digest}", "HEAD") >= 1
    figures.record("bytes re-sent", "chunked upload, commit answer lost",
                   proxy.body_bytes["PATCH"] + proxy.body_bytes["PUT"] - layer.size, of=layer.size)


@pytest.mark.fault
def test_lost_commit_answer_of_a_monolithic_upload_is_not_resent(registry_b, proxy, unique_repo, figures):
    layer = c.random_layer(100_000, 52)
    proxy.cut_request("PUT", nth=1, after_body_bytes=layer.size, path_substring="/blobs/uploads/")
    with RegistryClient(proxy.host, retry=FAST) as dst:
        dst.push_blob(unique_repo, descriptor_of(layer), opener_for(layer.data))
    assert proxy.cuts == 1
    assert c.get_blob(registry_b.url, unique_repo, layer.digest) == layer.data
    assert proxy.count("/blobs/uploads/", "POST") == 1
    assert proxy.body_bytes["PUT"] == layer.size
    figures.record("bytes re-sent", "monolithic upload, commit answer lost", proxy.body_bytes["PUT"] - layer.size,
                   of=layer.size)


# --- 6. one retry budget per operation, one layer ---------------------------------------------


@pytest.mark.fault
def test_a_retry_after_longer_than_the_budget_ends_the_operation_at_once_saying_so(fake_registry):
    image, _ = image_with_layer(1000, 61)
    fake_registry.add_manifest("slow/img", image.media_type, image.raw, tags=["v1"])
    fake_registry.fail_next("/manifests/v1", 429, times=1000, headers={"Retry-After": "60"})
    policy = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.02, max_elapsed=2.0)
    started = time.monotonic()
    with RegistryClient(fake_registry.host, retry=policy) as client:
        error = within(30, lambda: client.get_manifest("slow/img", "v1"))
    elapsed = time.monotonic() - started
    assert isinstance(error, TransientRegistryError), error
    assert "gave up after 1 attempt / " in str(error) and "asked to wait 60 s" in str(error) and "429" in str(error)
    assert (error.retry_after, error.transient) == (60, False)  # when to ask again; no blind retry above
    assert elapsed < 1.5, elapsed  # no part of the 60 s was waited
    assert fake_registry.count("/manifests/v1", "GET") == 1


@pytest.mark.fault
def test_a_retry_after_that_fits_is_waited_and_asked_again(fake_registry):
    image, _ = image_with_layer(1000, 63)
    fake_registry.add_manifest("slow/img2", image.media_type, image.raw, tags=["v1"])
    fake_registry.fail_next("/manifests/v1", 429, times=1, headers={"Retry-After": "1"})
    policy = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.02, max_elapsed=5.0)
    started = time.monotonic()
    with RegistryClient(fake_registry.host, retry=policy) as client:
        assert client.get_manifest("slow/img2", "v1").raw == image.raw
    assert 1.0 <= time.monotonic() - started < 4
    assert fake_registry.count("/manifests/v1", "GET") == 2


@pytest.mark.fault
def test_nested_retries_do_not_multiply_in_an_upload(scripted):
    def respond(handler: QuietHandler, url: Any) -> None:
        if handler.command == "HEAD":
            handler.reply(404, b"", head=True)
        else:
            handler.reply_json(503, {"errors": [{"code": "UNAVAILABLE"}]})

    server = scripted(respond)
    blob = c.random_layer(2000, 62)
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02)
    with RegistryClient(server.host, retry=policy) as client, pytest.raises(TransientRegistryError) as info:
        client.push_blob("nest/img", descriptor_of(blob), opener_for(blob.data))
    assert "gave up after 4 attempts" in str(info.value) and "503" in str(info.value)
    assert server.count("/blobs/uploads/", "POST") == 4  # not 4 x 4


@pytest.mark.fault
def test_source_retries_do_not_multiply_inside_a_destination_upload(fake_registry, registry_b, unique_repo):
    blob = c.random_layer(5000, 63)
    fake_registry.add_blob(blob.data)
    fake_registry.fail_next(f"/blobs/{blob.digest}", 503, times=100, method="GET")
    with RegistryClient(fake_registry.host, retry=FAST) as src, RegistryClient(registry_b.host, retry=FAST) as dst, \
            pytest.raises(TransientRegistryError) as info:
        RegistryDestination(dst).put_blob(unique_repo, descriptor_of(blob),
                                          lambda: RegistrySource(src).open_blob("src/img", descriptor_of(blob)))
    assert "gave up after 3 attempts" in str(info.value)
    assert fake_registry.host in str(info.value)  # blamed on the source that failed
    assert fake_registry.count(f"/blobs/{blob.digest}", "GET") == 3  # not 3 x 3


@pytest.mark.fault
def test_a_source_fault_inside_an_upload_is_retried_where_it_happened(fake_registry, registry_b, proxy, unique_repo,
                                                                     figures):
    blob = c.random_layer(5000, 64)
    fake_registry.add_blob(blob.data)
    fake_registry.fail_next(f"/blobs/{blob.digest}", 503, times=1, method="GET")
    with RegistryClient(fake_registry.host, retry=FAST) as src, RegistryClient(proxy.host, retry=FAST) as dst:
        RegistryDestination(dst).put_blob(unique_repo, descriptor_of(blob),
                                          lambda: RegistrySource(src).open_blob("src/img", descriptor_of(blob)))
    assert c.get_blob(registry_b.url, unique_repo, blob.digest) == blob.data
    assert fake_registry.count(f"/blobs/{blob.digest}", "GET") == 2
    assert proxy.count("/blobs/uploads/", "POST") == 1  # the upload session was kept, not restarted
    figures.record("bytes re-sent", "upload, its source answered 503 once", sum(proxy.body_bytes.values()) - blob.size,
                   of=blob.size)


@pytest.mark.fault
def test_stalled_registry_fails_in_bounded_time(scripted):
    def respond(handler: QuietHandler, url: Any) -> None:
        owner: ScriptedServer = handler.server.owner  # type: ignore[attr-defined]
        owner.stopping.wait(60)  # read the request, never answer
        handler.close_connection = True

    server = scripted(respond)
    policy = RetryPolicy(attempts=100, base_delay=0.01, max_delay=0.05, max_elapsed=2.0)
    started = time.monotonic()
    with RegistryClient(server.host, retry=policy, timeout=0.5, connect_timeout=0.5) as client:
        error = within(30, lambda: client.get_manifest("stall/img", "v1"))
    elapsed = time.monotonic() - started
    assert isinstance(error, TransientRegistryError), error
    assert "gave up after" in str(error) and "ReadTimeout" in str(error)
    assert 2.0 <= elapsed < 4.0, elapsed  # the budget plus at most one read timeout


@pytest.mark.fault
def test_defaults_bound_every_request_and_operation():
    with RegistryClient("127.0.0.1:1") as client:
        timeout = client._http.timeout
        for name in ("connect", "read", "write", "pool"):
            value = getattr(timeout, name)
            assert value is not None and 0 < value <= 60, (name, value)
        policy = client.retry
    assert policy.max_elapsed <= 300 and policy.max_retry_after <= policy.max_elapsed
    # Worst case for one operation against a registry that never answers: the budget plus one read.
    assert policy.max_elapsed + timeout.read <= 180


@pytest.mark.fault
def test_a_fault_that_outlasts_the_time_budget_is_not_retried_above():
    """Rule 5 of ferry/registry/retry.py: the orchestrations retry transient activity failures, so
    a fault that lasted the whole budget comes out permanent; one spent by attempts stays transient."""
    from ferry.errors import TransientRegistryError
    from ferry.registry.retry import RetryPolicy, with_retries

    def always_busy() -> None:
        raise TransientRegistryError("registry answered 429", status=429, retry_after=0.05)

    with pytest.raises(TransientRegistryError) as by_time:
        with_retries(always_busy, RetryPolicy(attempts=100, base_delay=0.01, max_elapsed=0.3), what="tags")
    assert "gave up" in str(by_time.value) and by_time.value.transient is False
    with pytest.raises(TransientRegistryError) as by_attempts:
        with_retries(always_busy, RetryPolicy(attempts=2, base_delay=0.01, max_elapsed=60), what="tags")
    assert "gave up" in str(by_attempts.value) and by_attempts.value.transient is True
