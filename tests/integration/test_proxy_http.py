"""mediarelay-proxy, HTTP semantics: Range, 416, HEAD, conditionals, headers passed
back and dropped, CORS, upstream error statuses, a 256 MiB file end to end.

Every test runs three times (proxyutil.MODES): with the proxy carrying the
bytes through libcurl, with it splicing them from the upstream's socket, and
in nginx offload mode (the bytes move in contrib/nginx's /_mediarelay_offload).
Where offload departs by design (docs/proxy.md), the test says so.

The origin is an nginx server block of the stack's own nginx, serving files
generated here (its Range, ETag, Last-Modified and 304 are the reference),
plus a scripted origin for headers nginx would not send.
"""

import hashlib
import http.client
import os
import time

import pytest

from conftest import assert_json_error, make_config, wait_until
from proxyutil import MODES, MiB, NginxOrigin, ScriptedOrigin, module_stack, q, raw_get, spliced

SMALL = os.urandom(100 * 1024)
MOVIE = os.urandom(50 * 1024)
BIG_SIZE = 256 * MiB


@pytest.fixture(scope="module")
def nginx_origin(tmp_path_factory):
    return NginxOrigin(tmp_path_factory.mktemp("origin"),
                       files={"small.bin": SMALL, "cc/movie.mp4": MOVIE},
                       big_files={"big.bin": BIG_SIZE})


@pytest.fixture(scope="module")
def py_origin():
    o = ScriptedOrigin()

    def hop_headers(h, seen):
        h.send_response(200)
        for k, v in [("Content-Type", "video/mp4"), ("Content-Length", "5"),
                     ("Set-Cookie", "sid=origin-secret; Path=/; HttpOnly"),
                     ("Set-Cookie", "tracking=1"),
                     ("Keep-Alive", "timeout=5, max=100"),
                     ("Connection", "keep-alive, X-Hop"),
                     ("X-Hop", "hop-by-hop by Connection"),
                     ("Proxy-Authenticate", "Basic realm=origin"),
                     ("Trailer", "X-Checksum"),
                     ("Upgrade", "h2c"),
                     ("Access-Control-Allow-Origin", "https://evil.example"),
                     ("Access-Control-Allow-Credentials", "true"),
                     ("Access-Control-Expose-Headers", "X-Origin-Secret"),
                     ("Strict-Transport-Security", "max-age=1"),
                     ("X-Origin-Secret", "s3cr3t"),
                     ("Server", "evil-origin/6.6"),
                     ("Expires", "Thu, 01 Jan 2037 00:00:00 GMT"),
                     ("Cache-Control", "private, max-age=30"),
                     ("ETag", '"origin-etag-1"'),
                     ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
                     ("Content-Disposition", 'inline; filename="clip.mp4"')]:
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.send_raw(b"hello")

    o.route("/hop-headers", hop_headers)
    for code in (500, 503, 410):
        o.route(f"/status/{code}", lambda h, seen, code=code: h.answer(
            code, {"Content-Type": "text/html"}, b"<html>origin error page</html>"))
    yield o
    o.close()


@pytest.fixture(scope="module", params=MODES)
def st(request, nginx_origin, py_origin):
    n, p = nginx_origin, py_origin
    media = {
        "small": n.url("/small.bin"),
        "movie": n.url("/cc/movie.mp4"),
        "big": n.url("/big.bin"),
        "missing": n.url("/missing.bin"),
        "hop": p.url("/hop-headers"),
        "e500": p.url("/status/500"),
        "e503": p.url("/status/503"),
        "e410": p.url("/status/410"),
    }
    config = make_config(
        upstream={"allow_private_networks": True},
        stream={"allow_hosts": [n.host]},
        media={k: {"provider": "direct", "source": {"url": u}} for k, u in media.items()})
    yield from module_stack(request, config, extra_nginx=n.nginx_conf(), mode=request.param)


def origin_direct(nginx_origin, path, headers=None, method="GET"):
    """The same request straight to the nginx origin: the reference answer."""
    return raw_get(nginx_origin.port, path, headers=headers, method=method)


# --- plain GET ---------------------------------------------------------------------

def test_full_get(st, nginx_origin):
    ref = origin_direct(nginx_origin, "/small.bin")
    r = raw_get(st.port, "/api/proxy/media/small")
    assert r.status == 200, r
    assert r.complete and r.body == SMALL
    assert r.headers.get("content-length") == str(len(SMALL)), r
    assert r.headers.get("content-type") == "application/octet-stream", r
    assert r.headers.get("accept-ranges") == "bytes", r
    assert r.headers.get("etag") == ref.headers["etag"], r
    assert r.headers.get("last-modified") == ref.headers["last-modified"], r


@pytest.mark.parametrize("path", ["/stream?url={u}", "/api/proxy/stream?url={u}"])
def test_stream_routes_relay_the_same_bytes(st, nginx_origin, path):
    r = raw_get(st.port, path.format(u=q(nginx_origin.url("/small.bin"))))
    assert r.status == 200 and r.complete and r.body == SMALL, r


def test_unknown_media_and_named_source(st):
    assert_json_error(st.get("/api/proxy/media/nope"), 404, "not_found")
    assert_json_error(st.get("/api/proxy/media/small?t=720p"), 404, "not_found")


# --- Range -------------------------------------------------------------------------

SIZE = len(SMALL)
RANGES = [
    ("bytes=0-99", 0, 99),
    ("bytes=1000-1999", 1000, 1999),
    ("bytes=-500", SIZE - 500, SIZE - 1),               # suffix
    ("bytes=102000-", 102000, SIZE - 1),                # open-ended
    ("bytes=0-", 0, SIZE - 1),
    ("bytes=102399-102399", SIZE - 1, SIZE - 1),        # the last byte
    ("bytes=100000-999999", 100000, SIZE - 1),          # end past the size: clipped
    ("bytes=-999999", 0, SIZE - 1),                     # suffix longer than the file
]


@pytest.mark.parametrize("rng,start,end", RANGES)
@pytest.mark.parametrize("route", ["media", "stream"])
def test_range(st, nginx_origin, rng, start, end, route):
    path = ("/api/proxy/media/small" if route == "media"
            else "/stream?url=" + q(nginx_origin.url("/small.bin")))
    r = raw_get(st.port, path, headers={"Range": rng})
    assert r.status == 206, r
    assert r.headers.get("content-range") == f"bytes {start}-{end}/{SIZE}", r
    assert r.headers.get("content-length") == str(end - start + 1), r
    assert r.complete and r.body == SMALL[start:end + 1]


def test_range_not_satisfiable_is_passed_back(st):
    r = raw_get(st.port, "/api/proxy/media/small", headers={"Range": f"bytes={SIZE}-"})
    assert r.status == 416, r
    assert r.headers.get("content-range") == f"bytes */{SIZE}", r


@pytest.mark.parametrize("rng", ["bytes=abc", "items=0-5", "bytes=0-1;x"])
def test_invalid_range_is_ignored(st, rng):
    r = raw_get(st.port, "/api/proxy/media/small", headers={"Range": rng})
    assert r.status == 200 and r.body == SMALL, r


def test_if_range(st, nginx_origin):
    etag = origin_direct(nginx_origin, "/small.bin").headers["etag"]
    r = raw_get(st.port, "/api/proxy/media/small", headers={"Range": "bytes=10-19", "If-Range": etag})
    assert r.status == 206 and r.body == SMALL[10:20], r
    r = raw_get(st.port, "/api/proxy/media/small",
                headers={"Range": "bytes=10-19", "If-Range": '"stale-etag"'})
    assert r.status == 200 and r.body == SMALL, r


# --- HEAD --------------------------------------------------------------------------

def test_head(st, nginx_origin):
    before = len(nginx_origin.log_lines())
    r = raw_get(st.port, "/api/proxy/media/small", method="HEAD")
    assert r.status == 200, r
    assert r.headers.get("content-length") == str(SIZE), r
    assert r.headers.get("accept-ranges") == "bytes", r
    assert r.body == b"", r
    lines = wait_until(lambda: nginx_origin.log_lines()[before:], timeout=5)
    assert [ln.split()[:2] for ln in lines] == [["HEAD", "/small.bin"]], lines


def test_head_with_range(st):
    r = raw_get(st.port, "/api/proxy/media/small", method="HEAD", headers={"Range": "bytes=0-9"})
    assert r.status == 206, r
    assert r.headers.get("content-range") == f"bytes 0-9/{SIZE}", r
    assert r.body == b""


def test_head_then_get_on_the_same_worker(st):
    # CURLOPT_NOBODY must not stick to the thread's handle for the next GET.
    for _ in range(3):
        assert raw_get(st.port, "/api/proxy/media/small", method="HEAD").body == b""
        r = raw_get(st.port, "/api/proxy/media/small")
        assert r.status == 200 and r.body == SMALL, r


# --- conditionals ------------------------------------------------------------------

def test_if_none_match_304(st, nginx_origin):
    etag = origin_direct(nginx_origin, "/small.bin").headers["etag"]
    r = raw_get(st.port, "/api/proxy/media/small", headers={"If-None-Match": etag})
    assert r.status == 304, r
    assert r.body == b""
    assert r.headers.get("etag") == etag, r
    r = raw_get(st.port, "/api/proxy/media/small", headers={"If-None-Match": '"other"'})
    assert r.status == 200 and r.body == SMALL, r


def test_if_modified_since_304(st, nginx_origin):
    lm = origin_direct(nginx_origin, "/small.bin").headers["last-modified"]
    r = raw_get(st.port, "/api/proxy/media/small", headers={"If-Modified-Since": lm})
    assert r.status == 304, r
    assert r.body == b""
    r = raw_get(st.port, "/api/proxy/media/small",
                headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:01 GMT"})
    assert r.status == 200 and r.body == SMALL, r


# --- headers passed back, headers dropped -------------------------------------------

def test_media_headers_passed_back(st, nginx_origin):
    ref = origin_direct(nginx_origin, "/cc/movie.mp4")
    assert "set-cookie" in ref.headers      # the origin does send it
    r = raw_get(st.port, "/api/proxy/media/movie")
    assert r.status == 200 and r.body == MOVIE, r
    assert r.headers.get("content-type") == "video/mp4", r
    assert r.headers.get("cache-control") == "public, max-age=60", r
    assert r.headers.get("content-disposition") == 'attachment; filename="movie.mp4"', r
    assert r.headers.get("etag") == ref.headers["etag"], r
    assert r.headers.get("last-modified") == ref.headers["last-modified"], r
    assert "set-cookie" not in r.headers, r
    if st.offload == "off":
        # Offload: nginx passes the upstream's other end-to-end headers on (it
        # has no allow-list); see test_cookies_hop_by_hop_and_upstream_cors_dropped.
        assert "x-origin-private" not in r.headers, r


def test_cookies_hop_by_hop_and_upstream_cors_dropped(st):
    r = raw_get(st.port, "/api/proxy/media/hop", headers={"Origin": "https://player.example"})
    assert r.status == 200 and r.body == b"hello", r
    names = {k for k, _ in r.raw_headers}
    gone = ["set-cookie", "keep-alive", "proxy-authenticate", "trailer", "upgrade",
            "access-control-allow-credentials"]
    if st.offload == "off":
        # Only internal mode passes back an allow-list.  In offload mode nginx
        # drops what contrib/nginx/mediarelay.conf hides and passes the rest of
        # the upstream's headers on: end-to-end ones (X-Origin-Secret,
        # Strict-Transport-Security) and one named in Connection (X-Hop).
        gone += ["x-hop", "strict-transport-security", "x-origin-secret"]
    for name in gone:
        assert name not in names, (name, r)
    assert r.headers.get("connection") == "close", r            # nginx's own, for our request
    assert r.headers.get("server") == "nginx", r                # not the origin's
    assert r.headers.get("access-control-allow-origin") == "*", r
    assert "x-origin-secret" not in r.headers.get("access-control-expose-headers", "").lower(), r
    # and what is passed back, is passed back unchanged
    assert r.headers.get("expires") == "Thu, 01 Jan 2037 00:00:00 GMT", r
    assert r.headers.get("cache-control") == "private, max-age=30", r
    assert r.headers.get("etag") == '"origin-etag-1"', r
    assert r.headers.get("last-modified") == "Wed, 21 Oct 2015 07:28:00 GMT", r
    assert r.headers.get("content-disposition") == 'inline; filename="clip.mp4"', r
    assert r.headers.get("content-type") == "video/mp4", r


# --- CORS --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/proxy/media/small", "/stream?url={u}",
                                  "/api/proxy/stream?url={u}"])
def test_cors_preflight_for_range(st, nginx_origin, path):
    resp = st.request("OPTIONS", path.format(u=q(nginx_origin.url("/small.bin"))), headers={
        "Origin": "https://player.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range",
    })
    assert resp.status == 204, resp
    assert resp.header("Access-Control-Allow-Origin") == "*", resp
    assert {"GET", "HEAD"} <= {m.upper() for m in resp.header_tokens("Access-Control-Allow-Methods")}, resp
    assert "range" in resp.header_tokens("Access-Control-Allow-Headers"), resp


@pytest.mark.parametrize("path", ["/api/proxy/media/small", "/stream?url={u}"])
def test_cors_on_partial_content(st, nginx_origin, path):
    resp = st.get(path.format(u=q(nginx_origin.url("/small.bin"))),
                  headers={"Origin": "https://player.example", "Range": "bytes=0-9"})
    assert resp.status == 206, resp
    assert resp.header("Access-Control-Allow-Origin") == "*", resp
    assert {"content-range", "content-length", "accept-ranges"} <= \
        resp.header_tokens("Access-Control-Expose-Headers"), resp


# --- upstream error statuses -------------------------------------------------------

@pytest.mark.parametrize("media,status", [("missing", 404), ("e500", 500), ("e503", 503),
                                          ("e410", 410)])
def test_upstream_status_passed_on_as_json(st, media, status):
    resp = st.get(f"/api/proxy/media/{media}", headers={"Origin": "https://player.example"})
    assert resp.header("Access-Control-Allow-Origin") == "*", resp
    if st.offload == "nginx":
        # By design (docs/proxy.md): the status is kept, the body is the upstream's.
        assert resp.status == status, resp
        if media != "missing":
            assert resp.body == b"<html>origin error page</html>", resp
        return
    err = assert_json_error(resp, status, "upstream_status")
    assert str(status) in err["message"], resp
    assert b"origin error page" not in resp.body and b"<html>" not in resp.body, resp


def test_upstream_404_on_head(st):
    r = raw_get(st.port, "/api/proxy/media/missing", method="HEAD")
    assert r.status == 404, r
    assert r.body == b""


# --- a large file ------------------------------------------------------------------

def test_256_mib_file_bytes_match(st, nginx_origin):
    conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=60)
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    try:
        conn.request("GET", "/api/proxy/media/big")
        r = conn.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Length") == str(BIG_SIZE)
        while True:
            chunk = r.read(4 * MiB)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    finally:
        conn.close()
    assert n == BIG_SIZE
    assert h.hexdigest() == nginx_origin.sha256["big.bin"]
    print(f"256 MiB in {time.monotonic() - t0:.2f} s")
    if st.offload == "off":
        assert spliced(st, nginx_origin.url("/big.bin")) == (st.mode == "splice")


@pytest.mark.parametrize("rng", ["bytes=1000-5000999", "bytes=-3000000", f"bytes={BIG_SIZE - 2 * MiB}-"])
def test_big_ranges_match_the_origin(st, nginx_origin, rng):
    # Ranges long enough to be spliced (the shipped splice_min_bytes is 1 MiB):
    # the same bytes and Content-Range as the origin's own answer.
    ref = origin_direct(nginx_origin, "/big.bin", headers={"Range": rng})
    r = raw_get(st.port, "/api/proxy/media/big", headers={"Range": rng}, timeout=30)
    assert ref.status == 206 and r.status == 206, r
    assert r.headers.get("content-range") == ref.headers["content-range"], r
    assert r.complete and len(r.body) == len(ref.body) and r.body == ref.body
