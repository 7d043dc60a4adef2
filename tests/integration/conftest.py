"""Fixtures for the integration tests: the real stack, run by contrib/dev/stack
(nginx + the four executables under spawn-fcgi + Redis, all in a temporary
directory, nginx on a free 127.0.0.1 port), and mock origin servers.

Only the standard library and pytest. Run through tests/integration/run (or
`make check`); by hand:

    MEDIARELAY_BUILDDIR=/path/to/build /usr/bin/python3 -m pytest -p no:cacheprovider tests/integration
"""

import copy
import ctypes
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

SRCDIR = Path(os.environ.get("MR_SRCDIR") or Path(__file__).resolve().parents[2])
STACK = SRCDIR / "contrib" / "dev" / "stack"
EXES = ("resolve", "m3u8", "segment", "proxy")

SECRET = "0123456789abcdef" * 4          # 64 hex characters
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"   # at least 32 characters
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEY_PREFIX = "mr:"

# The smallest valid config: every other key has a default.
MINIMAL_CONFIG = {
    "secret": SECRET,
    "admin_token": ADMIN_TOKEN,
    "upstream": {"allow_private_networks": True},
    "media": {"intro": {"provider": "direct", "source": {"url": "http://127.0.0.1:9/x.mp4"}}},
}


def _find_builddir():
    for var in ("MEDIARELAY_BUILDDIR", "MR_BUILDDIR"):
        if os.environ.get(var):
            return Path(os.environ[var])
    if (SRCDIR / "fcgi" / "mediarelay-resolve").exists():
        return SRCDIR
    return None


BUILDDIR = _find_builddir()


def project_version():
    """The version in configure.ac's AC_INIT, which /api/health reports."""
    text = (SRCDIR / "configure.ac").read_text()
    m = re.search(r"AC_INIT\(\[mediarelay\],\s*\[([^\]]+)\]", text)
    return m.group(1) if m else "0.1.0"


def binary(name):
    """Path of an executable in the build tree, e.g. binary("proxy")."""
    return BUILDDIR / "fcgi" / f"mediarelay-{name}"


# --- pytest hooks ------------------------------------------------------------

def pytest_configure(config):
    if BUILDDIR is None or not binary("resolve").exists():
        raise pytest.UsageError(
            "mediarelay binaries not found: set MEDIARELAY_BUILDDIR to the build tree "
            f"(looked in {BUILDDIR or SRCDIR}/fcgi)")
    # The stack's daemons (nginx, redis, the executables) detach from the
    # stack script; as a child subreaper this process becomes their parent,
    # so it can reap them (see reap()) instead of leaving zombies behind
    # where PID 1 does not reap, and can read their exit status.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item, so fixtures can tell a failure.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    node = request.node
    return any(getattr(getattr(node, "rep_" + w, None), "failed", False)
               for w in ("setup", "call"))


# --- small helpers -------------------------------------------------------------

def deep_merge(base, override):
    """A copy of dict base with dict override merged in, recursively."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def make_config(**overrides):
    """MINIMAL_CONFIG with overrides merged in: make_config(store={"timeout_ms": 3000})."""
    return deep_merge(MINIMAL_CONFIG, overrides)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def reap(pid):
    """Collect an exited child (we are a subreaper); its exit code, else None."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if got == pid else None


def wait_until(predicate, timeout=10.0, interval=0.1):
    """Poll predicate() until it returns a true value or timeout; that value, else the last."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def processes_mentioning(text):
    """PIDs of live processes whose command line contains text."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class Response:
    """An HTTP answer: status, headers (case-insensitive), body (bytes), json (or None)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        # The proxy's instructions to nginx (X-Mediarelay-*: upstream address,
        # policy Cookie, ...) and X-Accel-* never reach a client.
        internal = [k for k in headers.keys()
                    if k.lower().startswith(("x-mediarelay-", "x-accel-"))]
        assert not internal, f"internal headers reached the client: {internal} ({status})"
        self.json = None
        if "json" in (headers.get("Content-Type") or "") and body:
            try:
                self.json = json.loads(body)
            except ValueError:
                pass

    def header(self, name):
        return self.headers.get(name)

    def header_tokens(self, name):
        """A comma-separated header as a set of lower-case tokens."""
        return {t.strip().lower() for t in ",".join(self.headers.get_all(name) or []).split(",")
                if t.strip()}

    def __repr__(self):
        return f"<Response {self.status} {dict(self.headers)} {self.body[:300]!r}>"


def http_request(method, url, headers=None, body=None, timeout=10.0):
    """One request with http.client (any method, no redirects, no raise on 4xx/5xx)."""
    u = urllib.parse.urlsplit(url)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.headers, data)
    finally:
        conn.close()


def assert_json_error(resp, status, code):
    """The API's error shape: {"error":{"code":…,"message":…}}, application/json."""
    assert resp.status == status, resp
    assert (resp.header("Content-Type") or "").startswith("application/json"), resp
    assert isinstance(resp.json, dict), resp
    assert set(resp.json) == {"error"}, resp
    err = resp.json["error"]
    assert err.get("code") == code, resp
    assert isinstance(err.get("message"), str) and err["message"], resp
    return err


# --- the stack -------------------------------------------------------------------

class StackError(Exception):
    pass


class Stack:
    """One stack started by contrib/dev/stack in its own directory."""

    def __init__(self, config, no_redis=False, extra_nginx=None):
        # Short paths: a unix socket path must fit in 107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="mr-", dir="/tmp"))
        self.port = free_port()
        self.config = config
        self.no_redis = no_redis
        self.extra_nginx = extra_nginx
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.pids = set()       # every pid seen, to reap at the end
        self.last_run = None    # CompletedProcess of the last start/stop

    # running the script
    def _run(self, *args, timeout=60):
        env = dict(os.environ)
        env["MEDIARELAY_BUILDDIR"] = str(BUILDDIR)
        self.last_run = subprocess.run([str(STACK), *args], capture_output=True, text=True,
                                       timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        return self.last_run

    def start(self, check=True):
        conf = self.dir / "config.in.json"
        if isinstance(self.config, (dict, list)):
            conf.write_text(json.dumps(self.config, indent=2))
        else:
            conf.write_text(self.config)
        args = ["start", "--dir", str(self.dir), "--port", str(self.port), "--config", str(conf)]
        if self.no_redis:
            args.append("--no-redis")
        if self.extra_nginx:
            extra = self.dir / "extra.in.conf"
            extra.write_text(self.extra_nginx)
            args += ["--extra-nginx", str(extra)]
        r = self._run(*args)
        self._note_pids()
        if check and r.returncode != 0:
            raise StackError(f"stack start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def stop(self):
        self._note_pids()
        r = self._run("stop", "--dir", str(self.dir))
        self.reap_all()
        return r

    def _note_pids(self):
        for f in self.dir.glob("*.pid"):
            try:
                self.pids.add(int(f.read_text().strip()))
            except (OSError, ValueError):
                pass

    def reap_all(self):
        for pid in list(self.pids):
            reap(pid)

    # requests
    def url(self, path):
        return self.base_url + path

    def request(self, method, path, headers=None, body=None, timeout=10.0):
        return http_request(method, self.url(path), headers=headers, body=body, timeout=timeout)

    def get(self, path, headers=None, timeout=10.0):
        return self.request("GET", path, headers=headers, timeout=timeout)

    # the processes
    def pid(self, name):
        """The pid of "nginx", "redis" or an executable ("proxy"), from DIR/<name>.pid."""
        pid = int((self.dir / f"{name}.pid").read_text().strip())
        self.pids.add(pid)
        return pid

    def log(self, name):
        """DIR/<name>.log ("proxy", "redis", "nginx-error", …) as text, "" if absent."""
        try:
            return (self.dir / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def logs(self):
        out = []
        for f in sorted(self.dir.glob("*.log")):
            out.append(f"----- {f}\n{f.read_text(errors='replace')[-8000:]}")
        return "\n".join(out)

    # redis
    @property
    def redis_sock(self):
        return self.dir / "redis.sock"

    def redis_cli(self, *args):
        r = subprocess.run(["redis-cli", "-s", str(self.redis_sock), *args],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r
        return r.stdout.strip()

    def start_redis(self):
        """(Re)start Redis with the same command line as contrib/dev/stack."""
        d = str(self.dir)
        subprocess.run(["redis-server", "--port", "0", "--unixsocket", f"{d}/redis.sock",
                        "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                        "--daemonize", "yes", "--pidfile", f"{d}/redis.pid", "--dir", d,
                        "--logfile", f"{d}/redis.log"], check=True, timeout=10,
                       stdin=subprocess.DEVNULL, capture_output=True)
        ok = wait_until(lambda: subprocess.run(["redis-cli", "-s", f"{d}/redis.sock", "ping"],
                                               capture_output=True, text=True).stdout.strip() == "PONG",
                        timeout=5)
        assert ok, "redis did not come back"
        self._note_pids()

    def kill_redis(self):
        pid = self.pid("redis")
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not alive(pid), timeout=5)
        reap(pid)


def _finish(stack, failed):
    if failed:
        print(f"\n===== stack logs ({stack.dir})")
        print(stack.logs())
    r = stack.stop()
    if r.returncode != 0:
        print("stack stop:", r.stdout, r.stderr)
    if os.environ.get("MR_KEEP_STACK"):
        print(f"kept {stack.dir}")
    else:
        shutil.rmtree(stack.dir, ignore_errors=True)


@pytest.fixture
def stack(request):
    """Factory: stack(config=None, no_redis=False, extra_nginx=None, start=True) -> Stack.

    config is a dict (default MINIMAL_CONFIG) or raw text. Every stack made is
    stopped at teardown; on failure its logs are printed first."""
    made = []

    def make(config=None, no_redis=False, extra_nginx=None, start=True):
        s = Stack(MINIMAL_CONFIG if config is None else config, no_redis=no_redis,
                  extra_nginx=extra_nginx)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in made:
        _finish(s, _failed(request))


@pytest.fixture(scope="session")
def shared_stack(request):
    """One running stack (MINIMAL_CONFIG, with Redis) for tests that only read."""
    s = Stack(MINIMAL_CONFIG)
    try:
        s.start()
    except Exception:
        _finish(s, True)
        raise
    failed_before = request.session.testsfailed
    yield s
    _finish(s, request.session.testsfailed > failed_before)


# --- mock origins ----------------------------------------------------------------

class OriginRequest:
    """What the origin received: method, path, query, headers, body."""

    def __init__(self, method, target, headers, body):
        u = urllib.parse.urlsplit(target)
        self.method, self.target, self.path, self.query = method, target, u.path, u.query
        self.headers, self.body = headers, body

    def __repr__(self):
        return f"<OriginRequest {self.method} {self.target}>"


class Origin:
    """An HTTP server on 127.0.0.1:<random port> in a thread, answering by path.

    origin.add("/x.mp4", body=b"...", content_type="video/mp4")   # static, with Range
    origin.add("/api/", handler=fn)   # a path ending in "/" is a prefix route
    fn(req: OriginRequest) -> (status, headers: dict, body: bytes)
    origin.requests is the list of OriginRequest received, in order."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self._lock = threading.Lock()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = OriginRequest(self.command, self.path, self.headers, body)
                with origin._lock:
                    origin.requests.append(req)
                status, headers, data = origin._answer(req)
                self.send_response(status)
                lower = {k.lower() for k in headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                if "content-length" not in lower and "transfer-encoding" not in lower:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD" and data:
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.base_url = f"http://{self.host}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path):
        return self.base_url + path

    def add(self, path, body=b"", status=200, headers=None, content_type="application/octet-stream",
            handler=None):
        """Answer path with a static body (Range and HEAD supported) or with handler(req)."""
        if handler is None:
            if isinstance(body, str):
                body = body.encode()
            handler = _static(body, status, headers or {}, content_type)
        self.routes[path] = handler

    def _answer(self, req):
        handler = self.routes.get(req.path)
        if handler is None:
            prefixes = [p for p in self.routes if p.endswith("/") and req.path.startswith(p)]
            if prefixes:
                handler = self.routes[max(prefixes, key=len)]
        if handler is None:
            return 404, {"Content-Type": "text/plain"}, b"not found\n"
        return handler(req)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _static(body, status, headers, content_type):
    def handler(req):
        h = {"Content-Type": content_type, "Accept-Ranges": "bytes", **headers}
        rng = req.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng or "")
        if status == 200 and m and (m.group(1) or m.group(2)):
            size = len(body)
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start, end = max(size - int(m.group(2)), 0), size - 1
            if start >= size or start > end:
                return 416, {"Content-Range": f"bytes */{size}"}, b""
            h["Content-Range"] = f"bytes {start}-{end}/{size}"
            return 206, h, body[start:end + 1]
        return status, h, body
    return handler


@pytest.fixture
def origin():
    """A mock origin server (see Origin); stopped at teardown."""
    o = Origin()
    yield o
    o.close()
