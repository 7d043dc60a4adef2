"""The segment cache (issue 4): segments, keys and parts are fetched from the
upstream once and served from Redis; clients that come while a fill runs get
the bytes as they arrive; a fill that breaks is never served as complete;
Range, HEAD and conditionals are answered from the cache; no-store and
oversized objects are relayed uncached; channels may drop the query from
the cache key; without Redis everything is still served."""

import hashlib
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import SECRET, Stack, _finish, assert_json_error, make_config, wait_until
from proxyutil import (ScriptedOrigin, StreamClient, get_until, held, module_stack, raw_get,
                       trickle)
from test_hls_play import mint

KiB = 1024
MiB = 1024 * KiB


def body_of(n, seed):
    """n bytes that differ per seed (so a mixed-up body cannot pass)."""
    block = hashlib.sha256(seed.encode()).digest() * 2048      # 64 KiB
    return (block * (n // len(block) + 1))[:n]


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()
    yield o
    o.close()


def config(origin, **hls):
    """The stack of these tests: the Redis cache alone (the web server keeps
    nothing, hls.edge_cache_s 0) unless hls says otherwise."""
    return make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        hls={"segment_cache_max_bytes": 4 * MiB, "edge_cache_s": 0, **hls},
        channels={"cam": {"url": origin.url("/cam/index.m3u8")},
                  "rot": {"url": origin.url("/rot/index.m3u8"), "cache_ignore_query": True},
                  "slow": {"url": origin.url("/slow/index.m3u8")},
                  "slow2": {"url": origin.url("/slow2/index.m3u8")}})


@pytest.fixture(scope="module")
def st(request, origin):
    yield from module_stack(request, config(origin))


def seg_path(origin, path, scope="c:cam", ext=".ts"):
    tok = mint(b"s", scope, origin.url(path), int(time.time()) + 600)
    return f"/api/seg/{tok}{ext}"


def static(origin, path, data, headers=None):
    """A route that answers data (with an ETag and Last-Modified) and counts."""
    def fn(h, seen):
        hdrs = {"Content-Type": "video/mp2t", "ETag": '"v1"',
                "Last-Modified": "Wed, 21 Oct 2026 07:28:00 GMT", **(headers or {})}
        h.answer(200, hdrs, data)
    origin.route(path, fn)


def test_second_request_is_a_hit(st, origin):
    data = body_of(300 * KiB, "a")
    static(origin, "/a.ts", data)
    p = seg_path(origin, "/a.ts")
    r1 = raw_get(st.port, p)
    r2 = raw_get(st.port, p)
    assert (r1.status, r2.status) == (200, 200)
    assert r1.body == data and r2.body == data
    assert r1.headers["x-cache"] == "MISS" and r2.headers["x-cache"] == "HIT"
    assert r2.headers["content-length"] == str(len(data))
    assert r2.headers["content-type"] == "video/mp2t"
    assert r2.headers["etag"] == '"v1"'
    assert r2.headers["accept-ranges"] == "bytes"
    assert len(origin.requests_to("/a.ts")) == 1
    # Another token for the same upstream URL (another scope, later expiry):
    # the same object.
    r3 = raw_get(st.port, seg_path(origin, "/a.ts", scope="c:rot"))
    assert r3.body == data and r3.headers["x-cache"] == "HIT"
    assert len(origin.requests_to("/a.ts")) == 1


def test_ranges_heads_and_conditionals_from_the_cache(st, origin):
    data = body_of(200 * KiB, "b")
    static(origin, "/b.ts", data)
    p = seg_path(origin, "/b.ts")
    assert raw_get(st.port, p).status == 200
    r = raw_get(st.port, p, {"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = raw_get(st.port, p, {"Range": "bytes=-500"})
    assert r.status == 206 and r.body == data[-500:]
    r = raw_get(st.port, p, {"Range": f"bytes={len(data) - 10}-"})
    assert r.status == 206 and r.body == data[-10:]
    r = raw_get(st.port, p, {"Range": f"bytes=0-{10 * len(data)}"})
    assert r.status == 206 and r.body == data
    r = raw_get(st.port, p, {"Range": f"bytes={len(data)}-"})
    assert r.status == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    # Several ranges: the whole object (allowed by RFC 9110).
    r = raw_get(st.port, p, {"Range": "bytes=0-1,5-6"})
    assert r.status == 200 and r.body == data
    # If-Range with another validator: the whole object.
    r = raw_get(st.port, p, {"Range": "bytes=0-9", "If-Range": '"v0"'})
    assert r.status == 200 and r.body == data
    r = raw_get(st.port, p, {"Range": "bytes=0-9", "If-Range": '"v1"'})
    assert r.status == 206 and r.body == data[:10]
    r = raw_get(st.port, p, method="HEAD")
    assert r.status == 200 and r.body == b"" and r.headers["content-length"] == str(len(data))
    assert r.headers["x-cache"] == "HIT"
    r = raw_get(st.port, p, {"If-None-Match": 'W/"v1"'})
    assert r.status == 304 and r.body == b""
    r = raw_get(st.port, p, {"If-Modified-Since": "Wed, 21 Oct 2026 07:28:00 GMT"})
    assert r.status == 304
    r = raw_get(st.port, p, {"If-Modified-Since": "Tue, 20 Oct 2026 07:28:00 GMT"})
    assert r.status == 200 and r.body == data
    assert len(origin.requests_to("/b.ts")) == 1


def test_an_empty_segment_from_the_cache_and_its_suffix_range(st, origin):
    static(origin, "/empty.ts", b"")
    p = seg_path(origin, "/empty.ts")
    # Regression (found by fuzz_range): the last N bytes of an empty object
    # were planned as bytes 0 to -1, a 206 with "Content-Range: bytes 0--1/0".
    r = raw_get(st.port, p, {"Range": "bytes=-5"})
    assert (r.status, r.body, r.headers["x-cache"]) == (200, b"", "MISS")
    assert r.headers["content-length"] == "0" and "content-range" not in r.headers
    # Regression: a cached empty object, [0, -1], was read "to the end" as
    # if its length were unknown, found its bytes missing, and the answer
    # was aborted (nginx: "upstream sent unsupported FastCGI protocol").
    for headers in ({}, {"Range": "bytes=-5"}):
        r = raw_get(st.port, p, headers)
        assert (r.status, r.body, r.headers["x-cache"]) == (200, b"", "HIT")
        assert r.headers["content-length"] == "0" and "content-range" not in r.headers
    r = raw_get(st.port, p, {"Range": "bytes=0-"})
    assert r.status == 416 and r.headers["content-range"] == "bytes */0"
    assert len(origin.requests_to("/empty.ts")) == 1


def test_a_range_that_misses_fills_the_cache(st, origin):
    data = body_of(150 * KiB, "c")
    static(origin, "/c.ts", data)
    p = seg_path(origin, "/c.ts")
    r = raw_get(st.port, p, {"Range": "bytes=1000-1999"})
    assert r.status == 206 and r.body == data[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    r = raw_get(st.port, p, {"Range": "bytes=5000-"})
    assert r.status == 206 and r.body == data[5000:] and r.headers["x-cache"] == "HIT"
    assert len(origin.requests_to("/c.ts")) == 1
    # The upstream saw no Range: the object is fetched whole.
    assert origin.requests_to("/c.ts")[0].headers.get("Range") is None


def test_no_store_and_private_are_never_cached(st, origin):
    for path, cc in (("/ns.ts", "no-store"), ("/pv.ts", "private, max-age=60")):
        data = body_of(50 * KiB, path)
        static(origin, path, data, {"Cache-Control": cc})
        p = seg_path(origin, path)
        for _ in range(3):
            r = raw_get(st.port, p)
            assert r.status == 200 and r.body == data
            assert r.headers.get("x-cache") != "HIT"
        assert len(origin.requests_to(path)) >= 3


def test_objects_over_the_cap_are_relayed_uncached(st, origin):
    data = body_of(5 * MiB, "big")
    static(origin, "/big.ts", data)
    p = seg_path(origin, "/big.ts")
    for _ in range(2):
        r = raw_get(st.port, p, timeout=30)
        assert r.status == 200 and r.body == data and r.headers.get("x-cache") != "HIT"
    assert len(origin.requests_to("/big.ts")) >= 2
    # The same without a Content-Length: the fill notices past the cap.
    def chunked(h, seen):
        h.send_response(200)
        h.send_header("Content-Type", "video/mp2t")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()
        h.close_connection = True
    origin.route("/bigc.ts", chunked)
    p = seg_path(origin, "/bigc.ts")
    r = raw_get(st.port, p, timeout=30)
    assert r.status == 200 and r.body == data
    r = raw_get(st.port, p, timeout=30)
    assert r.status == 200 and r.body == data and r.headers.get("x-cache") != "HIT"


def test_upstream_errors_keep_their_status_and_are_not_cached(st, origin):
    n = {"k": 0}
    def flaky(h, seen):
        n["k"] += 1
        if n["k"] == 1:
            h.answer(404, {"Content-Type": "text/plain"}, b"not yet\n")
        else:
            h.answer(200, {"Content-Type": "video/mp2t"}, b"x" * 1000)
    origin.route("/late.ts", flaky)
    p = seg_path(origin, "/late.ts")
    assert_json_error(st.get(p), 404, "upstream_status")
    assert len(origin.requests_to("/late.ts")) == 1     # passed on, not asked twice
    r = raw_get(st.port, p)
    assert r.status == 200 and r.body == b"x" * 1000
    # A 403 is asked once more without Referer/Origin (the relay's rule), then
    # passed on.
    origin.route("/deny.ts", lambda h, seen: h.answer(403, {"Content-Type": "text/plain"}, b"no"))
    assert_json_error(st.get(seg_path(origin, "/deny.ts")), 403, "upstream_status")


def test_collapsed_forwarding_serves_waiters_as_bytes_arrive(st, origin):
    """20 clients of one segment while its fill runs: one upstream fetch, and
    every client has bytes while the origin is still holding the rest."""
    chunk = body_of(64 * KiB, "slow")
    count = 20
    release = threading.Event()
    origin.route("/slow.ts", lambda h, seen: held(h, seen, chunk, count, 10, release))
    p = seg_path(origin, "/slow.ts")
    try:
        first = StreamClient(st.port, p, sha=True)
        first.start()
        wait_until(lambda: first.nbytes, what="the first client's first bytes")
        clients = [StreamClient(st.port, p, sha=True) for _ in range(19)]
        for c in clients:
            c.start()
        # Served while the bytes arrive: every client has some before the
        # origin sends the second half.
        wait_until(lambda: all(c.nbytes for c in clients) or any(c.error for c in clients),
                   what="bytes to every waiting client while the fill runs")
    finally:
        release.set()
    for c in [first] + clients:
        c.join(30)
    want = hashlib.sha256(chunk * count).hexdigest()
    for c in [first] + clients:
        assert c.error is None, c.error
        assert c.status == 200
        assert c.hash.hexdigest() == want
    assert len(origin.requests_to("/slow.ts")) == 1
    assert any(b"X-Cache: WAIT" in c.head for c in clients)


def test_a_fill_that_breaks_is_never_served_complete(st, origin):
    chunk = body_of(64 * KiB, "broken")
    state = {"n": 0}
    def breaks_once(h, seen):
        state["n"] += 1
        if state["n"] == 1:
            # Says 10 chunks, sends 5, then (once the follower is there) closes.
            held(h, seen, chunk, 10, 5, release, close_early=True)
        else:
            h.answer(200, {"Content-Type": "video/mp2t"}, chunk * 10)
    release = threading.Event()
    origin.route("/brk.ts", breaks_once)
    p = seg_path(origin, "/brk.ts")
    try:
        filler = StreamClient(st.port, p)
        filler.start()
        wait_until(lambda: filler.nbytes, what="the filler's first bytes")
        follower = StreamClient(st.port, p)
        follower.start()
        wait_until(lambda: follower.nbytes or follower.error,
                   what="the follower's first bytes, from the running fill")
    finally:
        release.set()
    filler.join(30)
    follower.join(30)
    for c in (filler, follower):
        assert c.status == 200
        assert c.nbytes < len(chunk) * 10        # broken off, never a clean end
    r = raw_get(st.port, p)
    assert r.status == 200 and r.complete and r.body == chunk * 10
    assert r.headers["x-cache"] == "MISS"
    assert len(origin.requests_to("/brk.ts")) == 2
    r = raw_get(st.port, p)
    assert r.headers["x-cache"] == "HIT" and r.body == chunk * 10


def test_a_filler_whose_client_leaves_finishes_for_the_others(st, origin):
    chunk = body_of(64 * KiB, "leave")
    def slow(h, seen):
        trickle(h, seen, chunk, 10, 0.1)
    origin.route("/leave.ts", slow)
    p = seg_path(origin, "/leave.ts")
    from proxyutil import read_some_then_close
    assert read_some_then_close(st.port, p, 1000) == 200
    key = "mr:seg:" + hashlib.sha256(origin.url("/leave.ts").encode()).hexdigest()[:32]
    wait_until(lambda: st.redis_cli("HGET", key, "st").strip() == "done",
               what="the fill finished in Redis after its client left")
    r = raw_get(st.port, p)
    assert r.status == 200 and r.body == chunk * 10
    assert r.headers["x-cache"] == "HIT"
    assert len(origin.requests_to("/leave.ts")) == 1


def test_channel_may_ignore_the_query(st, origin):
    data = body_of(20 * KiB, "rot")
    static(origin, "/rot/s1.ts", data)
    a = raw_get(st.port, seg_path(origin, "/rot/s1.ts?tok=1", scope="c:rot"))
    b = raw_get(st.port, seg_path(origin, "/rot/s1.ts?tok=2", scope="c:rot"))
    assert a.body == data and b.body == data and b.headers["x-cache"] == "HIT"
    assert len(origin.requests_to("/rot/s1.ts")) == 1
    # Other channels keep the query in the key.
    static(origin, "/cam/s1.ts", data)
    raw_get(st.port, seg_path(origin, "/cam/s1.ts?tok=1"))
    b = raw_get(st.port, seg_path(origin, "/cam/s1.ts?tok=2"))
    assert b.headers["x-cache"] == "MISS"
    assert len(origin.requests_to("/cam/s1.ts")) == 2


def test_cache_keys_live_in_redis_with_a_ttl(st, origin):
    data = body_of(10 * KiB, "ttl")
    static(origin, "/ttl.ts", data)
    raw_get(st.port, seg_path(origin, "/ttl.ts"))
    key = "mr:seg:" + hashlib.sha256(origin.url("/ttl.ts").encode()).hexdigest()[:32]
    assert st.redis_cli("HGET", key, "st").strip() == "done"
    ttl = int(st.redis_cli("TTL", key + ":b").strip())
    assert 590 <= ttl <= 600
    assert int(st.redis_cli("STRLEN", key + ":b").strip()) == len(data)
    assert st.redis_cli("EXISTS", "mr:lock:seg:" + key[7:]).strip() == "0"


def test_without_redis_segments_are_relayed(request, origin):
    data = body_of(30 * KiB, "noredis")
    static(origin, "/nr.ts", data)
    s = Stack(config(origin), no_redis=True)
    try:
        s.start()
        p = seg_path(origin, "/nr.ts")
        for _ in range(2):
            r = raw_get(s.port, p)
            assert r.status == 200 and r.body == data and "x-cache" not in r.headers
        # Playlists are cached in the process instead (its fallback cache).
        origin.route("/rot/index.m3u8", lambda h, seen: h.answer(
            200, {"Content-Type": "application/vnd.apple.mpegurl"}, live_playlist(0, target=4)))
        a = raw_get(s.port, "/live/rot.m3u8")
        b = raw_get(s.port, "/live/rot.m3u8")
        assert (a.status, b.status) == (200, 200) and a.body == b.body
        assert b.headers["x-cache"] == "HIT"
        assert len(origin.requests_to("/rot/index.m3u8")) == 1
    finally:
        _finish(s, False)


def test_cache_off(request, origin):
    data = body_of(30 * KiB, "off")
    static(origin, "/off.ts", data)
    s = Stack(config(origin, segment_cache_max_bytes=0))
    try:
        s.start()
        p = seg_path(origin, "/off.ts")
        for _ in range(2):
            r = raw_get(s.port, p)
            assert r.status == 200 and r.body == data and "x-cache" not in r.headers
        assert len(origin.requests_to("/off.ts")) == 2
    finally:
        _finish(s, False)


# --- playlists -----------------------------------------------------------------------

def live_playlist(seq, n=4, target=2):
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{seq}"]
    for i in range(seq, seq + n):
        lines += [f"#EXTINF:{target}.0,", f"s{i}.ts"]
    return "\n".join(lines) + "\n"


def test_live_playlist_is_fetched_once_per_refresh(st, origin):
    """30 viewers at once cost one upstream fetch; the copy is fresh for half
    the target duration (2 s -> 1 s), then one request refreshes it."""
    state = {"seq": 0}
    def pl(h, seen):
        time.sleep(0.3)     # a slow origin: the others must wait, not fetch
        h.answer(200, {"Content-Type": "application/vnd.apple.mpegurl"},
                 live_playlist(state["seq"]))
    origin.route("/cam/index.m3u8", pl)
    results = []
    def get():
        results.append(raw_get(st.port, "/live/cam.m3u8"))
    threads = [threading.Thread(target=get) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 30
    assert all(r.status == 200 for r in results)
    assert len({r.body for r in results}) == 1
    assert b"/api/seg/" in results[0].body and b"s0.ts" not in results[0].body
    assert len(origin.requests_to("/cam/index.m3u8")) == 1
    assert {r.headers["x-cache"] for r in results} <= {"MISS", "WAIT", "HIT"}
    assert raw_get(st.port, "/live/cam.m3u8").headers["x-cache"] == "HIT"
    # After half the target duration: refreshed, by one request (until then
    # every request is answered from the copy).
    state["seq"] = 1
    r = get_until(st.port, "/live/cam.m3u8", lambda r: r.headers.get("x-cache") != "HIT",
                  what="the live copy going stale")
    assert r.status == 200 and r.headers["x-cache"] == "MISS"
    assert r.body != results[0].body
    assert len(origin.requests_to("/cam/index.m3u8")) == 2


def pl_locks(st):
    """The playlist cache's locks in Redis now (mr:lock:pl:{h})."""
    out = st.redis_cli("--scan", "--pattern", "mr:lock:pl:*")
    return set(out.split())


OLD_LOCK_S = 10.0       # the fixed TTL the playlist lock had


def test_a_playlist_fetch_slower_than_the_old_lock_keeps_it(st, origin):
    """The playlist lock lives as long as the fetch may (upstream.fetch_timeout_ms,
    15 s, plus a margin), holds its owner's token, and is released only by its
    owner. Two origins hold their playlist past the old lock's 10 s: /slow
    with 10 viewers and no copy yet (they wait for the one fetch), /slow2
    being refreshed while viewers get the stale copy. Each costs one upstream
    fetch; and /slow's fetch, finding on its release a lock that is not its
    own (as if its own had lapsed and another request had taken it), leaves
    that lock alone. Before: a "1" for 10 s, deleted with DEL -- the waiters
    each fetched at 10 s, a viewer of /slow2 started a second refresh, and
    the late DEL removed the other request's lock."""
    held, done = threading.Event(), threading.Event()
    counts = {"slow": 0, "slow2": 0}

    def route(name):
        def fn(h, seen):
            counts[name] += 1
            # The first /slow2 fetch makes its copy at once; every other one
            # is held until the test has seen the old lock's TTL go by.
            if name == "slow" or counts[name] > 1:
                held.wait(14)       # within upstream.fetch_timeout_ms
            h.answer(200, {"Content-Type": "application/vnd.apple.mpegurl"},
                     live_playlist(counts[name], target=1))
        return fn
    origin.route("/slow/index.m3u8", route("slow"))
    origin.route("/slow2/index.m3u8", route("slow2"))
    results = []

    def view(path, loop):
        while True:
            results.append((path, raw_get(st.port, path, timeout=30)))
            if not loop or done.wait(0.1):
                return

    try:
        # /slow2 has a copy, fresh for half its target duration (500 ms);
        # its viewers come back until the test is done: once it is stale,
        # one of them refreshes it (held), the other gets the stale copy.
        first = raw_get(st.port, "/live/slow2.m3u8")
        assert first.status == 200 and first.headers["x-cache"] == "MISS", first
        assert not pl_locks(st)
        viewers = [threading.Thread(target=view, args=("/live/slow.m3u8", False))
                   for _ in range(10)]
        for t in viewers:
            t.start()
        assert wait_until(lambda: len(pl_locks(st)) == 1, timeout=10)
        (slow_lock,) = pl_locks(st)
        more = [threading.Thread(target=view, args=("/live/slow2.m3u8", True))
                for _ in range(2)]
        for t in more:
            t.start()
        viewers += more
        assert wait_until(lambda: len(pl_locks(st)) == 2, timeout=10)
        (slow2_lock,) = pl_locks(st) - {slow_lock}
        owner = st.redis_cli("GET", slow_lock)
        assert re.fullmatch(r"[0-9a-f]{32}", owner), owner
        pttl0 = int(st.redis_cli("PTTL", slow_lock))
        assert pttl0 > OLD_LOCK_S * 1000

        # Until Redis says the lock has lived past the old TTL (sooner if a
        # second fetch starts): both locks are still there, and each playlist
        # was asked for once per refresh.
        wait_until(lambda: counts != {"slow": 1, "slow2": 2}
                   or int(st.redis_cli("PTTL", slow_lock)) < pttl0 - (OLD_LOCK_S + 0.5) * 1000,
                   timeout=3 * OLD_LOCK_S, what="the old lock's TTL going by")
        assert counts == {"slow": 1, "slow2": 2}, counts
        assert st.redis_cli("GET", slow_lock) == owner
        assert st.redis_cli("EXISTS", slow2_lock) == "1"

        # As if /slow's lock had lapsed and another request had taken it.
        st.redis_cli("SET", slow_lock, "another-request", "PX", "60000")
        held.set()
        assert wait_until(lambda: st.redis_cli("EXISTS", slow2_lock) == "0", timeout=10)
        assert wait_until(lambda: sum(p == "/live/slow.m3u8" for p, _ in results) == 10,
                          timeout=20)
        done.set()
        for t in viewers:
            t.join(30)

        assert counts == {"slow": 1, "slow2": 2}, counts
        assert st.redis_cli("GET", slow_lock) == "another-request"
        slow = [r for p, r in results if p == "/live/slow.m3u8"]
        assert all(r.status == 200 for r in slow), slow
        assert len({r.body for r in slow}) == 1
        assert {r.headers["x-cache"] for r in slow} <= {"MISS", "WAIT"}
        slow2 = [r for p, r in results if p == "/live/slow2.m3u8"]
        assert all(r.status == 200 for r in slow2), slow2
        assert "STALE" in {r.headers["x-cache"] for r in slow2}
    finally:
        held.set()
        done.set()
        for key in pl_locks(st):
            st.redis_cli("DEL", key)


def test_vod_playlists_are_cached_longer_and_errors_not_at_all(st, origin):
    def vod(h, seen):
        h.answer(200, {"Content-Type": "application/vnd.apple.mpegurl"},
                 live_playlist(0, target=1) + "#EXT-X-ENDLIST\n")
    origin.route("/vod/index.m3u8", vod)
    # A live playlist of the same target duration, cached beside it: once
    # its copy has gone stale, the VOD one must still be fresh.
    origin.route("/vodlive/index.m3u8", lambda h, seen: h.answer(
        200, {"Content-Type": "application/vnd.apple.mpegurl"}, live_playlist(0, target=1)))
    p = "/api/m3u8/" + mint(b"p", "c:cam", origin.url("/vod/index.m3u8"),
                            int(time.time()) + 600) + ".m3u8"
    live = "/api/m3u8/" + mint(b"p", "c:cam", origin.url("/vodlive/index.m3u8"),
                               int(time.time()) + 600) + ".m3u8"
    assert raw_get(st.port, p).headers["x-cache"] == "MISS"
    assert raw_get(st.port, live).headers["x-cache"] == "MISS"
    wait_until(lambda: raw_get(st.port, live).headers["x-cache"] == "MISS",
               what="the live playlist's copy going stale")
    assert raw_get(st.port, p).headers["x-cache"] == "HIT"
    assert len(origin.requests_to("/vod/index.m3u8")) == 1
    n = {"k": 0}
    def flaky(h, seen):
        n["k"] += 1
        if n["k"] == 1:
            h.answer(503, {"Content-Type": "text/plain"}, b"busy\n")
        else:
            h.answer(200, {"Content-Type": "application/vnd.apple.mpegurl"}, live_playlist(0))
    origin.route("/flaky/index.m3u8", flaky)
    p = "/api/m3u8/" + mint(b"p", "c:cam", origin.url("/flaky/index.m3u8"),
                            int(time.time()) + 600) + ".m3u8"
    assert_json_error(st.get(p), 503, "upstream_status")
    assert raw_get(st.port, p).status == 200


def live_origin(tmp_path, seconds=30):
    """A ScriptedOrigin with a live channel at /tv/index.m3u8: 1 s TS segments
    (made by ffmpeg, one continuous encode), a 4-segment window that moves on
    every second, each segment a URL of its own (/tv/live{sequence}.ts)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=160x90:rate=25", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=44100", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
                    "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
                    "-hls_segment_filename", str(tmp_path / "seg%02d.ts"),
                    str(tmp_path / "src.m3u8")], check=True, timeout=120)
    segs = sorted(tmp_path.glob("seg*.ts"))
    o = ScriptedOrigin()
    t0 = time.monotonic()

    def playlist(h, seen):
        seq = min(int(time.monotonic() - t0), len(segs) - 4)
        seen.seq = seq
        body = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1",
                f"#EXT-X-MEDIA-SEQUENCE:{seq}"]
        for i in range(seq, seq + 4):
            body += ["#EXTINF:1.000,", f"live{i}.ts"]
        h.answer(200, {"Content-Type": "application/vnd.apple.mpegurl"}, "\n".join(body) + "\n")

    def segment(h, seen):
        i = int(seen.path.rsplit("live", 1)[1].split(".")[0])
        h.answer(200, {"Content-Type": "video/mp2t"}, segs[i].read_bytes())

    o.route("/tv/index.m3u8", playlist)
    o.route("/tv/", segment)
    o.t0 = t0
    return o


def segment_fetches(o):
    counts = {}
    for seen in o.seen:
        if seen.path.startswith("/tv/live"):
            counts[seen.path] = counts.get(seen.path, 0) + 1
    return counts


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")
def test_twenty_ffmpeg_viewers_cost_the_origin_one_fetch_per_segment(request, tmp_path):
    """A live channel (1 s segments, a 4-segment window that moves every
    second) watched by 20 ffmpeg processes at once through the relay: the
    origin serves every segment exactly once."""
    o = live_origin(tmp_path)
    cfg = make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                      channels={"tv": {"url": o.url("/tv/index.m3u8")}})
    s = Stack(cfg)
    failed = True
    try:
        s.start()
        procs = [subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-i",
                                   s.url("/live/tv.m3u8"), "-map", "0", "-c", "copy",
                                   "-t", "6", "-f", "null", "-"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(20)]
        for p in procs:
            _, err = p.communicate(timeout=90)
            assert p.returncode == 0, err.decode(errors="replace")[-2000:]
        counts = segment_fetches(o)
        assert len(counts) >= 5, counts
        assert all(n == 1 for n in counts.values()), counts
        # Playlist fetches: at most about two per window the origin served
        # (the copy is fresh for half the target duration), not 20 viewers'
        # worth of refreshes.
        per_window = {}
        for seen in o.requests_to("/tv/index.m3u8"):
            per_window[seen.seq] = per_window.get(seen.seq, 0) + 1
        assert max(per_window.values()) <= 3, per_window
        failed = False
    finally:
        _finish(s, failed)
        o.close()


# --- the edge cache (contrib/nginx's fastcgi_cache in front of /api/seg/) -----------

@pytest.fixture(scope="module")
def edge(request, origin):
    yield from module_stack(request, config(origin, edge_cache_s=600))


def segment_requests(st):
    return len([l for l in st.log("segment").splitlines() if " GET /api/seg/" in l])


def test_edge_keeps_whole_segments_and_serves_them_itself(edge, origin):
    data = body_of(120 * KiB, "edge")
    static(origin, "/e1.ts", data)
    p = seg_path(origin, "/e1.ts")
    r1 = raw_get(edge.port, p)
    assert r1.status == 200 and r1.body == data and r1.headers["x-cache-edge"] == "MISS"
    n = segment_requests(edge)
    r2 = raw_get(edge.port, p)
    assert r2.status == 200 and r2.body == data and r2.headers["x-cache-edge"] == "HIT"
    assert "x-accel-expires" not in r2.headers and "x-accel-buffering" not in r2.headers
    r = raw_get(edge.port, p, {"Range": "bytes=10-19"})
    assert r.status == 206 and r.body == data[10:20] and r.headers["x-cache-edge"] == "HIT"
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = raw_get(edge.port, p, {"If-None-Match": '"v1"'})
    assert r.status == 304
    r = raw_get(edge.port, p, method="HEAD")
    assert r.status == 200 and r.headers["content-length"] == str(len(data))
    assert segment_requests(edge) == n             # none of these reached the relay
    assert len(origin.requests_to("/e1.ts")) == 1


def test_edge_keeps_no_ranges_errors_or_broken_fills(edge, origin):
    data = body_of(50 * KiB, "edge2")
    static(origin, "/e2.ts", data)
    p = seg_path(origin, "/e2.ts")
    # A range that misses at the edge: the relay answers it (its Range comes
    # through although nginx blanks it for the cache) and fills Redis with
    # the whole object; nginx keeps the next whole answer.
    r = raw_get(edge.port, p, {"Range": "bytes=0-9"})
    assert r.status == 206 and r.body == data[:10]
    r = raw_get(edge.port, p)
    assert r.body == data and r.headers["x-cache-edge"] == "MISS" and r.headers["x-cache"] == "HIT"
    r = raw_get(edge.port, p, {"Range": "bytes=5-14"})
    assert r.status == 206 and r.body == data[5:15] and r.headers["x-cache-edge"] == "HIT"
    assert len(origin.requests_to("/e2.ts")) == 1
    # An error status is not kept.
    n = {"k": 0}
    def flaky(h, seen):
        n["k"] += 1
        if n["k"] == 1:
            h.answer(404, {"Content-Type": "text/plain", "Cache-Control": "max-age=3600"},
                     b"not yet\n")
        else:
            h.answer(200, {"Content-Type": "video/mp2t"}, data)
    origin.route("/e3.ts", flaky)
    p = seg_path(origin, "/e3.ts")
    assert raw_get(edge.port, p).status == 404
    r = raw_get(edge.port, p)
    assert r.status == 200 and r.body == data
    # A fill that breaks is not kept either: the next answer is whole.
    chunk = body_of(64 * KiB, "edge-broken")
    state = {"n": 0}
    def breaks_once(h, seen):
        state["n"] += 1
        if state["n"] == 1:
            h.send_response(200)
            h.send_header("Content-Type", "video/mp2t")
            h.send_header("Content-Length", str(len(chunk) * 10))
            h.end_headers()
            h.wfile.write(chunk * 3)
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
        else:
            h.answer(200, {"Content-Type": "video/mp2t"}, chunk * 10)
    origin.route("/e4.ts", breaks_once)
    p = seg_path(origin, "/e4.ts")
    # The answer breaks off; nginx, which buffers what it keeps, may have
    # sent nothing at all by then.  Either way, never a clean end.
    try:
        r = raw_get(edge.port, p)
        assert r.status == 200 and not r.complete
    except AssertionError as e:
        assert "no complete header block in b''" in str(e), e
    for _ in range(2):
        r = raw_get(edge.port, p)
        assert r.status == 200 and r.complete and r.body == chunk * 10


def test_edge_never_outlives_the_relay_url(edge, origin):
    data = body_of(10 * KiB, "edge-exp")
    static(origin, "/e5.ts", data)
    tok = mint(b"s", "c:cam", origin.url("/e5.ts"), int(time.time()) + 3)
    p = f"/api/seg/{tok}.ts"
    assert raw_get(edge.port, p).status == 200
    assert raw_get(edge.port, p).headers["x-cache-edge"] == "HIT"
    # Until the token expires the edge may serve its copy; then never again.
    r = wait_until(lambda: (lambda r: r if r.status != 200 else None)(edge.get(p)),
                   timeout=15, what="the edge refusing the expired URL")
    assert_json_error(r, 403, "token_expired")


def test_edge_still_passes_bytes_on_as_they_arrive(edge, origin):
    """The answers nginx keeps are buffered, yet a slow fill reaches its
    clients as it arrives: first bytes long before the last."""
    chunk = body_of(64 * KiB, "edge-slow")
    release = threading.Event()
    origin.route("/e6.ts", lambda h, seen: held(h, seen, chunk, 20, 10, release))
    p = seg_path(origin, "/e6.ts")
    try:
        first = StreamClient(edge.port, p, sha=True)
        first.start()
        wait_until(lambda: first.nbytes or first.error, what="the first client's first bytes")
        second = StreamClient(edge.port, p, sha=True)
        second.start()
        wait_until(lambda: second.nbytes or second.error,
                   what="the second client's first bytes while the fill runs")
    finally:
        release.set()
    first.join(30)
    second.join(30)
    want = hashlib.sha256(chunk * 20).hexdigest()
    for c in (first, second):
        assert c.error is None and c.status == 200 and c.hash.hexdigest() == want
    assert len(origin.requests_to("/e6.ts")) == 1
