"""mediarelay-proxy, upstreams that fail: refused connections (502), an upstream that
never answers (504 after upstream.low_speed_time_s below upstream.low_speed_bytes
a second: here 2 s and 1000 B/s), one that stalls or closes
after the headers went out (the client sees a truncated answer, never a clean
end), and a slow one (its bytes reach the client as they arrive).

Every test runs with the bodies in libcurl and with them spliced from the
upstream's socket (proxyutil.INTERNAL): the limits and the broken ends are
the same either way."""

import socket
import threading
import time

import pytest

from conftest import free_port, make_config, wait_until
from proxyutil import (INTERNAL, ScriptedOrigin, StreamClient, assert_raw_error, module_stack,
                       parse_raw, raw_get, spliced)

KiB = 1024
PATTERN = bytes(range(256)) * 4 * KiB          # 1 MiB


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()

    def early_cl(h, seen):              # promises 1 MiB, sends 100 KiB, closes
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(len(PATTERN)))
        h.end_headers()
        h.send_raw(PATTERN[:100 * KiB])
        h.close_connection = True

    def early_chunked(h, seen):         # chunked, 100 KiB, closes without the 0-chunk
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for i in range(0, 100 * KiB, 10 * KiB):
            h.send_raw(b"%x\r\n" % (10 * KiB) + PATTERN[i:i + 10 * KiB] + b"\r\n")
        h.close_connection = True

    def stall(h, seen):                 # headers and 100 bytes, then silence
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.send_raw(PATTERN[:100])
        o.stop.wait(30)
        h.close_connection = True

    def hang(h, seen):                  # reads the request, never answers
        o.stop.wait(30)
        h.close_connection = True

    # 20 x 1 KiB, one every 0.1 s (above low_speed_bytes), the last one only
    # once o.release[path] is set (the test has seen the first bytes arrive).
    o.release = {}

    def last_when_released(seen, i):
        if i == 19:
            if seen.path in o.release:
                o.release[seen.path].wait(30)
            seen.closed_at = time.monotonic()  # here: when the last byte is sent
        elif i:
            time.sleep(0.1)

    def slow(h, seen):
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(20 * KiB))
        h.end_headers()
        for i in range(20):
            last_when_released(seen, i)
            h.send_raw(PATTERN[i * KiB:(i + 1) * KiB])

    def slow_chunked(h, seen):          # the same, chunked
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for i in range(20):
            last_when_released(seen, i)
            h.send_raw(b"400\r\n" + PATTERN[i * KiB:(i + 1) * KiB] + b"\r\n")
        h.send_raw(b"0\r\n\r\n")

    for path, fn in [("/early-cl", early_cl), ("/early-chunked", early_chunked),
                     ("/stall", stall), ("/hang", hang), ("/slow", slow),
                     ("/slow-chunked", slow_chunked)]:
        o.route(path, fn)
    yield o
    o.close()


@pytest.fixture(scope="module", params=INTERNAL)
def st(request, origin):
    closed = free_port()        # nothing listens there
    media = {name: origin.url("/" + name) for name in
             ("early-cl", "early-chunked", "stall", "hang", "slow", "slow-chunked")}
    media["refused"] = f"http://127.0.0.1:{closed}/movie.mp4"
    config = make_config(
        upstream={"allow_private_networks": True, "low_speed_bytes": 1000, "low_speed_time_s": 2,
                  "connect_timeout_ms": 3000},
        stream={"allow_hosts": [origin.host, f"127.0.0.1:{closed}"]},
        media={k: {"provider": "direct", "source": {"url": u}} for k, u in media.items()})
    yield from module_stack(request, config, mode=request.param)


def assert_body_path(st, origin, name):
    """The body of media `name` went the way the stack's mode says."""
    assert spliced(st, origin.url("/" + name)) == (st.mode == "splice"), st.log("proxy")[-3000:]


def test_refused_connection(st):
    # refused at once: upstream_refused, not the connect timeout's 504
    assert_raw_error(raw_get(st.port, "/api/proxy/media/refused"), 502, "upstream_refused")
    r = raw_get(st.port, "/api/proxy/media/refused", method="HEAD")
    assert r.status == 502 and r.body == b"", r


def test_never_answering_upstream_times_out(st):
    # the origin never answers: any answer at all is the proxy's timeout
    # (low_speed_time_s is 2; the request's own deadline is 10 s)
    r = raw_get(st.port, "/api/proxy/media/hang", timeout=10)
    assert_raw_error(r, 504, "upstream_timeout")


def test_stall_after_headers_is_truncated(st, origin):
    # the origin holds the rest for 30 s: the end within the request's 10 s
    # deadline is the proxy's low-speed timeout
    r = raw_get(st.port, "/api/proxy/media/stall", timeout=10)
    assert r.status == 200, r
    assert r.framing == "length" and r.headers["content-length"] == "100000", r
    assert not r.complete, r
    assert r.body == PATTERN[:100], r
    assert_body_path(st, origin, "stall")


def test_early_close_with_content_length(st, origin):
    r = raw_get(st.port, "/api/proxy/media/early-cl")
    assert r.status == 200, r
    assert r.framing == "length" and r.headers["content-length"] == str(len(PATTERN)), r
    assert not r.complete, r
    assert len(r.body) <= 100 * KiB and r.body == PATTERN[:len(r.body)], r
    assert_body_path(st, origin, "early-cl")


def test_early_close_chunked(st):
    r = raw_get(st.port, "/api/proxy/media/early-chunked")
    assert r.status == 200, r
    assert r.framing == "chunked", r           # no Content-Length to pass back
    assert not r.complete, r                   # no final 0-chunk
    assert len(r.body) <= 100 * KiB and r.body == PATTERN[:len(r.body)], r


def read_keepalive(port, path, timeout):
    """GET path on a keep-alive connection; (bytes read, whether the server closed
    the connection within timeout)."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                b = s.recv(65536)
            except socket.timeout:
                return data, False
            except ConnectionResetError:
                return data, True
            if not b:
                return data, True
            data += b
    return data, False


@pytest.mark.parametrize("media", ["early-cl", "early-chunked"])
def test_early_close_keepalive_client_is_not_left_waiting(st, media):
    # A keep-alive client must not see a clean end, nor be left waiting for the
    # rest of a body that will never come: the connection is closed.
    data, closed = read_keepalive(st.port, f"/api/proxy/media/{media}", timeout=5)
    r = parse_raw(data)
    assert r.status == 200, r
    assert not r.complete, r
    assert closed, f"{r!r}: the connection was still open 5 s after the upstream broke off"


def test_early_close_http10_client(st):
    # HTTP/1.0 has no chunking: the Content-Length passed back is the only
    # signal, and the body must come up short of it.
    with socket.create_connection(("127.0.0.1", st.port), timeout=10) as s:
        s.sendall(b"GET /api/proxy/media/early-cl HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    assert b"Content-Length: 1048576" in head, head
    assert len(body) < len(PATTERN)


@pytest.mark.parametrize("media", ["slow", "slow-chunked"])
def test_slow_upstream_streams_as_it_arrives(st, origin, media):
    before = len(origin.requests_to("/" + media))
    origin.release["/" + media] = release = threading.Event()
    try:
        c = StreamClient(st.port, f"/api/proxy/media/{media}", timeout=20)
        c.start()
        # the first bytes reach the client before the origin sends its last ones
        wait_until(lambda: c.nbytes or c.error, what="the first bytes while the origin sends")
        seen = origin.requests_to("/" + media)[before:]
        assert len(seen) == 1 and seen[0].closed_at is None, seen
    finally:
        release.set()
    c.join(25)
    assert not c.is_alive() and c.error is None, c.error
    assert c.status == 200, c.head
    r = raw_get(st.port, f"/api/proxy/media/{media}", timeout=20)
    assert r.status == 200 and r.complete and r.body == PATTERN[:20 * KiB], r
    if media == "slow":
        assert_body_path(st, origin, media)
    else:
        assert not spliced(st, origin.url("/" + media))     # chunked: libcurl's


def test_worker_survives_failures(st):
    # after all of the above, the proxy still answers normally
    r = raw_get(st.port, "/api/health/proxy")
    assert r.status == 200, r
