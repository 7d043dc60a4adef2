"""The front matrix (issue 13): one smoke set against every web server that
contrib/ ships a configuration for, each started by contrib/dev/stack
--front with that very file: nginx, lighttpd (mod_fastcgi, executables under
spawn-fcgi), Apache with mod_proxy_fcgi (spawn-fcgi), Apache with mod_fcgid
(Apache starts and stops the executables) and Apache running them as plain
CGI programs from a web root with contrib/apache/cgi/'s .htaccess files.

The set: health on every executable (mediarelay-jobs included), JSON errors
and CORS, a Range request
on a relayed file, bytes that reach the client as the upstream sends them
(no front buffers a whole body), HLS and DASH played by ffmpeg, a signed
/stream link, a segment cached by one request and served from the cache to
the next, and a client that leaves in the middle of a 256 MiB stream (the
origin's transfer stops).  The origin is an nginx of its own on 127.0.0.1
(the stack's front is not always nginx) and a scripted one.

Media jobs: each front routes the jobs API to mediarelay-jobs and lets a
Server-Sent Events answer through event by event.  mediarelay-jobs does not
stream events yet, so a stand-in answers in its place (FAKE_JOBS, a small
FastCGI and CGI responder in Python), put in a build tree of its own next to
the real executables; the front's configuration is the shipped one.  On
nginx the stand-in also answers X-Accel-Redirect to /_mr_jobs/, which must
send a file of jobs.dir with Range."""

import hashlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import BUILDDIR, EXES, alive, assert_json_error, make_config, reap, wait_until
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

@pytest.mark.parametrize("exe", ["", "/resolve", "/m3u8", "/segment", "/proxy", "/jobs"])
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


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/analyze"), ("POST", "/api/download"), ("POST", "/api/process"),
    ("GET", "/api/tasks"), ("GET", "/api/tasks/t1"), ("DELETE", "/api/tasks/t1"),
    ("GET", "/api/tasks/t1/events"), ("POST", "/api/tasks/t1/media"),
    ("GET", "/api/download-result/t1"), ("GET", "/api/results/t1/x.mp4"),
])
def test_jobs_api_reaches_mediarelay_jobs(st, method, path):
    """Every route of the jobs API goes to mediarelay-jobs, none to resolve's
    catch-all: without credentials each answers mediarelay-jobs' own 401 (a
    result link, its 403), never the "no such endpoint" 404 of an executable
    without it.  The POSTs carry a body the executable does not read before
    it refuses: as a CGI program it reads the rest and drops it before it
    exits (else Apache, still writing the body, drops the connection)."""
    body = {"url": "http://example.com/x"} if method == "POST" else None
    for _ in range(5 if body else 1):
        r = st.request(method, path, body=body)
        if path.startswith("/api/results/"):
            assert_json_error(r, 403, "forbidden")
            assert "result link" in r.json["error"]["message"], r
        else:
            assert_json_error(r, 401, "unauthorized")
            assert "media jobs need" in r.json["error"]["message"], r


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


# --- media jobs: Server-Sent Events and results, through a stand-in ---------------------

# The stand-in for mediarelay-jobs: FastCGI on the listening socket of fd 0
# (spawn-fcgi, mod_fcgid), or CGI (the web server set GATEWAY_INTERFACE and
# fd 0 is no listening socket: mod_cgid's is a connected one).  GET /api/tasks/t1/events writes "data: one", then
# waits (30 s at most) for the file "sse-release" beside its configuration
# before "data: two"; GET /api/download-result/t1 answers X-Accel-Redirect to
# /_mr_jobs/t1/result.mp4; health is 200.  No X-Accel-Buffering: what is
# tested is the front's configuration.
FAKE_JOBS = r'''#!/usr/bin/python3
import os, socket, stat, struct, sys, threading, time

def config_dir():
    conf = os.environ.get("MEDIARELAY_CONFIG", "")
    for i, a in enumerate(sys.argv):
        if a == "--config" and i + 1 < len(sys.argv):
            conf = sys.argv[i + 1]
    return os.path.dirname(conf)

def answer(method, path, write):
    path = path.split("?", 1)[0]
    if path.startswith("/api/health"):
        write(b"Status: 200 OK\r\nContent-Type: application/json\r\n\r\n"
              b'{"status":"ok","redis":"ok","executable":"jobs","fake":true}\n')
    elif path == "/api/tasks/t1/events":
        write(b"Status: 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
              b"data: one\n\n")
        release = os.path.join(config_dir(), "sse-release")
        deadline = time.monotonic() + 30
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.05)
        write(b"data: two\n\n")
    elif path == "/api/download-result/t1":
        write(b"Status: 200 OK\r\nContent-Type: video/mp4\r\n"
              b"Content-Disposition: attachment; filename=\"result.mp4\"\r\n"
              b"Cache-Control: private, no-cache\r\n"
              b"X-Accel-Redirect: /_mr_jobs/t1/result.mp4\r\n"
              b"Access-Control-Allow-Origin: *\r\n"
              b"Access-Control-Expose-Headers: Content-Range, Content-Length\r\n\r\n")
    else:
        write(b"Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n"
              b'{"error":{"code":"not_found","message":"not the fake\'s"}}\n')

def record(t, rid, data=b""):
    return struct.pack(">BBHHBB", 1, t, rid, len(data), 0, 0) + data

def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        b = conn.recv(n - len(buf))
        if not b:
            raise EOFError
        buf += b
    return buf

def pairs(data):
    out, i = {}, 0
    def length():
        nonlocal i
        if data[i] & 0x80:
            n = struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF
            i += 4
        else:
            n = data[i]
            i += 1
        return n
    while i < len(data):
        nl = length(); vl = length()
        out[data[i:i + nl].decode("latin-1")] = data[i + nl:i + nl + vl].decode("latin-1")
        i += nl + vl
    return out

def serve(conn):
    try:
        while True:
            params, rid, keep, stdin_done = b"", 0, False, False
            while not stdin_done:
                v, t, rid_, n, pad, _ = struct.unpack(">BBHHBB", read_exact(conn, 8))
                body = read_exact(conn, n + pad)[:n]
                if t == 1:
                    rid, keep = rid_, bool(body[2] & 1)
                elif t == 4:
                    params += body
                elif t == 5 and n == 0:
                    stdin_done = True
                elif t == 9:
                    conn.sendall(record(10, 0))
            env = pairs(params)
            def write(b):
                for i in range(0, len(b), 60000):
                    conn.sendall(record(6, rid, b[i:i + 60000]))
            answer(env.get("REQUEST_METHOD", "GET"),
                   env.get("REQUEST_URI") or env.get("SCRIPT_NAME", "/"), write)
            conn.sendall(record(6, rid) + record(3, rid, b"\0" * 8))
            if not keep:
                break
    except (EOFError, OSError):
        pass
    finally:
        conn.close()

def listening(fd):
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        return False
    s = socket.socket(fileno=os.dup(fd))
    try:
        return bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    finally:
        s.close()

if os.environ.get("GATEWAY_INTERFACE") and not listening(0):
    out = sys.stdout.buffer
    def write(b):
        out.write(b)
        out.flush()
    answer(os.environ.get("REQUEST_METHOD", "GET"), os.environ.get("REQUEST_URI", "/"), write)
    sys.exit(0)
listener = socket.socket(fileno=os.dup(0))
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
'''


@pytest.fixture(scope="module")
def fake_builddir():
    """A build tree whose fcgi/ has the real executables (links) but for
    mediarelay-jobs, which is FAKE_JOBS.  Open to www-data (Apache runs it)."""
    d = Path(tempfile.mkdtemp(prefix="mr-fakebuild-", dir="/tmp"))
    d.chmod(0o755)
    (d / "fcgi").mkdir(mode=0o755)
    for name in EXES:
        if name != "jobs":
            (d / "fcgi" / f"mediarelay-{name}").symlink_to(BUILDDIR / "fcgi" / f"mediarelay-{name}")
    fake = d / "fcgi" / "mediarelay-jobs"
    fake.write_text(FAKE_JOBS)
    fake.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def read_until(s, buf, what, timeout):
    """Read from socket s onto buf until it holds what; the bytes read."""
    deadline = time.monotonic() + timeout
    while what not in buf:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            b = s.recv(65536)
        except socket.timeout:
            raise AssertionError(f"{what!r} not received within {timeout} s; got {buf[:600]!r}")
        assert b, f"closed before {what!r}: {buf[:600]!r}"
        buf += b
    return buf


@pytest.mark.parametrize("front", FRONTS)
def test_server_sent_events_are_not_buffered(stack, fake_builddir, front):
    """A task's events (/api/tasks/ID/events) reach the client as the
    executable writes them: the first event is there while the executable
    still holds the answer open, the second after it goes on."""
    st = stack(front=front, workers=0, builddir=fake_builddir)
    assert st.get("/api/health/jobs").json.get("fake"), "the stand-in does not answer"
    release = st.dir / "sse-release"
    s = socket.create_connection(("127.0.0.1", st.port), timeout=20)
    try:
        s.sendall(f"GET /api/tasks/t1/events HTTP/1.1\r\nHost: 127.0.0.1:{st.port}\r\n"
                  "Accept: text/event-stream\r\nConnection: close\r\n\r\n".encode())
        buf = read_until(s, b"", b"data: one\n\n", timeout=10)
        assert buf.startswith(b"HTTP/1.1 200"), buf[:300]
        head = buf.partition(b"\r\n\r\n")[0].lower()
        assert b"content-type: text/event-stream" in head, head
        assert b"data: two" not in buf
        release.touch()
        buf = read_until(s, buf, b"data: two\n\n", timeout=10)
    finally:
        release.touch()
        s.close()


def test_nginx_sends_jobs_results_from_jobs_dir(stack, fake_builddir):
    """stream.offload "nginx": mediarelay-jobs answers X-Accel-Redirect to
    jobs.accel_prefix; nginx sends the file from jobs.dir (the stack's
    DIR/jobs) with Range and HEAD, its type and CORS the executable's, and
    /_mr_jobs/ is not for clients to ask."""
    st = stack(workers=0, builddir=fake_builddir)
    data = os.urandom(100_000)
    (st.dir / "jobs" / "t1").mkdir(parents=True)
    (st.dir / "jobs" / "t1" / "result.mp4").write_bytes(data)
    whole = st.get("/api/download-result/t1")
    assert whole.status == 200 and whole.body == data, whole
    assert whole.header("Content-Type") == "video/mp4", whole
    assert whole.header("Access-Control-Allow-Origin") == "*", whole
    assert "content-range" in whole.header_tokens("Access-Control-Expose-Headers"), whole
    assert whole.header("Content-Disposition") == 'attachment; filename="result.mp4"', whole
    assert whole.header("Cache-Control") == "private, no-cache", whole
    assert whole.header("X-Content-Type-Options") == "nosniff", whole
    assert whole.header("X-Accel-Redirect") is None, whole
    part = st.get("/api/download-result/t1", headers={"Range": "bytes=1000-1999"})
    assert part.status == 206 and part.body == data[1000:2000], part
    assert part.header("Content-Range") == f"bytes 1000-1999/{len(data)}", part
    head = st.request("HEAD", "/api/download-result/t1")
    assert head.status == 200 and head.header("Content-Length") == str(len(data)), head
    assert st.get("/_mr_jobs/t1/result.mp4").status == 404
    (st.dir / "jobs" / "t1" / "result.mp4").unlink()
    assert_json_error(st.get("/api/download-result/t1"), 404, "not_found")
