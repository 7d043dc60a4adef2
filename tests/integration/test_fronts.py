"""The front matrix (issue 13): one smoke set against every web server that
contrib/ ships a configuration for, each started by contrib/dev/stack
--front with that very file: nginx, lighttpd (mod_fastcgi, executables under
spawn-fcgi), Apache with mod_proxy_fcgi (spawn-fcgi), Apache with mod_fcgid
(Apache starts and stops the executables) and Apache running them as plain
CGI programs from a web root with contrib/apache/cgi/'s .htaccess files.

The set: health on every executable, JSON errors and CORS, a Range request
on a relayed file, bytes that reach the client as the upstream sends them
(no front buffers a whole body), HLS and DASH played by ffmpeg, a signed
/stream link, a segment cached by one request and served from the cache to
the next, and a client that leaves in the middle of a 256 MiB stream (the
origin's transfer stops).  The origin is an nginx of its own on 127.0.0.1
(the stack's front is not always nginx) and a scripted one."""

import hashlib
import os
import shutil
import signal
import socket
import threading

import pytest

from conftest import alive, assert_json_error, make_config, reap, wait_until
from proxyutil import (MiB, NginxOrigin, ScriptedOrigin, StandaloneOrigin, held, module_stack,
                       path_of, q, raw_get, sign)
from test_dash_play import AV, ffmpeg
from test_hls_play import make_hls, play, relay_lines

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")

FRONTS = ["nginx", "lighttpd", "apache-proxy-fcgi", "apache-fcgid", "apache-cgi"]
BIG = 256 * MiB
SMALL = os.urandom(300_000)
CHUNK = b"h" * 1000


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("fronts-origin"), files={"small.mp4": SMALL},
                    big_files={"big.bin": BIG})
    www = o.path("")
    make_hls(www, "hls")
    (www / "dash").mkdir()
    ffmpeg(*AV, "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
           "manifest.mpd", cwd=www / "dash")
    server = StandaloneOrigin(o)
    yield server
    server.close()


@pytest.fixture(scope="module")
def scripted():
    """/held: 1000 bytes at once, 99,000 more when the test releases them."""
    o = ScriptedOrigin()
    o.release = threading.Event()
    o.route("/held", lambda h, seen: held(h, seen, CHUNK, 100, 1, o.release,
                                          content_type="video/mp4"))
    yield o
    o.release.set()
    o.close()


@pytest.fixture(scope="module", params=FRONTS)
def st(request, origin, scripted):
    o = origin.origin
    cfg = make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        stream={"allow_hosts": [o.host]},
        media={"small": {"provider": "direct", "source": {"url": o.url("/small.mp4")}},
               "big": {"provider": "direct", "source": {"url": o.url("/big.bin")}},
               "hls": {"provider": "direct", "source": {"url": o.url("/hls/index.m3u8")}},
               "dash": {"provider": "direct", "source": {"url": o.url("/dash/manifest.mpd")}},
               "held": {"provider": "direct", "source": {"url": scripted.url("/held")}}})
    yield from module_stack(request, cfg, front=request.param)


# --- health, errors, CORS --------------------------------------------------------------

@pytest.mark.parametrize("exe", ["", "/resolve", "/m3u8", "/segment", "/proxy"])
def test_health_on_every_executable(st, exe):
    r = st.get(f"/api/health{exe}")
    assert r.status == 200, r
    body = r.json
    assert body["status"] == "ok" and body["redis"] == "ok", body
    assert body["executable"] == (exe[1:] or "resolve"), body


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/api/nope", 404, "not_found"),
    ("GET", "/api/media/nope/index.m3u8", 404, "not_found"),
    ("GET", "/api/seg/not-a-token.ts", 403, "forbidden"),
    ("GET", "/api/proxy/media/nope", 404, "not_found"),
    ("GET", "/stream?url=http%3A%2F%2F127.0.0.1%3A9%2Fx", 403, "forbidden"),
    ("POST", "/api/media", 401, "unauthorized"),
])
def test_json_errors(st, method, path, status, code):
    r = st.request(method, path)
    assert_json_error(r, status, code)
    assert r.header("Content-Type") == "application/json", r


def test_method_not_allowed_says_what_is(st):
    r = st.request("PUT", "/api/health")
    assert_json_error(r, 405, "method_not_allowed")
    assert "GET" in r.header("Allow"), r


@pytest.mark.parametrize("path", ["/api/health", "/api/media/hls/index.m3u8",
                                  "/api/proxy/media/small", "/api/seg/abc.ts"])
def test_cors_on_answers_and_preflights(st, path):
    r = st.get(path, headers={"Origin": "https://player.example"})
    assert r.header("Access-Control-Allow-Origin") == "*", r
    assert "content-range" in r.header_tokens("Access-Control-Expose-Headers"), r
    pre = st.request("OPTIONS", path, headers={"Origin": "https://player.example",
                                               "Access-Control-Request-Method": "GET",
                                               "Access-Control-Request-Headers": "range"})
    assert pre.status == 204, pre
    assert "GET" in pre.header("Access-Control-Allow-Methods"), pre
    assert "range" in pre.header_tokens("Access-Control-Allow-Headers"), pre


# --- bytes -----------------------------------------------------------------------------

def test_range_on_a_relayed_file(st):
    r = st.get("/api/proxy/media/small", headers={"Range": "bytes=1000-200999"})
    assert r.status == 206, r
    assert r.header("Content-Range") == f"bytes 1000-200999/{len(SMALL)}", r
    assert r.body == SMALL[1000:201000]
    whole = st.get("/api/proxy/media/small")
    assert whole.status == 200 and whole.body == SMALL, whole
    assert whole.header("Accept-Ranges") == "bytes", whole


def test_bytes_reach_the_client_as_they_come(st, scripted):
    """The origin sends 1000 bytes and waits: the client has them before the
    origin goes on, so the front holds no whole body back."""
    scripted.release.clear()
    s = socket.create_connection(("127.0.0.1", st.port), timeout=20)
    try:
        s.sendall(f"GET /api/proxy/media/held HTTP/1.1\r\nHost: 127.0.0.1:{st.port}\r\n"
                  "Connection: close\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf or len(buf.partition(b"\r\n\r\n")[2]) < len(CHUNK):
            b = s.recv(65536)
            assert b, buf[:300]
            buf += b
        assert buf.startswith(b"HTTP/1.1 200"), buf[:300]
        assert not scripted.release.is_set()
        scripted.release.set()
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
    finally:
        scripted.release.set()
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        body = dechunk(body)
    assert body == CHUNK * 100


def dechunk(data):
    out, rest = b"", data
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, rest = out + rest[:n], rest[n + 2:]
    return out


def test_client_that_leaves_stops_the_upstream(st, origin):
    """A client reads 1 MiB of a 256 MiB file and goes: the origin's transfer
    ends far short of the file (nginx logs it when the relay hangs up)."""
    before = len(origin.sent("/big.bin"))
    s = socket.create_connection(("127.0.0.1", st.port), timeout=20)
    s.sendall(f"GET /api/proxy/media/big HTTP/1.1\r\nHost: 127.0.0.1:{st.port}\r\n\r\n".encode())
    got = 0
    while got < MiB:
        b = s.recv(65536)
        assert b, "closed early"
        got += len(b)
    s.close()
    assert wait_until(lambda: len(origin.sent("/big.bin")) > before, timeout=30), \
        f"the origin is still sending /big.bin 30 s after the client left ({st.front})"
    status, sent = origin.sent("/big.bin")[before]
    assert status == 200 and sent < BIG // 2, (status, sent)


def test_whole_big_file_streams(st, origin):
    h = hashlib.sha256()
    n = 0
    s = socket.create_connection(("127.0.0.1", st.port), timeout=60)
    s.sendall(f"GET /api/proxy/media/big HTTP/1.1\r\nHost: 127.0.0.1:{st.port}\r\n"
              "Connection: close\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        assert b
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and f"content-length: {BIG}".encode() in head.lower()
    h.update(rest)
    n += len(rest)
    while True:
        b = s.recv(4 * MiB)
        if not b:
            break
        h.update(b)
        n += len(b)
    s.close()
    assert n == BIG and h.hexdigest() == origin.origin.sha256["big.bin"]


# --- players ---------------------------------------------------------------------------

def test_hls_plays(st):
    play(st.url("/api/media/hls/index.m3u8"))


def test_dash_plays(st):
    play(st.url("/api/media/dash/manifest.mpd"))


def test_segment_is_cached_for_the_next_viewer(st):
    playlist = st.get("/api/media/hls/index.m3u8")
    assert playlist.status == 200, playlist
    seg = relay_lines(playlist.body.decode())[1]
    first = st.get(seg)
    assert first.status == 200 and first.body[:1] == b"\x47", first
    again = wait_until(lambda: st.get(seg).header("X-Cache") == "HIT", timeout=10)
    assert again, st.get(seg)
    hit = st.get(seg)
    assert hit.body == first.body
    for r in (first, hit):
        assert r.header("X-Accel-Expires") is None and r.header("X-Accel-Buffering") is None, r
    part = st.get(seg, headers={"Range": "bytes=188-375"})
    assert part.status == 206 and part.body == first.body[188:376], part


def test_stream_link(st, origin):
    o = origin.origin
    direct = raw_get(st.port, f"/stream?url={q(o.url('/small.mp4'))}")
    assert direct.status == 200 and direct.body == SMALL, direct
    r = sign(st, o.url("/hls/index.m3u8"), ttl_s=600)
    assert r.status == 200, r
    link = path_of(r.json["url"])
    play(st.url(link))


# --- the front's own errors --------------------------------------------------------------

@pytest.mark.parametrize("front,status,code", [
    ("nginx", 502, "bad_gateway"),
    ("apache-proxy-fcgi", 503, "unavailable"),
    ("apache-cgi", 500, "internal"),
])
def test_front_errors_are_json(stack, front, status, code):
    """An executable that is down (or, as CGI, a program that fails) is
    answered by the front itself: in the API's JSON shape, with CORS.
    (lighttpd answers these with its own page: docs/hosting.md.)"""
    st = stack(front=front)
    if front == "apache-cgi":
        # A new file in its place (the old one may still be running: a
        # program being run cannot be written to).
        broken = st.dir / "htdocs" / "cgi-bin" / "broken.new"
        broken.write_text("#!/bin/sh\nexit 1\n")
        broken.chmod(0o755)
        os.replace(broken, st.dir / "htdocs" / "cgi-bin" / "mediarelay-proxy")
    else:
        pid = st.pid("proxy")
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not alive(pid), timeout=5)
        reap(pid)
    r = st.get("/api/health/proxy", headers={"Origin": "https://player.example"})
    assert_json_error(r, status, code)
    assert r.header("Content-Type").startswith("application/json"), r
    assert r.header("Access-Control-Allow-Origin") == "*", r
    assert st.get("/api/health/m3u8").status == 200
