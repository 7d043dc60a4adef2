"""mediarelay-proxy, threads: 64 slow streams in flight do not delay a 65th request
(default configuration); a client that disconnects stops its upstream transfer
(the origin sees its connection close) and frees its worker (with two threads,
two abandoned streams and then a fast request that is served at once)."""

import socket
import threading
import time

import pytest

from conftest import make_config, wait_until
from proxyutil import (INTERNAL, ScriptedOrigin, StreamClient, held, module_stack, peer_closed,
                       raw_get, spliced, trickle)

SLOW_STREAMS = 64
SLOW_CHUNK = b"s" * 1024
SLOW_CHUNKS = 11            # the first at once, the rest when the test releases them


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()
    o.route("/fast", lambda h, seen: h.answer(200, {"Content-Type": "video/mp4"}, b"f" * 4096))
    o.slow_release = threading.Event()
    o.route("/slow", lambda h, seen: held(h, seen, SLOW_CHUNK, SLOW_CHUNKS, 1, o.slow_release,
                                          content_type="video/mp4"))
    # endless and busy: 16 KiB every 50 ms until the peer goes away
    o.route("/endless", lambda h, seen: trickle(h, seen, b"e" * 16384, 10 ** 6, 0.05,
                                                content_length=False, stop=o.stop))

    def idle(h, seen):          # 64 KiB, then nothing; notes when the peer closes
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(1 << 30))
        h.end_headers()
        h.send_raw(b"i" * 65536)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not o.stop.is_set():
            if peer_closed(h.connection):
                seen.closed_at = time.monotonic()
                return
            time.sleep(0.05)
    o.route("/idle", idle)
    yield o
    o.close()


def media_config(origin, **extra):
    return make_config(
        upstream={"allow_private_networks": True},
        media={name: {"provider": "direct", "source": {"url": origin.url("/" + name)}}
               for name in ("fast", "slow", "endless", "idle")},
        **extra)


@pytest.fixture(scope="module")
def st(request, origin):
    """The default thread count (128)."""
    yield from module_stack(request, media_config(origin))


def test_64_slow_streams_do_not_delay_a_fast_request(st, origin):
    before = len(origin.requests_to("/slow"))
    slow = [StreamClient(st.port, "/api/proxy/media/slow", timeout=40) for _ in range(SLOW_STREAMS)]
    for c in slow:
        c.start()
    try:
        # all 64 are in flight: the origin has every request and trickles to each
        assert wait_until(lambda: len(origin.requests_to("/slow")) - before >= SLOW_STREAMS,
                          timeout=15), len(origin.requests_to("/slow")) - before
        # The origin holds every slow answer until the fast one is done: it
        # is served while all 64 are in flight.
        r = raw_get(st.port, "/api/proxy/media/fast", timeout=10)
        assert r.status == 200 and r.body == b"f" * 4096, r
        still_running = sum(c.is_alive() for c in slow)
        assert still_running == SLOW_STREAMS, f"only {still_running} slow streams left"
    finally:
        origin.slow_release.set()
        for c in slow:
            c.join(40)
    errors = [(c.status, c.error) for c in slow if c.error or c.status != 200]
    assert not errors, errors
    assert all(c.nbytes == len(SLOW_CHUNK) * SLOW_CHUNKS for c in slow), \
        [c.nbytes for c in slow]


@pytest.fixture(scope="module", params=INTERNAL)
def st2(request, origin):
    """Two proxy threads only: a worker that is not freed is plain to see.  The
    bodies go through libcurl, or are spliced from the upstream's socket."""
    yield from module_stack(request, media_config(origin, server={"threads": {"proxy": 2}}),
                            mode=request.param)


def open_stream(port, path, nbytes, timeout=10):
    """A client socket that has read the headers and nbytes of body of GET path."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf or len(buf.partition(b"\r\n\r\n")[2]) < nbytes:
        b = s.recv(65536)
        assert b, f"closed early: {buf[:300]!r}"
        buf += b
    assert buf.startswith(b"HTTP/1.1 200"), buf[:300]
    return s


def test_client_disconnect_stops_upstream_and_frees_the_worker(st2, origin):
    n_endless, n_idle = len(origin.requests_to("/endless")), len(origin.requests_to("/idle"))
    # both workers busy: one relaying a busy endless body, one waiting on an idle upstream
    a = open_stream(st2.port, "/api/proxy/media/endless", 32 * 1024)
    b = open_stream(st2.port, "/api/proxy/media/idle", 16 * 1024)
    endless = origin.requests_to("/endless")[n_endless:]
    idle = origin.requests_to("/idle")[n_idle:]
    assert len(endless) == 1 and len(idle) == 1
    assert endless[0].closed_at is None and idle[0].closed_at is None
    a.close()
    b.close()
    # the origin sees both of its connections closed, within a few seconds
    assert wait_until(lambda: endless[0].closed_at is not None, timeout=5), \
        "the busy upstream transfer went on after the client left"
    assert wait_until(lambda: idle[0].closed_at is not None, timeout=5), \
        "the idle upstream transfer went on after the client left"
    for name in ("endless", "idle"):
        assert spliced(st2, origin.url("/" + name)) == (st2.mode == "splice"), name
    # and both workers are free: two quick requests in a row, then two at once
    for _ in range(2):
        r = raw_get(st2.port, "/api/proxy/media/fast", timeout=5)
        assert r.status == 200 and r.body == b"f" * 4096, r
    pair = [StreamClient(st2.port, "/api/proxy/media/fast", timeout=5) for _ in range(2)]
    for c in pair:
        c.start()
    for c in pair:
        c.join(6)
        assert c.error is None and c.status == 200, (c.error, c.head)


def test_repeated_disconnects_do_not_leak_workers(st2, origin):
    # more abandoned streams than threads, one after another
    for path in ["/api/proxy/media/endless", "/api/proxy/media/idle"] * 2:
        n = len(origin.requests_to("/" + path.rsplit("/", 1)[1]))
        s = open_stream(st2.port, path, 8 * 1024)
        s.close()
        seen = origin.requests_to("/" + path.rsplit("/", 1)[1])[n:]
        assert len(seen) == 1
        assert wait_until(lambda: seen[0].closed_at is not None, timeout=5), path
    r = raw_get(st2.port, "/api/proxy/media/fast", timeout=5)
    assert r.status == 200, r
