"""Fixtures for the integration tests: the real stack, run by contrib/dev/stack
(nginx + the five executables under spawn-fcgi + the media-jobs workers +
Redis, all in a temporary directory, nginx on a free 127.0.0.1 port), and
mock origin servers.

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
EXES = ("resolve", "m3u8", "segment", "proxy", "jobs")

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
    """Path of an executable in the build tree, e.g. binary("proxy");
    binary("worker") is the media-jobs worker."""
    if name == "worker":
        return BUILDDIR / "worker" / "mediarelay-worker"
    return BUILDDIR / "fcgi" / f"mediarelay-{name}"


# --- sanitizer reports ---------------------------------------------------------
#
# With an ASan+UBSan build (./configure --enable-sanitizers) every executable
# the suite runs logs its reports and keeps going (contrib/dev/stack sets the
# options for a stack's executables, sanitizer_env() below for the ones a
# test runs itself with run_binary()).  AddressSanitizer and LeakSanitizer
# reports go to files (log_path); UBSan's to the process's stderr, the only
# place GCC's libubsan writes when libasan is loaded too.  Each report found
# fails the test whose stack (or run_binary call) wrote it, and the run.

def _sanitizer_build():
    try:
        return BUILDDIR is not None and b"__asan_init" in binary("resolve").read_bytes()
    except OSError:
        return False


SANITIZED = _sanitizer_build()
SANITIZER_REPORTS = []          # (what ran it, the file it was in, the report)
NO_LEAK_CHECK = []              # (test, executable, why): exits LeakSanitizer missed
_session_san_dir = None         # log_path for what a test runs without run_binary()


def sanitizer_env(logdir, base=None):
    """The environment (base, default os.environ) for running an executable of
    an ASan+UBSan build with its ASan/LSan reports in logdir: as contrib/dev/stack
    runs them (the caller's options first, ours last, which win)."""
    env = dict(os.environ if base is None else base)
    if not SANITIZED:
        return env

    def opts(name, ours):
        return f"{env[name]}:{ours}" if env.get(name) else ours

    env["ASAN_OPTIONS"] = opts("ASAN_OPTIONS", "halt_on_error=0:detect_leaks=1:print_legend=0:"
                               f"log_path={logdir}/asan:log_exe_name=1")
    # Not for UBSan's reports (stderr): libubsan sets libasan's log_path to
    # its own (see contrib/dev/stack).
    env["UBSAN_OPTIONS"] = opts("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=0:"
                                f"log_path={logdir}/asan-after-ubsan:log_exe_name=1")
    supp = SRCDIR / "tests" / "lsan.supp"
    if supp.exists():
        env["LSAN_OPTIONS"] = opts("LSAN_OPTIONS", f"suppressions={supp}:print_suppressions=0")
    return env


_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT")    # our log lines, other threads'
_ASAN_RULE = re.compile(r"^={65}$", re.M)       # starts each ASan/LSan report


def ubsan_reports(text):
    """The UBSan reports in an executable's stderr: each 'runtime error:' line
    with what follows it up to a blank line (notes, the stack trace)."""
    reports, cur = [], None
    for line in text.splitlines():
        if ": runtime error: " in line:
            cur = [line]
            reports.append(cur)
        elif cur is not None:
            if not line.strip() or len(cur) >= 80:
                cur = None
            elif not _LOG_LINE.match(line):
                cur.append(line)
    return ["\n".join(r) for r in reports]


def _read_reports(logdir, stderr_files=(), seen=None):
    """[(source, text)]: the reports in the files of logdir (ASan/LSan logs,
    one or more reports each) and the UBSan reports in stderr_files.  seen maps
    a path to how much of it was read, so a second call returns only what is new."""
    seen = {} if seen is None else seen
    found = []
    files = sorted(Path(logdir).glob("*")) if logdir and Path(logdir).is_dir() else []
    for path in [*files, *stderr_files]:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        new = text[seen.get(str(path), 0):]
        seen[str(path)] = len(text)
        if path in files:
            found += [(str(path), r.strip()) for r in _ASAN_RULE.split(new) if r.strip()]
        else:
            found += [(f"{path} (UBSan)", r) for r in ubsan_reports(new)]
    return found


def _headline(text):
    lines = text.splitlines()
    return next((l.strip() for l in lines if "SUMMARY:" in l or ": runtime error: " in l),
                lines[0].strip())


def _same_bug(text):
    """What two reports of one bug share: the headline without numbers, and the
    functions on top of the stack."""
    head = re.sub(r"0x[0-9a-fA-F]+|\d+", "N", _headline(text))
    return head, tuple(re.findall(r"#\d+ 0x[0-9a-f]+ in (\S+)", text)[:4])


def fail_on_sanitizer_reports(reports, what):
    """Fail the current test (or fixture teardown) if there are reports; the
    reports are printed in full in the run's summary."""
    if not reports:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    SANITIZER_REPORTS.extend((test or what, source, text) for source, text in reports)
    heads = "\n".join(f"  {source}: {_headline(text)}" for source, text in reports)
    pytest.fail(f"{len(reports)} sanitizer report(s) from {what} (in full under "
                f"'sanitizer reports' at the end):\n{heads}", pytrace=False)


def run_binary(argv, timeout=10, env=None, **kwargs):
    """subprocess.run for one of our executables or tools, stdin /dev/null
    (or input=), stdout and stderr captured as text.  With an ASan+UBSan build, a report it
    writes fails the calling test."""
    logdir = Path(tempfile.mkdtemp(prefix="mr-san-", dir="/tmp")) if SANITIZED else None
    try:
        if "input" not in kwargs:
            kwargs["stdin"] = subprocess.DEVNULL
        r = subprocess.run([str(a) for a in argv],
                           capture_output=True, text=True, timeout=timeout,
                           env=sanitizer_env(logdir, env), **kwargs)
        if SANITIZED:
            reports = _read_reports(logdir)
            reports += [(f"stderr of {Path(str(argv[0])).name} (UBSan)", t)
                        for t in ubsan_reports(r.stderr)]
            fail_on_sanitizer_reports(reports, " ".join(str(a) for a in argv))
        return r
    finally:
        if logdir:
            shutil.rmtree(logdir, ignore_errors=True)


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
    # Executables a test runs without run_binary() inherit this: their ASan/LSan
    # reports land here, and fail the run at its end.
    global _session_san_dir
    if SANITIZED:
        _session_san_dir = Path(tempfile.mkdtemp(prefix="mr-san-", dir="/tmp"))
        os.environ.update(sanitizer_env(_session_san_dir))


def pytest_report_header(config):
    if SANITIZED:
        return [f"mediarelay: ASan+UBSan build in {BUILDDIR}: any sanitizer report fails the run"]
    return []


def pytest_sessionfinish(session, exitstatus):
    if _session_san_dir is None:
        return
    # Reports from executables run without run_binary(): no test claimed them.
    SANITIZER_REPORTS.extend(("the session", source, text)
                             for source, text in _read_reports(_session_san_dir))
    shutil.rmtree(_session_san_dir, ignore_errors=True)
    if SANITIZER_REPORTS and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Every sanitizer report, one of each bug in full."""
    if not SANITIZED:
        return
    tr = terminalreporter
    if NO_LEAK_CHECK:
        tr.line(f"no leak check for {len(NO_LEAK_CHECK)} executable exit(s) "
                "(no clean drain at the end of the test):")
        for test, name, why in NO_LEAK_CHECK:
            tr.line(f"  {test}: mediarelay-{name}, {why}")
    if not SANITIZER_REPORTS:
        tr.line("sanitizer reports: none (ASan+UBSan build)")
        return
    tr.section("sanitizer reports", red=True)
    bugs = {}
    for what, source, text in SANITIZER_REPORTS:
        bugs.setdefault(_same_bug(text), []).append((what, source, text))
    for same in bugs.values():
        what, source, text = same[0]
        tr.line(f"----- {source} (from {what})")
        tr.line(text)
        if len(same) > 1:
            tr.line(f"----- and {len(same) - 1} more like it:")
            for what, source, _ in same[1:]:
                tr.line(f"      {source} (from {what})")
        tr.line("")
    tr.line(f"{len(SANITIZER_REPORTS)} sanitizer report(s), {len(bugs)} distinct: "
            "the run fails", red=True)


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


def wait_until(predicate, timeout=10.0, interval=0.1, what=None):
    """Poll predicate() every interval seconds until it returns a true value or
    timeout seconds pass; that value.  On the deadline: the last value, or,
    when `what` names the condition, an AssertionError saying it never held.

    Tests wait with this, never with a fixed sleep: the deadline is only an
    upper bound (a slow machine waits longer, a fast one does not wait)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            if what is not None:
                raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
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

    def __init__(self, config, no_redis=False, extra_nginx=None, front="nginx", workers=None,
                 builddir=None):
        # Short paths: a unix socket path must fit in 107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="mr-", dir="/tmp"))
        self.port = free_port()
        self.config = config
        self.no_redis = no_redis
        self.extra_nginx = extra_nginx
        self.front = front          # contrib/dev/stack --front
        # contrib/dev/stack --workers: none unless a test asks (the stack's
        # own default is 1); a worker costs every stack start and stop.
        self.workers = 0 if workers is None else workers
        self.builddir = builddir    # MEDIARELAY_BUILDDIR (None: BUILDDIR)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.pids = set()       # every pid seen, to reap at the end
        self.last_run = None    # CompletedProcess of the last start/stop
        self._san_seen = {}     # sanitizer logs read so far: path -> length
        self._san_pending = []  # reports read before a restart

    # running the script
    def _run(self, *args, timeout=60):
        env = dict(os.environ)
        env["MEDIARELAY_BUILDDIR"] = str(self.builddir or BUILDDIR)
        self.last_run = subprocess.run([str(STACK), *args], capture_output=True, text=True,
                                       timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        return self.last_run

    def start(self, check=True):
        # A restart clears the executables' logs: keep the UBSan reports of
        # the run before.
        self._san_pending = self.sanitizer_reports()
        for name in (*EXES, *self.worker_names(logs=True), "apache-error"):
            self._san_seen.pop(str(self.dir / f"{name}.log"), None)
        conf = self.dir / "config.in.json"
        if isinstance(self.config, (dict, list)):
            conf.write_text(json.dumps(self.config, indent=2))
        else:
            conf.write_text(self.config)
        args = ["start", "--dir", str(self.dir), "--port", str(self.port), "--config", str(conf)]
        if self.no_redis:
            args.append("--no-redis")
        if self.front != "nginx":
            args += ["--front", self.front]
        args += ["--workers", str(self.workers)]
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

    def sanitizer_reports(self):
        """[(source, text)]: the sanitizer reports its executables wrote since
        the last call (ASan/LSan in DIR/sanitizer/, UBSan in DIR/<exe>.log);
        always [] but for an ASan+UBSan build.  Leaks are reported at exit:
        call it after stop()."""
        if not SANITIZED:
            return []
        pending, self._san_pending = self._san_pending, []
        # UBSan writes to the executables' stderr: DIR/<exe>.log, or Apache's
        # error log where Apache runs them (mod_fcgid, CGI).
        return pending + _read_reports(self.dir / "sanitizer",
                                       [self.dir / f"{n}.log" for n in (*EXES, *self.worker_names(logs=True))] +
                                       [self.dir / "apache-error.log"], self._san_seen)

    # requests
    def url(self, path):
        return self.base_url + path

    def request(self, method, path, headers=None, body=None, timeout=10.0):
        return http_request(method, self.url(path), headers=headers, body=body, timeout=timeout)

    def get(self, path, headers=None, timeout=10.0):
        return self.request("GET", path, headers=headers, timeout=timeout)

    # the processes
    def pid(self, name):
        """The pid of "nginx", "redis", an executable ("proxy") or a worker
        ("worker-1"), from DIR/<name>.pid."""
        pid = int((self.dir / f"{name}.pid").read_text().strip())
        self.pids.add(pid)
        return pid

    def worker_names(self, logs=False):
        """["worker-1", …]: the media-jobs workers of the running stack, by
        their pid files DIR/worker-I.pid (logs: those that left a log
        DIR/worker-I.log, running or not)."""
        names = {f.stem for f in self.dir.glob("worker-*.pid" if not logs else "worker-*.log")}
        return sorted(names, key=lambda n: (len(n), n))

    def worker_pids(self):
        """{"worker-1": pid, …} of the running stack."""
        return {name: self.pid(name) for name in self.worker_names()}

    def log(self, name):
        """DIR/<name>.log ("proxy", "worker-1", "redis", "nginx-error", …) as text, "" if absent."""
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


def _note_unclean_exits(stack, stop_stderr):
    """Executables whose last exit skipped the leak check: killed by 'stack
    stop' after 10 s, or _exit() past server.drain_timeout_s."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    for name in (*EXES, *stack.worker_names(logs=True)):
        if re.search(rf"\b{name} \(pid \d+\) still running after .*killing it", stop_stderr):
            NO_LEAK_CHECK.append((test, name, "killed by 'stack stop'"))
        elif "drain timeout:" in stack.log(name):
            NO_LEAK_CHECK.append((test, name, "drain timeout"))


def _finish(stack, failed, check=True):
    """Stop the stack and remove its directory; its sanitizer reports fail the
    caller (check) or are returned."""
    if failed:
        print(f"\n===== stack logs ({stack.dir})")
        print(stack.logs())
    r = stack.stop()
    if r.returncode != 0:
        print("stack stop:", r.stdout, r.stderr)
    reports = stack.sanitizer_reports()
    if SANITIZED:
        _note_unclean_exits(stack, r.stderr)
    if os.environ.get("MR_KEEP_STACK"):
        print(f"kept {stack.dir}")
    else:
        shutil.rmtree(stack.dir, ignore_errors=True)
    if check:
        fail_on_sanitizer_reports(reports, f"the stack in {stack.dir}")
    return reports


@pytest.fixture
def stack(request):
    """Factory: stack(config=None, no_redis=False, extra_nginx=None, start=True,
    front="nginx", workers=None, builddir=None) -> Stack.

    config is a dict (default MINIMAL_CONFIG) or raw text; workers is the
    number of mediarelay-worker daemons (None: none);
    builddir stands in for BUILDDIR. Every stack made is stopped at
    teardown; on failure its logs are printed first."""
    made = []

    def make(config=None, no_redis=False, extra_nginx=None, start=True, front="nginx",
             workers=None, builddir=None):
        s = Stack(MINIMAL_CONFIG if config is None else config, no_redis=no_redis,
                  extra_nginx=extra_nginx, front=front, workers=workers, builddir=builddir)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    reports = []
    for s in made:
        reports += _finish(s, _failed(request), check=False)
    fail_on_sanitizer_reports(reports, "this test's stacks")


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
