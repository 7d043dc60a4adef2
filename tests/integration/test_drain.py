"""SIGTERM: an executable finishes the requests in flight, then exits cleanly."""

import os
import signal
import subprocess
import threading

from conftest import alive, make_config, reap, wait_until


def unread_by_redis(s):
    """What waits at Redis unanswered (ss: the Recv-Q of redis.sock's sockets:
    bytes not read on a connection, connections not accepted on the listener)."""
    out = subprocess.run(["ss", "-xaHn"], capture_output=True, text=True, check=True).stdout
    return sum(int(f[2]) for f in (line.split() for line in out.splitlines())
               if len(f) > 4 and f[4] == str(s.redis_sock))


def test_sigterm_drains_in_flight_request(stack):
    # A stopped Redis makes /api/health block in its PING for store.timeout_ms.
    s = stack(make_config(store={"timeout_ms": 3000}))
    assert s.get("/api/health/proxy").json["redis"] == "ok"
    redis_pid = s.pid("redis")
    proxy_pid = s.pid("proxy")
    os.kill(redis_pid, signal.SIGSTOP)
    try:
        result = {}

        def slow_request():
            try:
                result["resp"] = s.get("/api/health/proxy", timeout=20)
            except Exception as e:  # reported below
                result["error"] = e

        t = threading.Thread(target=slow_request)
        t.start()
        # In flight: its PING waits, unread, at the stopped Redis.
        wait_until(lambda: unread_by_redis(s) or not t.is_alive(),
                   what="the request's PING reaching the stopped Redis")
        assert t.is_alive(), f"the request did not block on the stopped Redis: {result}"
        os.kill(proxy_pid, signal.SIGTERM)
        t.join(20)
        assert not t.is_alive(), "the in-flight request never finished"
        assert "error" not in result, result
        resp = result["resp"]
        assert resp.status == 200, resp
        # It waited for the Redis timeout: the proxy says so in its log.
        assert resp.json["redis"] == "down", resp
        assert "unreachable" in s.log("proxy"), s.log("proxy")

        assert wait_until(lambda: not alive(proxy_pid), timeout=10), \
            "mediarelay-proxy still running 10 s after SIGTERM"
        code = reap(proxy_pid)   # we are the subreaper: its parent, when that worked
        if code is not None:
            assert code == 0, f"mediarelay-proxy exited with {code}"
        assert wait_until(lambda: "drained" in s.log("proxy"), timeout=2), s.log("proxy")

        # Nothing listens on proxy.sock any more: nginx answers 502.
        assert s.get("/api/health/proxy").status == 502
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    # The other executables are untouched.
    resp = s.get("/api/health/segment")
    assert resp.status == 200 and resp.json["executable"] == "segment", resp


def test_sigterm_when_idle_exits_promptly(stack):
    s = stack()
    pid = s.pid("segment")
    assert s.get("/api/health/segment").status == 200
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not alive(pid), timeout=5), \
        "an idle mediarelay-segment took more than 5 s to exit on SIGTERM"
    code = reap(pid)
    if code is not None:
        assert code == 0, f"mediarelay-segment exited with {code}"
    assert wait_until(lambda: "drained" in s.log("segment"), timeout=2), s.log("segment")
    assert s.get("/api/health/segment").status == 502
    assert s.get("/api/health/m3u8").status == 200
