"""mediarelay-proxy, stats: each relayed request adds to the Redis hashes
mr:stats:total and mr:stats:{kind}:{id} (requests, bytes_up, bytes_out,
upstream_errors) and names the item in the set mr:stats:index.

In internal mode and in nginx offload mode.  Offload counts what the proxy
sees: the request, when it hands the transfer to nginx.  The bytes move in
nginx and the upstream's answer never reaches the proxy, so bytes_up,
bytes_out and upstream_errors stay 0 there (docs/proxy.md)."""

import os

import pytest

from conftest import free_port, make_config, wait_until
from proxyutil import MODES, NginxOrigin, module_stack, q, raw_get

BODY = os.urandom(300 * 1024 + 7)
FIELDS = ("requests", "bytes_up", "bytes_out", "upstream_errors")


@pytest.fixture(scope="module")
def nginx_origin(tmp_path_factory):
    return NginxOrigin(tmp_path_factory.mktemp("origin"), files={"movie.bin": BODY})


@pytest.fixture(scope="module", params=MODES)
def st(request, nginx_origin):
    closed = free_port()
    config = make_config(
        upstream={"allow_private_networks": True},
        stream={"allow_hosts": [nginx_origin.host]},
        media={"film": {"provider": "direct", "source": {"url": nginx_origin.url("/movie.bin")}},
               "gone": {"provider": "direct", "source": {"url": nginx_origin.url("/gone.bin")}},
               "down": {"provider": "direct",
                        "source": {"url": f"http://127.0.0.1:{closed}/x"}}})
    yield from module_stack(request, config, extra_nginx=nginx_origin.nginx_conf(),
                            mode=request.param)


def counters(st, key):
    lines = st.redis_cli("HGETALL", f"mr:stats:{key}").splitlines()   # field, value, ...
    d = dict(zip(lines[::2], lines[1::2]))
    return {f: int(d.get(f, 0)) for f in FIELDS}


def delta(after, before):
    return {f: after[f] - before[f] for f in FIELDS}


def settle(st, key, want_requests, before):
    """Wait until key shows want_requests more requests than before (the batch is
    written at the end of the request, possibly after the client has its bytes)."""
    return wait_until(lambda: counters(st, key)["requests"] - before["requests"] >= want_requests
                      and counters(st, key), timeout=5) or counters(st, key)


def test_media_counters(st):
    before, total0 = counters(st, "media:film"), counters(st, "total")
    got = 0
    r = raw_get(st.port, "/api/proxy/media/film")
    assert r.status == 200 and r.body == BODY, r
    got += len(r.body)
    r = raw_get(st.port, "/api/proxy/media/film", headers={"Range": "bytes=100-1123"})
    assert r.status == 206 and len(r.body) == 1024, r
    got += len(r.body)
    r = raw_get(st.port, "/api/proxy/media/film", method="HEAD")
    assert r.status == 200 and r.body == b"", r
    after = settle(st, "media:film", 3, before)
    d = delta(after, before)
    if st.offload == "nginx":
        got = 0                     # nginx moved the bytes
    assert d == {"requests": 3, "bytes_up": got, "bytes_out": got, "upstream_errors": 0}, d
    dt = delta(counters(st, "total"), total0)
    assert dt == d, (dt, d)
    assert "media:film" in st.redis_cli("SMEMBERS", "mr:stats:index").split()


def test_stream_counters(st, nginx_origin):
    key = f"stream:{nginx_origin.host}"
    before = counters(st, key)
    r = raw_get(st.port, "/stream?url=" + q(nginx_origin.url("/movie.bin")))
    assert r.status == 200 and r.body == BODY, r
    after = settle(st, key, 1, before)
    d = delta(after, before)
    n = len(BODY) if st.offload == "off" else 0
    assert d == {"requests": 1, "bytes_up": n, "bytes_out": n, "upstream_errors": 0}, d
    assert key in st.redis_cli("SMEMBERS", "mr:stats:index").split()


@pytest.mark.parametrize("media,status", [("gone", 404), ("down", 502)])
def test_upstream_errors_counted(st, media, status):
    before = counters(st, f"media:{media}")
    r = raw_get(st.port, f"/api/proxy/media/{media}")
    assert r.status == status, r
    after = settle(st, f"media:{media}", 1, before)
    d = delta(after, before)
    if st.offload == "nginx":
        # the proxy handed the request on before nginx met the error
        assert d == {"requests": 1, "bytes_up": 0, "bytes_out": 0, "upstream_errors": 0}, d
        return
    assert d["requests"] == 1 and d["upstream_errors"] == 1, d
    assert d["bytes_out"] in (0, len(r.body)), d       # the relay's own JSON error, or nothing


def test_refused_requests_are_not_relayed_items(st):
    # a forbidden /stream is not a relayed request: no item for it
    r = raw_get(st.port, "/stream?url=" + q("http://not-listed.example/x"))
    assert r.status == 403, r
    assert "stream:not-listed.example" not in st.redis_cli("SMEMBERS", "mr:stats:index").split()
