"""Relayed bodies cannot attack the relay's own origin (docs/proxy.md, "Relayed
bodies"; common/http/mimetype.h).

A hostile origin answers every "segment" with a body a browser would run (an
HTML page with a script, an SVG with an onload) under the Content-Types a
browser would run it as, and under harmless ones.  Through every route that
relays a body -- HLS segments, keys and init sections and DASH segments
(/api/seg/: from the upstream, from Redis, from nginx's edge cache, relayed
uncached), /api/proxy/media/{id}, /stream and /api/proxy/stream in every
body mode (proxyutil.MODES: libcurl, splice, nginx offload), HEAD, 206, 304,
416 and the upstream error bodies nginx offload relays -- the answer says
X-Content-Type-Options: nosniff and Content-Security-Policy: sandbox, its
Content-Type is on the allow-list or application/octet-stream (none on a
304), and the body's bytes are the origin's, unchanged.

The manifests the relay rewrites (HLS playlists, MPDs: the relay's output,
the upstream's bytes between the URIs) keep their own types and get the two
headers too.  Every case of tests/data/mimetype/cases.txt (the unit test's
table) goes through the proxy in every mode: the nginx map of offload mode
and the library agree.  And headless Chromium, shown a relayed HTML, SVG or
XML body in a frame, downloads it and runs none of its script (the same
bodies straight from the origin run).
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from conftest import ADMIN_TOKEN, SRCDIR, assert_json_error, make_config, wait_until
from proxyutil import MODES, ScriptedOrigin, module_stack, path_of, q, raw_get, spliced
from test_hls_play import mint

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-headless-shell")

O = "application/octet-stream"
# name -> (the origin's Content-Type, None: no header at all; what is relayed)
TYPES = {
    "html": ("text/html; charset=utf-8", O),
    "svg": ("image/svg+xml", O),
    "xml": ("text/xml", O),
    "js": ("application/javascript", O),
    "xhtml": ("application/xhtml+xml", O),
    "empty": ("", O),
    "absent": (None, O),
    "garbage": ("garbage, <html>", O),
    "ts": ("video/mp2t", "video/mp2t"),
    "png": ("image/png", "image/png"),
}
NAMES = list(TYPES)
HOSTILE = (b"<!DOCTYPE html><html><body><script>alert(document.domain)</script>"
           b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/></body></html>\n")
# Larger than upstream.buffer_bytes, so that in splice mode the rest of the
# body leaves libcurl after its first read.
SIZE = 600 * 1024
BIG_SIZE = 16 * 1024 * 1024


def body_of(name, path=""):
    """The origin's bytes for a name: a page a browser would run, then bytes
    that differ per name and path (a mixed-up body cannot pass).  Under
    /t/{name}/big/, 16 MiB: more than the origin can write before the proxy
    reads, so that in splice mode its rest surely leaves libcurl."""
    size = BIG_SIZE if "/big/" in path else SIZE
    block = hashlib.sha256(f"{name}:{path}".encode()).digest() * 2048
    return (HOSTILE + block * (size // len(block) + 1))[:size]


def etag_of(name, path):
    return '"' + hashlib.sha256(f"{name}:{path}".encode()).hexdigest()[:16] + '"'


def assert_safe(r, want_type, what=""):
    """The two headers, once each, and the relayed type (none on a 304)."""
    got = [(k, v) for k, v in r.raw_headers
           if k in ("content-type", "x-content-type-options", "content-security-policy")]
    want = [("x-content-type-options", "nosniff"), ("content-security-policy", "sandbox")]
    if r.status != 304:
        want.append(("content-type", want_type))
    assert sorted(got) == sorted(want), (what, r)


# --- the hostile origin ---------------------------------------------------------------

def serve_typed(h, seen):
    """/t/{name}/{file}[?nostore][&status=N]: the body of name under its
    Content-Type; Range (one range), If-None-Match and 416 as a server would
    answer them, each with the same type and a page in the error bodies."""
    parts = seen.path.split("/")
    name = parts[2]
    ctype = TYPES[name][0] if name in TYPES else None
    query = urllib.parse.parse_qs(seen.query, keep_blank_values=True)
    data = body_of(name, seen.path)
    hdrs = {"ETag": etag_of(name, seen.path), "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "sniff-please",
            "Content-Security-Policy": "default-src *"}
    if ctype is not None:
        hdrs["Content-Type"] = ctype
    if "nostore" in query:
        hdrs["Cache-Control"] = "no-store"
    if "status" in query:
        h.answer(int(query["status"][0]), hdrs, HOSTILE)
        return
    if seen.headers.get("If-None-Match") == hdrs["ETag"]:
        h.answer(304, hdrs, b"")
        return
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", seen.headers.get("Range") or "")
    if m:
        a = int(m.group(1))
        b = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
        if a >= len(data):
            h.answer(416, {**hdrs, "Content-Range": f"bytes */{len(data)}"}, HOSTILE)
            return
        h.answer(206, {**hdrs, "Content-Range": f"bytes {a}-{b}/{len(data)}"}, data[a:b + 1])
        return
    h.answer(200, hdrs, data)


def serve_case(h, seen):
    """/case?v=BYTES: an answer whose Content-Type header is those bytes
    (latin-1), or none for v=(none)."""
    v = urllib.parse.parse_qs(seen.query, keep_blank_values=True)["v"][0]
    h.send_response(200)
    if v != "(none)":
        h._headers_buffer.append(b"Content-Type: " + v.encode("latin-1") + b"\r\n")
    h.send_header("Content-Length", str(len(HOSTILE)))
    h.end_headers()
    if h.command != "HEAD":
        h.send_raw(HOSTILE)


MASTER = "#EXTM3U\n# <script>alert(document.domain)</script>\n" + "".join(
    f"#EXT-X-STREAM-INF:BANDWIDTH={1000 + i}\n{n}/index.m3u8\n" for i, n in enumerate(NAMES))


def media_playlist(name):
    """A key, an init section and two segments of one type (the second one
    no-store: relayed uncached)."""
    return (f"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n"
            f"#EXT-X-KEY:METHOD=AES-128,URI=\"/t/{name}/k.key\"\n"
            f"#EXT-X-MAP:URI=\"/t/{name}/init.mp4\"\n"
            f"#EXTINF:4,\n/t/{name}/seg.ts\n"
            f"#EXTINF:4,\n/t/{name}/seg2.ts?nostore\n#EXT-X-ENDLIST\n")


MPD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
       '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
       'mediaPresentationDuration="PT8S" minBufferTime="PT2S" '
       'profiles="urn:mpeg:dash:profile:isoff-live:2011">\n'
       '  <x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(document.domain)</x:script>\n'
       '  <BaseURL>/t/</BaseURL>\n  <Period>\n'
       '    <AdaptationSet mimeType="video/mp4" segmentAlignment="true">\n'
       '      <SegmentTemplate duration="4" initialization="$RepresentationID$/dinit.mp4" '
       'media="$RepresentationID$/d-$Number$.m4s" startNumber="1"/>\n'
       + "".join(f'      <Representation id="{n}" bandwidth="{1000 + i}"/>\n'
                 for i, n in enumerate(NAMES))
       + '    </AdaptationSet>\n  </Period>\n</MPD>\n')


# Bodies that tell the origin when a browser ran their script (GET /beacon/TAG).
RUNNABLE = {
    "html": ("text/html",
             '<!DOCTYPE html><html><body><script>new Image().src="{b}"</script></body></html>'),
    "svg": ("image/svg+xml",
            '<svg xmlns="http://www.w3.org/2000/svg"><script>new Image().src="{b}"</script></svg>'),
    "xml": ("text/xml",
            '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011">'
            '<x:script xmlns:x="http://www.w3.org/1999/xhtml">new Image().src="{b}"</x:script>'
            '</MPD>'),
}


def serve_runnable(o):
    """/run/{kind}/{tag}: a RUNNABLE body whose script fetches /beacon/{tag}."""
    def fn(h, seen):
        _, _, kind, tag = seen.path.split("/")
        ctype, text = RUNNABLE[kind]
        h.answer(200, {"Content-Type": ctype}, text.format(b=o.url(f"/beacon/{tag}")))
    return fn


def serve_frame(h, seen):
    """/frame?src=URL[&src=URL...]: a page (of the origin, not the relay)
    with each URL in an iframe."""
    srcs = urllib.parse.parse_qs(seen.query)["src"]
    h.answer(200, {"Content-Type": "text/html"},
             "<!DOCTYPE html>" + "".join(f'<iframe src="{s}"></iframe>' for s in srcs))


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()
    o.route("/t/", serve_typed)
    o.route("/run/", serve_runnable(o))
    o.route("/frame", serve_frame)
    o.route("/beacon/", lambda h, seen: h.answer(204))
    o.route("/case", serve_case)
    o.route("/h/master.m3u8", lambda h, seen: h.answer(
        200, {"Content-Type": "text/html"}, MASTER))
    for n in NAMES:
        o.route(f"/h/{n}/index.m3u8", lambda h, seen, n=n: h.answer(
            200, {"Content-Type": "application/vnd.apple.mpegurl"}, media_playlist(n)))
    o.route("/d/manifest.mpd", lambda h, seen: h.answer(
        200, {"Content-Type": "text/html"}, MPD))
    yield o
    o.close()


def config(origin, **extra):
    return make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        stream={"allow_hosts": [origin.host]},
        channels={"evil": {"url": origin.url("/h/master.m3u8")}},
        media={"dash": {"provider": "direct", "source": {"url": origin.url("/d/manifest.mpd")}},
               **{f"p-{n}": {"provider": "direct",
                             "source": {"url": origin.url(f"/t/{n}/movie.mp4")}}
                  for n in NAMES},
               "p-404": {"provider": "direct",
                         "source": {"url": origin.url("/t/html/gone.mp4?status=404")}}},
        **extra)


# --- segments, keys, init sections: /api/seg/ with the Redis and edge caches ---------

@pytest.fixture(scope="module")
def seg(request, origin):
    """The shipped caches: Redis, and nginx's edge cache in front of /api/seg/."""
    yield from module_stack(request, config(origin))


def rewritten(st, path):
    r = raw_get(st.port, path)
    assert r.status == 200, r
    return r


def hls_urls(st):
    """name -> the relay paths of its key, init section and two segments, as
    the rewritten playlists hand them out."""
    master = rewritten(st, "/live/evil.m3u8")
    variants = [path_of(u) for u in master.body.decode().split("\n")
                if u.startswith(("http", "/")) and "/api/m3u8/" in u]
    assert len(variants) == len(NAMES), master.body
    out = {}
    for name, v in zip(NAMES, variants):
        text = rewritten(st, v).body.decode()
        key = path_of(re.search(r'#EXT-X-KEY:[^\n]*URI="([^"]+)"', text).group(1))
        init = path_of(re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1))
        segs = [path_of(u) for u in text.split("\n") if "/api/seg/" in u and not u.startswith("#")]
        assert len(segs) == 2, text
        out[name] = {"key": key, "init": init, "seg": segs[0], "nostore": segs[1]}
    return out


@pytest.fixture(scope="module")
def hls(seg):
    return hls_urls(seg)


def test_manifests_keep_their_types_and_get_the_headers(seg, origin):
    # HLS: the master (an origin that calls it text/html), a nested playlist.
    r = rewritten(seg, "/live/evil.m3u8")
    assert_safe(r, "application/vnd.apple.mpegurl", "master")
    assert b"<script>alert(document.domain)</script>" in r.body    # kept, as every line is
    v = [path_of(u) for u in r.body.decode().split("\n") if "/api/m3u8/" in u][0]
    assert_safe(rewritten(seg, v), "application/vnd.apple.mpegurl", "nested")
    # A playlist through /stream, rewritten by the proxy.
    r = rewritten(seg, f"/stream?url={q(origin.url(f'/h/{NAMES[0]}/index.m3u8'))}")
    assert_safe(r, "application/vnd.apple.mpegurl", "/stream playlist")
    # The MPD, XML with an XHTML script in it: sandboxed.
    r = rewritten(seg, "/api/media/dash/manifest.mpd")
    assert_safe(r, "application/dash+xml", "mpd")
    assert b"<x:script" in r.body
    # The channel list.
    r = rewritten(seg, "/live/channels.m3u")
    assert_safe(r, "audio/x-mpegurl; charset=utf-8", "channels.m3u")


_minted = [0]


def other_token(kind, origin, url):
    """A token no request used yet for an upstream URL the cache may hold
    (scope u:, a later expiry each time): nginx's edge has no copy of its
    answer, Redis has the object's."""
    _minted[0] += 1
    return mint(kind, "u:" + origin.host, url, int(time.time()) + 600 + _minted[0])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("what", ["seg", "key", "init"])
def test_hls_objects_from_the_upstream_redis_and_the_edge(seg, origin, hls, name, what):
    path = hls[name][what]
    upath = f"/t/{name}/" + {"seg": "seg.ts", "key": "k.key", "init": "init.mp4"}[what]
    data = body_of(name, upath)
    etag = etag_of(name, upath)
    want = TYPES[name][1]
    # A HEAD first: a miss, relayed as it is (the stream pump).
    r = raw_get(seg.port, path, method="HEAD")
    assert r.status == 200 and r.body == b"" and "x-cache" not in r.headers, r
    assert_safe(r, want, "HEAD")
    # The first GET fills the cache from the upstream as the bytes arrive.
    r = raw_get(seg.port, path)
    assert r.status == 200 and r.complete and r.body == data, r
    assert r.headers["x-cache"] == "MISS" and r.headers["x-cache-edge"] == "MISS", r
    assert_safe(r, want, "fill")
    # Then nginx's edge copy: whole, a range, a 304.
    for hdrs, status, body in (({}, 200, data), ({"Range": "bytes=100-199"}, 206, data[100:200]),
                               ({"If-None-Match": etag}, 304, b"")):
        r = raw_get(seg.port, path, hdrs)
        assert r.status == status and r.complete is not False and r.body == body, r
        assert r.headers["x-cache-edge"] == "HIT", r
        assert_safe(r, want, f"edge {status}")
    # From Redis: whole, a range, a 304, HEAD, each under a token nginx has
    # no copy for.
    for hdrs, method, status, body in (({}, "GET", 200, data),
                                       ({"Range": "bytes=100-199"}, "GET", 206, data[100:200]),
                                       ({"If-None-Match": etag}, "GET", 304, b""),
                                       ({}, "HEAD", 200, b"")):
        tok = other_token(b"s", origin, origin.url(upath))
        r = raw_get(seg.port, f"/api/seg/{tok}.bin", hdrs, method=method)
        assert r.status == status and r.body == body and r.headers["x-cache"] == "HIT", r
        assert r.headers["x-cache-edge"] in ("MISS", "BYPASS"), r
        assert_safe(r, want, f"Redis {method} {status}")
    # The relay's own 416 is its JSON, not the upstream's bytes.
    tok = other_token(b"s", origin, origin.url(upath))
    assert_json_error(seg.get(f"/api/seg/{tok}.bin", headers={"Range": f"bytes={SIZE}-"}),
                      416, "range_not_satisfiable")


@pytest.mark.parametrize("name", NAMES)
def test_hls_segments_relayed_uncached(seg, origin, hls, name):
    """no-store: the stream pump relays it as it is, Range and 416 included
    (the upstream's 416 body too)."""
    path = hls[name]["nostore"]
    data = body_of(name, f"/t/{name}/seg2.ts")
    for _ in range(2):
        r = raw_get(seg.port, path)
        assert r.status == 200 and r.complete and r.body == data and "x-cache" not in r.headers, r
        assert_safe(r, TYPES[name][1], "no-store")
    r = raw_get(seg.port, path, {"Range": "bytes=10-19"})
    assert r.status == 206 and r.body == data[10:20], r
    assert_safe(r, TYPES[name][1], "no-store 206")
    r = raw_get(seg.port, path, {"Range": f"bytes={SIZE}-"})
    assert r.status == 416 and r.body == HOSTILE, r
    assert_safe(r, TYPES[name][1], "no-store 416")


@pytest.fixture(scope="module")
def dash_base(seg):
    r = rewritten(seg, "/api/media/dash/manifest.mpd")
    base = re.search(r"<BaseURL>([^<]*)</BaseURL>", r.body.decode()).group(1)
    assert base.startswith("/api/seg/") and base.endswith("/"), base
    return base


@pytest.mark.parametrize("name", NAMES)
def test_dash_segments_from_the_upstream_redis_and_the_edge(seg, origin, dash_base, name):
    want = TYPES[name][1]
    for file in ("dinit.mp4", "d-1.m4s"):
        path = f"{dash_base}{name}/{file}"
        data = body_of(name, f"/t/{name}/{file}")
        r1 = raw_get(seg.port, path)
        r2 = raw_get(seg.port, path)
        for r in (r1, r2):
            assert r.status == 200 and r.complete and r.body == data, r
            assert_safe(r, want, path)
        assert r1.headers["x-cache"] == "MISS" and r2.headers["x-cache-edge"] == "HIT"
        r = raw_get(seg.port, path, {"Range": "bytes=0-99"})
        assert r.status == 206 and r.body == data[:100], r
        assert_safe(r, want, "edge 206")
        # Redis: the same URL under a directory token nginx has no copy for.
        for hdrs, method, status, body in (({}, "GET", 200, data),
                                           ({"Range": "bytes=0-99"}, "GET", 206, data[:100]),
                                           ({}, "HEAD", 200, b"")):
            d = other_token(b"d", origin, origin.url("/t/"))
            r = raw_get(seg.port, f"/api/seg/{d}/{name}/{file}", hdrs, method=method)
            assert r.status == status and r.body == body and r.headers["x-cache"] == "HIT", r
            assert_safe(r, want, f"Redis {method} {status}")


# --- the proxy, in every body mode ------------------------------------------------------

@pytest.fixture(scope="module", params=MODES)
def px(request, origin):
    yield from module_stack(request, config(origin), mode=request.param)


PROXY_ROUTES = ["/api/proxy/media/p-{n}", "/stream?url={u}", "/api/proxy/stream?url={u}"]


def proxy_path(origin, route, name):
    return route.format(n=name, u=q(origin.url(f"/t/{name}/movie.mp4")))


@pytest.mark.parametrize("name", ["html", "svg", "ts"])
def test_proxy_bodies_spliced(px, origin, name):
    """The head is the same when the body is spliced past libcurl (in splice
    mode; a body of 600 KiB may all arrive in libcurl's first reads on a busy
    machine, so these are 16 MiB)."""
    if px.mode != "splice":
        pytest.skip("splice mode only")
    url = origin.url(f"/t/{name}/big/movie.mp4")
    r = raw_get(px.port, f"/stream?url={q(url)}")
    assert r.status == 200 and r.complete and r.body == body_of(name, f"/t/{name}/big/movie.mp4"), r
    assert_safe(r, TYPES[name][1], "GET spliced")
    assert spliced(px, url), px.log("proxy")[-3000:]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("route", PROXY_ROUTES)
def test_proxy_bodies(px, origin, route, name):
    path = proxy_path(origin, route, name)
    data = body_of(name, f"/t/{name}/movie.mp4")
    want = TYPES[name][1]
    r = raw_get(px.port, path)
    assert r.status == 200 and r.complete and r.body == data, r
    assert_safe(r, want, "GET")
    r = raw_get(px.port, path, method="HEAD")
    assert r.status == 200 and r.body == b"", r
    assert_safe(r, want, "HEAD")
    r = raw_get(px.port, path, {"Range": "bytes=1000-"})
    assert r.status == 206 and r.complete and r.body == data[1000:], r
    assert_safe(r, want, "206")
    r = raw_get(px.port, path, {"If-None-Match": etag_of(name, f"/t/{name}/movie.mp4")})
    assert r.status == 304 and r.body == b"", r
    assert_safe(r, want, "304")
    # The upstream's 416 and its body, relayed.
    r = raw_get(px.port, path, {"Range": f"bytes={SIZE}-"})
    assert r.status == 416 and r.body == HOSTILE, r
    assert_safe(r, want, "416")


def test_upstream_error_bodies(px, origin):
    """Internal modes answer an upstream error with the relay's JSON; nginx
    offload relays the upstream's own body, under the same rule."""
    r = raw_get(px.port, "/api/proxy/media/p-404")
    if px.mode == "nginx":
        assert r.status == 404 and r.body == HOSTILE, r
        assert_safe(r, O, "offloaded 404")
    else:
        assert r.status == 404 and b"upstream_status" in r.body, r
        assert r.headers["content-type"] == "application/json"


def unescape(s):
    """The escapes of tests/data/mimetype/cases.txt: \\t \\\\ \\xNN."""
    return re.sub(r"\\(t|\\|x[0-9a-fA-F]{2})",
                  lambda m: {"t": "\t", "\\": "\\"}.get(m.group(1)) or chr(int(m.group(1)[1:], 16)),
                  s)


def cases():
    out = []
    for line in (SRCDIR / "tests" / "data" / "mimetype" / "cases.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        given, want = line.split("\t")
        if "\\x" in given:
            continue        # bytes an HTTP server would not send (or nginx take)
        out.append((unescape(given), unescape(want)))
    return out


def test_every_case_of_the_table(px, origin):
    """The library and nginx's map: the same answer for every case, through
    media items registered for them (/stream would rewrite an HLS-typed
    answer in the internal modes)."""
    table = cases()
    assert len(table) > 90
    bad = []
    for given, want in table:
        r = px.request("POST", "/api/media", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                       body={"provider": "direct", "source": {
                           "url": origin.url("/case?v=" + q(given))}})
        assert r.status == 201, r
        r = raw_get(px.port, f"/api/proxy/media/{r.json['id']}")
        got = [v for k, v in r.raw_headers if k == "content-type"]
        if r.status != 200 or got != [want] or r.body != HOSTILE:
            bad.append((given, want, r.status, got))
    assert not bad, bad


# --- in a browser ---------------------------------------------------------------

class Browser:
    """Headless Chromium showing a page of the origin with the urls in
    iframes, until close(); its downloads land in self.downloads (removed at
    close)."""

    def __init__(self, origin, *urls):
        self.home = tempfile.mkdtemp(prefix="mr-chromium-")
        self.downloads = os.path.join(self.home, "Downloads")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={self.home}/profile",
             origin.url("/frame?" + "&".join("src=" + q(u) for u in urls))],
            env={**os.environ, "HOME": self.home}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)

    def downloaded(self):
        return os.path.isdir(self.downloads) and bool(os.listdir(self.downloads))

    def close(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.mark.skipif(not CHROMIUM, reason="chromium not installed")
def test_a_browser_runs_no_script_of_a_relayed_body(px, origin):
    """HTML, SVG and XML with an XHTML script in a frame: straight from the
    origin, the browser runs them (the harness sees a script run); relayed,
    it downloads them (application/octet-stream) and runs nothing."""
    direct = {kind: f"direct-{kind}-{px.mode}" for kind in RUNNABLE}
    b = Browser(origin, *(origin.url(f"/run/{kind}/{tag}") for kind, tag in direct.items()))
    try:
        assert wait_until(lambda: all(origin.requests_to(f"/beacon/{t}") for t in direct.values()),
                          timeout=30), direct
    finally:
        b.close()
    # One frame each (a page gets one download): the routes in turn.
    routes = ["/stream?url={u}", "/api/proxy/stream?url={u}", "/api/proxy/stream?url={u}"]
    for kind, route in zip(RUNNABLE, routes):
        tag = f"relayed-{kind}-{px.mode}"
        b = Browser(origin, px.url(route.format(u=q(origin.url(f"/run/{kind}/{tag}")))))
        try:
            assert wait_until(lambda: b.downloaded() or origin.requests_to(f"/beacon/{tag}"),
                              timeout=30), tag
            assert not origin.requests_to(f"/beacon/{tag}"), f"{tag}: the browser ran its script"
            assert b.downloaded(), tag
        finally:
            b.close()
