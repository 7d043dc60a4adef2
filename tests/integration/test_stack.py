"""contrib/dev/stack itself: usage, stop, --no-redis, --extra-nginx."""

import json
import os
import subprocess

from conftest import STACK, alive, free_port, http_request, processes_mentioning


def run_stack(*args):
    return subprocess.run([str(STACK), *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_help():
    r = run_stack("--help")
    assert r.returncode == 0 and "start" in r.stdout and "stop" in r.stdout, r


def test_usage_errors(tmp_path):
    assert run_stack().returncode != 0
    assert run_stack("frobnicate").returncode != 0
    r = run_stack("start", "--dir", str(tmp_path / "x"))
    assert r.returncode != 0 and "--port" in r.stderr, r
    r = run_stack("start", "--dir", str(tmp_path / "x"), "--port", "1", "--config",
                  str(tmp_path / "missing.json"))
    assert r.returncode != 0 and "missing.json" in r.stderr, r


def test_stop_stops_everything_and_is_idempotent(stack):
    s = stack()
    pids = {name: s.pid(name) for name in ("nginx", "redis", "resolve", "m3u8", "segment", "proxy")}
    assert all(alive(p) for p in pids.values())
    r = s.stop()
    assert r.returncode == 0, r
    assert not any(alive(p) for p in pids.values()), pids
    assert processes_mentioning(str(s.dir)) == []
    assert list(s.dir.glob("*.pid")) == []
    assert s.stop().returncode == 0


def test_no_redis_config(stack):
    s = stack(no_redis=True)
    conf = json.loads((s.dir / "mediarelay.json").read_text())
    assert conf["redis"] == f"unix:{s.dir}/redis.sock"
    assert conf["secret"]
    assert not (s.dir / "redis.pid").exists()


def test_effective_config_points_at_dir_redis(shared_stack):
    conf = json.loads((shared_stack.dir / "mediarelay.json").read_text())
    assert conf["redis"] == f"unix:{shared_stack.dir}/redis.sock"
    assert shared_stack.redis_cli("ping") == "PONG"


def test_extra_nginx_server(stack):
    port = free_port()
    s = stack(extra_nginx=f"server {{ listen 127.0.0.1:{port}; location = /hello {{ return 200 'hi'; }} }}\n")
    r = http_request("GET", f"http://127.0.0.1:{port}/hello")
    assert r.status == 200 and r.body == b"hi", r
    assert s.get("/api/health").status == 200


def test_second_start_in_same_dir_refused(stack):
    s = stack()
    r = s.start(check=False)
    assert r.returncode != 0 and "already running" in r.stderr, r
    assert s.get("/api/health").status == 200


def is_test_output(path):
    """What the test driver writes beside a test in an in-tree build
    (`./configure && make check`): tests/integration/run.log, run.trs."""
    stem, ext = os.path.splitext(path)
    return ext in (".log", ".trs") and os.path.isfile(stem)


def test_makefile_lists_every_test_file():
    """The integration and fuzz files are listed one by one in Makefile.am (a
    directory in EXTRA_DIST is taken from the build tree when it exists there),
    but for the fixture folders no build makes (FIXTURE_DIRS): a file left out
    would silently miss `make distcheck`."""
    import glob
    src = os.environ["MR_SRCDIR"]
    with open(os.path.join(src, "Makefile.am")) as f:
        words = f.read().split()
    files = [p for pattern in ("tests/integration/*", "tests/fuzz/**/*", "tests/corpus/**/*",
                               "tests/data/**/*")
             for p in glob.glob(os.path.join(src, pattern), recursive=True)
             if os.path.isfile(p) and "__pycache__" not in p
             and not is_test_output(p)]

    def listed(rel):
        while rel:
            if rel in words:
                return True
            rel = os.path.dirname(rel)
        return False
    missing = [os.path.relpath(p, src) for p in files if not listed(os.path.relpath(p, src))]
    assert not missing, f"not listed in Makefile.am: {missing}"
