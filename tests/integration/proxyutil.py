"""Helpers for the mediarelay-proxy tests (test_proxy_*.py): origins and raw clients.

- NginxOrigin: files generated in a temporary directory, served by an extra
  server block of the stack's own nginx (Range, ETag, Last-Modified, 304 and
  HEAD are nginx's own); its access log records the method of each request.
- ScriptedOrigin: a stdlib HTTP server in threads whose routes write their
  answer themselves (trickle, stall, close early, refuse a Referer, redirect,
  notice that the client went away).
- raw_get / StreamClient: HTTP/1.1 clients on plain sockets, so a test can
  tell a clean end of a body from a truncated one, and time what arrives.

Every socket has a timeout, so nothing here can hang a test.
"""

import hashlib
import http.server
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

from conftest import ADMIN_TOKEN, Stack, _finish, alive, deep_merge, free_port, wait_until

MiB = 1024 * 1024

# How a relayed body travels (docs/proxy.md):
# - "libcurl": the proxy carries it, every byte through libcurl
#   (upstream.splice_min_bytes 0);
# - "splice": the proxy carries it, and every plain-HTTP body whose first read
#   leaves some of it to come is spliced from the upstream's socket to nginx
#   (splice_min_bytes 1);
# - "nginx": stream.offload "nginx", the bytes move in contrib/nginx's
#   internal location /_mediarelay_offload.
# "off" is the shipped configuration (the proxy carries it, bodies of 1 MiB or
# more spliced).  A module's stack fixture with params=MODES runs its tests in
# every mode; the two internal ones log at debug level, where spliced() looks.
MODES = ["libcurl", "splice", "nginx"]
INTERNAL = ["libcurl", "splice"]
MODE_CONFIG = {
    "off": {"stream": {"offload": "off"}},
    "libcurl": {"stream": {"offload": "off"}, "upstream": {"splice_min_bytes": 0},
                "log": {"level": "debug"}},
    "splice": {"stream": {"offload": "off"}, "upstream": {"splice_min_bytes": 1},
               "log": {"level": "debug"}},
    "nginx": {"stream": {"offload": "nginx"}},
}


# --- a stack per module ------------------------------------------------------------

def module_stack(request, config, extra_nginx=None, mode=None, front="nginx"):
    """Start a Stack for a module-scoped fixture; yields it, stops it at teardown.

    mode (one of MODE_CONFIG) is merged into the configuration; the stack's
    .mode says which it is and .offload its stream.offload, either way."""
    if mode is not None:
        config = deep_merge(config, MODE_CONFIG[mode])
    s = Stack(config, extra_nginx=extra_nginx, front=front)
    s.offload = ((config.get("stream") or {}).get("offload", "off")
                 if isinstance(config, dict) else "off")
    s.mode = mode or s.offload
    try:
        s.start()
    except Exception:
        _finish(s, True)
        raise
    failed_before = request.session.testsfailed
    try:
        yield s
    finally:
        _finish(s, request.session.testsfailed > failed_before)


def spliced(stack, upstream_url):
    """Whether the proxy handed the rest of a body from upstream_url to splice
    (its debug log says so)."""
    return f"upstream {upstream_url}: the rest of the body" in stack.log("proxy")


def q(url):
    """url, percent-encoded for a query parameter."""
    return urllib.parse.quote(url, safe="")


def sign(stack, url, ttl_s=600, token=ADMIN_TOKEN):
    """POST /api/proxy/sign; the Response."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return stack.request("POST", "/api/proxy/sign", headers=headers,
                         body={"url": url, "ttl_s": ttl_s})


def path_of(url):
    """The path and query of an absolute URL (to send to the stack)."""
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


# --- the nginx origin --------------------------------------------------------------

class NginxOrigin:
    """Files in DIR, served on 127.0.0.1:PORT by a server block for --extra-nginx.

    files: name -> bytes (written as they are). big_files: name -> size, made
    sparse with random 4 KiB marks every MiB (cheap to make, yet any misplaced
    or missing MiB changes the hash); sha256 of each in self.sha256[name]."""

    def __init__(self, tmpdir, files=None, big_files=None):
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base_url = f"http://{self.host}"
        self.log_path = self.dir / "origin-access.log"
        self.files = dict(files or {})
        self.sha256 = {}
        os.makedirs(self.dir / "www" / "cc", exist_ok=True)
        for name, data in self.files.items():
            (self.dir / "www" / name).write_bytes(data)
        for name, size in (big_files or {}).items():
            self.sha256[name] = make_sparse_file(self.dir / "www" / name, size)

    def url(self, path):
        return self.base_url + path

    def path(self, name):
        return self.dir / "www" / name

    def nginx_conf(self, extra_locations=""):
        return f"""
log_format mr_origin '$request_method $request_uri $status "$http_range" "$http_user_agent"';
server {{
    listen 127.0.0.1:{self.port};
    server_name origin;
    root {self.dir}/www;
    access_log {self.log_path} mr_origin;
    types {{ video/mp4 mp4; application/vnd.apple.mpegurl m3u8; }}
    default_type application/octet-stream;
    location /cc/ {{
        add_header Cache-Control "public, max-age=60";
        add_header Content-Disposition 'attachment; filename="movie.mp4"';
        add_header Set-Cookie "origin_session=secret; Path=/";
        add_header X-Origin-Private "yes";
    }}
    {extra_locations}
}}
"""

    def log_lines(self):
        try:
            return self.log_path.read_text().splitlines()
        except FileNotFoundError:
            return []


class StandaloneOrigin:
    """An NginxOrigin served by an nginx of its own, not the stack's: for
    stacks whose front is not nginx (contrib/dev/stack --front).  Also logs
    each request's body bytes sent (self.sent_log), to see an upstream
    transfer that stopped."""

    def __init__(self, origin, extra_locations=""):
        self.origin = origin
        self.dir = origin.dir / "nginx"
        self.dir.mkdir(exist_ok=True)
        self.sent_log = self.dir / "sent.log"
        user = "user root;" if os.geteuid() == 0 else ""
        server = origin.nginx_conf(extra_locations=extra_locations + f"""
    access_log {self.sent_log} mr_sent;""")
        (self.dir / "nginx.conf").write_text(f"""{user}
daemon on;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {self.dir}/client_body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    log_format mr_sent '$request_uri $status $body_bytes_sent';
    sendfile on;
    {server}
}}
""")
        subprocess.run(["nginx", "-p", f"{self.dir}/", "-c", str(self.dir / "nginx.conf")],
                       check=True, timeout=10, capture_output=True, stdin=subprocess.DEVNULL)
        ok = wait_until(lambda: self._answers(), timeout=5)
        assert ok, (self.dir / "error.log").read_text()

    def _answers(self):
        try:
            socket.create_connection(("127.0.0.1", self.origin.port), timeout=1).close()
            return True
        except OSError:
            return False

    def sent(self, path):
        """[(status, body bytes sent)] of the requests for path that ended."""
        try:
            lines = self.sent_log.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            uri, status, sent = line.split()
            if uri.split("?")[0] == path:
                out.append((int(status), int(sent)))
        return out

    def close(self):
        try:
            pid = int((self.dir / "nginx.pid").read_text())
        except (OSError, ValueError):
            return
        os.kill(pid, signal.SIGQUIT)
        wait_until(lambda: not alive(pid), timeout=10)


def make_sparse_file(path, size):
    """A sparse file of size bytes with random 4 KiB marks at every MiB and at the end.
    Returns its sha256 (hex), computed by reading it back."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off in range(0, size, MiB):
            f.seek(off)
            f.write(os.urandom(min(4096, size - off)))
        f.seek(max(size - 4096, 0))
        f.write(os.urandom(min(4096, size)))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(4 * MiB)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


# --- the scripted origin -----------------------------------------------------------

class Seen:
    """One request as the scripted origin received it."""

    def __init__(self, method, target, headers):
        u = urllib.parse.urlsplit(target)
        self.method, self.target, self.path, self.query = method, target, u.path, u.query
        self.headers = headers                  # email.message.Message: case-insensitive
        self.closed_at = None                   # set by routes that watch the connection

    def __repr__(self):
        return f"<Seen {self.method} {self.target} {dict(self.headers)}>"


class ScriptedOrigin:
    """HTTP/1.1 server on 127.0.0.1:<random port>, one thread per connection.

    origin.route("/path", fn)  (a path ending in "/" is a prefix)
    fn(h, seen) writes the whole answer through h (a BaseHTTPRequestHandler):
    h.answer(status, headers, body), or h.send_raw(bytes), h.connection …
    origin.seen: every request, in order. origin.stop: an Event set at close,
    for routes that wait."""

    def __init__(self):
        self.routes = {}
        self.seen = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 60            # a socket timeout on every connection

            def log_message(self, *args):
                pass

            def handle_one(self):
                seen = Seen(self.command, self.path, self.headers)
                with origin.lock:
                    origin.seen.append(seen)
                fn = origin._route(seen.path)
                try:
                    if fn is None:
                        self.answer(404, {"Content-Type": "text/plain"}, b"no such route\n")
                    else:
                        fn(self, seen)
                except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = handle_one

            def answer(self, status, headers=None, body=b""):
                headers = dict(headers or {})
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(status)
                if not any(k.lower() in ("content-length", "transfer-encoding") for k in headers):
                    headers["Content-Length"] = str(len(body))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD" and body:
                    self.wfile.write(body)
                self.wfile.flush()

            def send_raw(self, data):
                self.wfile.write(data)
                self.wfile.flush()

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256        # 64 streams connect at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.base_url = f"http://{self.host}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path):
        return self.base_url + path

    def route(self, path, fn):
        self.routes[path] = fn

    def _route(self, path):
        if path in self.routes:
            return self.routes[path]
        prefixes = [p for p in self.routes if p.endswith("/") and path.startswith(p)]
        return self.routes[max(prefixes, key=len)] if prefixes else None

    def requests_to(self, path):
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def peer_closed(sock):
    """Whether the peer of sock closed (or reset) the connection; non-blocking."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def trickle(h, seen, chunk, count, interval, content_length=True, on_close=None, stop=None):
    """Answer 200 with count chunks of chunk bytes, one every interval seconds.
    Stops (and notes seen.closed_at) when the peer goes away; returns the bytes sent."""
    h.send_response(200)
    h.send_header("Content-Type", "video/mp4")
    if content_length:
        h.send_header("Content-Length", str(len(chunk) * count))
    h.end_headers()
    h.wfile.flush()
    sent = 0
    for _ in range(count):
        if stop is not None and stop.is_set():
            break
        try:
            h.wfile.write(chunk)
            h.wfile.flush()
            sent += len(chunk)
        except OSError:
            seen.closed_at = time.monotonic()
            break
        if peer_closed(h.connection):
            seen.closed_at = time.monotonic()
            break
        time.sleep(interval)
    return sent


def held(h, seen, chunk, count, at, release, close_early=False, content_type="video/mp2t"):
    """Answer 200 with count chunks of chunk bytes (Content-Length for all of
    them): the first `at` at once, the rest only once release (an Event) is
    set, so a test sees clients served while the answer is still coming and
    decides itself when it ends.  close_early: at release, close instead of
    sending the rest (a body that breaks off).  Notes seen.released."""
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(chunk) * count))
    h.end_headers()
    h.wfile.write(chunk * at)
    h.wfile.flush()
    seen.released = release.wait(30)
    if close_early:
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)
        return
    h.wfile.write(chunk * (count - at))
    h.wfile.flush()


# --- raw clients -------------------------------------------------------------------

class RawResponse:
    """A response read to EOF from a raw socket.

    status, headers (lower-case name -> value; repeated names joined by ", "),
    body (decoded from chunked if it was), complete: whether the body ended
    cleanly (Content-Length reached / final 0-chunk seen)."""

    def __init__(self, status, headers, raw_headers, body, complete, framing):
        self.status, self.headers, self.raw_headers = status, headers, raw_headers
        self.body, self.complete, self.framing = body, complete, framing

    def __repr__(self):
        return (f"<RawResponse {self.status} {self.framing} complete={self.complete} "
                f"{len(self.body)}B {self.headers}>")


def assert_raw_error(r, status, code):
    """A RawResponse carries the API's JSON error shape with this status and code."""
    assert r.status == status, r
    assert r.headers.get("content-type", "").startswith("application/json"), r
    try:
        body = json.loads(r.body)
    except ValueError:
        raise AssertionError(f"not JSON: {r!r} {r.body[:200]!r}")
    assert set(body) == {"error"} and body["error"].get("code") == code, (r, body)
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    return body["error"]


def assert_upstream_status(st, r, status):
    """An upstream's error status passed on: the relay's JSON upstream_status in
    internal mode; in offload mode the status with the upstream's own body
    (docs/proxy.md, departures in offload mode)."""
    if getattr(st, "offload", "off") == "nginx":
        assert r.status == status, r
        return None
    return assert_raw_error(r, status, "upstream_status")


def assert_no_internal_headers(names, what=""):
    """No X-Mediarelay-* (the proxy's instructions to nginx: upstream address,
    policy Cookie, ...) and no X-Accel-* header in an answer to the client."""
    bad = [n for n in names if n.lower().startswith(("x-mediarelay-", "x-accel-"))]
    assert not bad, f"internal headers reached the client: {bad} {what}"


def parse_raw(data):
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"no complete header block in {data[:300]!r}")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers, raw_headers = {}, []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k, v = k.strip().lower(), v.strip()
        raw_headers.append((k, v))
        headers[k] = headers[k] + ", " + v if k in headers else v
    assert_no_internal_headers(headers, lines[0])
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, complete = bytearray(), False
        pos = 0
        while True:
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                break
            try:
                size = int(rest[pos:eol].split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                complete = rest.find(b"\r\n", eol + 2) >= 0   # the (empty) trailer's CRLF
                break
            start = eol + 2
            if len(rest) < start + size + 2:
                body += rest[start:start + size]
                break
            body += rest[start:start + size]
            pos = start + size + 2
        return RawResponse(status, headers, raw_headers, bytes(body), complete, "chunked")
    if "content-length" in headers:
        n = int(headers["content-length"])
        return RawResponse(status, headers, raw_headers, rest[:n], len(rest) >= n, "length")
    return RawResponse(status, headers, raw_headers, rest, None, "close")


def raw_get(port, path, headers=None, method="GET", timeout=15.0):
    """One request with Connection: close, read to EOF; a RawResponse.
    A socket timeout is an AssertionError (the server never ended the answer)."""
    hdrs = {"Host": f"127.0.0.1:{port}", "Connection": "close", **(headers or {})}
    req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req.encode() + b"\r\n")
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: no end of the answer within {timeout} s")
            try:
                b = s.recv(256 * 1024)
            except socket.timeout:
                raise AssertionError(f"{method} {path}: no end of the answer within {timeout} s")
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    return parse_raw(b"".join(chunks))


def get_until(port, path, until, what, timeout=10.0, headers=None):
    """raw_get(port, path) again and again until until(response) holds; that
    response.  AssertionError (saying what) when it does not by timeout."""
    return wait_until(lambda: (lambda r: r if until(r) else None)(
        raw_get(port, path, headers)), timeout=timeout, what=what)


class StreamClient(threading.Thread):
    """GET path in a thread on a raw socket, reading to EOF; records times.

    t_start, t_first (first body byte), t_end, status, nbytes (body bytes,
    transfer framing included for chunked), error."""

    def __init__(self, port, path, headers=None, timeout=30.0, sha=False):
        super().__init__(daemon=True)
        self.port, self.path, self.headers, self.timeout = port, path, headers or {}, timeout
        self.t_start = self.t_first = self.t_end = None
        self.status = None
        self.nbytes = 0
        self.error = None
        self.head = b""
        self.hash = hashlib.sha256() if sha else None

    def run(self):
        try:
            self._run()
        except Exception as e:     # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.t_end = time.monotonic()

    def _run(self):
        hdrs = {"Host": f"127.0.0.1:{self.port}", "Connection": "close", **self.headers}
        req = f"GET {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        self.t_start = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as s:
            s.sendall(req.encode() + b"\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                b = s.recv(65536)
                if not b:
                    raise AssertionError(f"connection closed before the headers: {buf!r}")
                buf += b
            self.head, _, body = buf.partition(b"\r\n\r\n")
            assert_no_internal_headers([ln.partition(b":")[0].decode("latin-1").strip()
                                        for ln in self.head.split(b"\r\n")[1:]])
            self.status = int(self.head.split()[1])
            self._got(body)
            while True:
                b = s.recv(1024 * 1024)
                if not b:
                    break
                self._got(b)

    def _got(self, b):
        if b and self.t_first is None:
            self.t_first = time.monotonic()
        self.nbytes += len(b)
        if self.hash is not None:
            self.hash.update(b)


def read_some_then_close(port, path, nbytes, timeout=10.0):
    """GET path, read the headers and at least nbytes of body, then close the socket
    (with unread data pending: the kernel resets the connection). Returns the status."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf or len(buf.partition(b"\r\n\r\n")[2]) < nbytes:
            b = s.recv(65536)
            if not b:
                break
            buf += b
        return int(buf.split()[1]) if buf else None
    finally:
        s.close()

