"""GET /api/health on every executable, with Redis up, absent, killed and back."""

import pytest

from conftest import ADMIN, EXES, project_version, wait_until


def check_health(resp, executable, redis):
    assert resp.status == 200, resp
    assert (resp.header("Content-Type") or "").startswith("application/json"), resp
    assert resp.json == {"status": "ok", "redis": redis, "version": project_version(),
                         "executable": executable}, resp


def test_health_goes_to_resolve(shared_stack):
    check_health(shared_stack.get("/api/health"), "resolve", "ok")


@pytest.mark.parametrize("exe", EXES)
def test_health_of_each_executable(shared_stack, exe):
    check_health(shared_stack.get(f"/api/health/{exe}"), exe, "ok")


def test_health_without_redis(stack):
    s = stack(no_redis=True)
    check_health(s.get("/api/health"), "resolve", "down")
    for exe in EXES:
        check_health(s.get(f"/api/health/{exe}"), exe, "down")


def test_redis_killed_then_back(stack):
    s = stack()
    s.redis_cli("SET", "mr:media:fromredis",
                '{"provider":"direct","source":{"url":"http://127.0.0.1:9/a.mp4"}}')
    for exe in EXES:
        check_health(s.get(f"/api/health/{exe}"), exe, "ok")

    s.kill_redis()
    # Several requests per executable, so more than one of its threads notices.
    for _ in range(3):
        check_health(s.get("/api/health"), "resolve", "down")
        for exe in EXES:
            check_health(s.get(f"/api/health/{exe}"), exe, "down")
    # Everything else answers as before: Redis is a cache, not a dependency.
    # The conf media item resolves without Redis (the URL cache falls back in-process).
    assert s.get("/api/media/intro/source").status == 200
    assert s.get("/api/media/nope/source").status == 404
    stats = s.get("/api/stats", headers=ADMIN)
    assert stats.status == 200 and stats.json["redis"] == "down", stats
    assert s.get("/api/seg/abc.ts").status == 403   # not a token

    s.start_redis()
    for path, exe in [("/api/health", "resolve")] + [(f"/api/health/{e}", e) for e in EXES]:
        ok = wait_until(lambda: (r := s.get(path)).status == 200 and r.json
                        and r.json.get("redis") == "ok", timeout=10, interval=0.2)
        assert ok, f"{path} still says redis down 10 s after Redis came back: {s.get(path)}"
        check_health(s.get(path), exe, "ok")
