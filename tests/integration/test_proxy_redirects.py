"""mediarelay-proxy, redirects: chains up to upstream.max_redirects (5) are followed,
longer ones are 502, and the SSRF guard checks every hop: a loopback origin
exempted by upstream.allow_networks (127.0.0.1/32) may not redirect into a
private, link-local, CGNAT, unspecified or other loopback address ([::1],
127.0.0.2). A redirect to "localhost" reaches 127.0.0.1, the exempt address,
so it is allowed here; test_proxy_ssrf.py refuses it without the exemption.

The guard refuses before connect(), so the private targets see no traffic.

An allow-listed /stream URL stays on stream.allow_hosts on every hop: a
redirect to a host that is not listed (another port, another name for the
same address) is 403 upstream_blocked, before anything is asked of it, for
a file and for a playlist.  A signed link is the operator's word for one URL,
and its redirects go where the upstream says (the guard still vets them):
the guard tests below use signed links, so that the allow-list does not
answer first.  https -> http is refused on every fetch: test_upstream.c
(the stack has no TLS origin).

In internal mode and in nginx offload mode.  Offload: nginx asks for the first
URL; a redirect goes back to mediarelay-proxy (@mediarelay_offload_redirect),
which relays the request itself, following and vetting every hop: the origin
sees the first URL twice, once from nginx and once from the proxy."""

import urllib.parse

import pytest

from conftest import make_config
from proxyutil import (MODES, ScriptedOrigin, assert_raw_error, module_stack, path_of, q,
                       raw_get, sign)


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()

    def hop(h, seen):                   # /hop/N -> /hop/N-1 (relative) ... /hop/0: 200
        n = int(seen.path.rsplit("/", 1)[1])
        if n == 0:
            h.answer(200, {"Content-Type": "video/mp4"}, b"arrived")
        else:
            h.answer(302, {"Location": f"/hop/{n - 1}"}, b"")

    def abs_hop(h, seen):               # the same with absolute Locations
        n = int(seen.path.rsplit("/", 1)[1])
        if n == 0:
            h.answer(200, {"Content-Type": "video/mp4"}, b"arrived")
        else:
            h.answer(301, {"Location": o.url(f"/abs/{n - 1}")}, b"")

    def code(h, seen):                  # /code/307 -> /hop/0 with that status
        h.answer(int(seen.path.rsplit("/", 1)[1]), {"Location": "/hop/0"}, b"")

    def to(h, seen):                    # /to?u=URL -> URL
        target = urllib.parse.parse_qs(seen.query)["u"][0]
        h.answer(302, {"Location": target}, b"")

    def via(h, seen):                   # /via?u=URL -> /to?u=URL: the second hop is the bad one
        h.answer(302, {"Location": "/to?" + seen.query}, b"")

    def playlist(h, seen):              # /redir.m3u8?u=URL -> URL, a playlist by its name
        target = urllib.parse.parse_qs(seen.query)["u"][0]
        h.answer(302, {"Location": target}, b"")

    o.route("/redir.m3u8", playlist)
    o.route("/hop/", hop)
    o.route("/abs/", abs_hop)
    o.route("/code/", code)
    o.route("/to", to)
    o.route("/via", via)
    yield o
    o.close()


@pytest.fixture(scope="module")
def elsewhere():
    """An origin on 127.0.0.1 too (the guard's exemption covers it), on a
    port that is not on stream.allow_hosts."""
    o = ScriptedOrigin()
    o.route("/", lambda h, seen: h.answer(200, {"Content-Type": "video/mp4"}, b"elsewhere"))
    o.route("/index.m3u8", lambda h, seen: h.answer(
        200, {"Content-Type": "application/vnd.apple.mpegurl"},
        b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg.ts\n#EXT-X-ENDLIST\n"))
    yield o
    o.close()


@pytest.fixture(scope="module", params=MODES)
def st(request, origin, elsewhere):
    config = make_config(
        upstream={"allow_private_networks": False, "allow_networks": ["127.0.0.1/32"]},
        stream={"allow_hosts": [origin.host]},
        media={"redir": {"provider": "direct", "source": {"url": origin.url("/hop/3")}},
               "elsewhere": {"provider": "direct",
                             "source": {"url": origin.url("/to?u=" + q(elsewhere.url("/x.mp4")))}},
               "bad-redir": {"provider": "direct",
                             "source": {"url": origin.url("/to?u=" + q("http://10.0.0.1/x"))}}})
    yield from module_stack(request, config, mode=request.param)


def stream(st, origin, path, **kw):
    return raw_get(st.port, "/stream?url=" + q(origin.url(path)), **kw)


def signed(st, origin, path, **kw):
    """The same through a signed link (not held to the allow-list)."""
    s = sign(st, origin.url(path))
    assert s.status == 200, s
    return raw_get(st.port, path_of(s.json["url"]), **kw)


def hops(st, paths):
    """What the origin sees for a chain that starts with a redirect: offload asks
    for the first URL twice (nginx, then the proxy that follows the chain)."""
    return paths[:1] + paths if st.offload == "nginx" else paths


@pytest.mark.parametrize("n", [0, 1, 3, 5])
@pytest.mark.parametrize("kind", ["hop", "abs"])
def test_chain_up_to_five_hops(st, origin, n, kind):
    before = len(origin.seen)
    r = stream(st, origin, f"/{kind}/{n}")
    assert r.status == 200 and r.body == b"arrived", r
    want = [f"/{kind}/{i}" for i in range(n, -1, -1)]
    assert [s.path for s in origin.seen[before:]] == (hops(st, want) if n else want)


@pytest.mark.parametrize("n", [6, 10])
def test_chain_too_long(st, origin, n):
    before = len(origin.seen)
    r = stream(st, origin, f"/hop/{n}")
    assert_raw_error(r, 502, "upstream_error")
    # 5 redirects followed
    assert [s.path for s in origin.seen[before:]] == \
        hops(st, [f"/hop/{i}" for i in range(n, n - 6, -1)]), origin.seen[before:]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_statuses(st, origin, status):
    r = stream(st, origin, f"/code/{status}")
    assert r.status == 200 and r.body == b"arrived", r


def test_redirect_on_head(st, origin):
    before = len(origin.seen)
    r = stream(st, origin, "/hop/2", method="HEAD")
    assert r.status == 200 and r.body == b"", r
    assert [s.method for s in origin.seen[before:]] == hops(st, ["HEAD"] * 3)


def test_media_item_redirect(st, origin):
    r = raw_get(st.port, "/api/proxy/media/redir")
    assert r.status == 200 and r.body == b"arrived", r


def test_range_survives_redirects(st, origin):
    before = len(origin.seen)
    r = stream(st, origin, "/hop/2", headers={"Range": "bytes=0-1"})
    assert r.status == 200, r
    assert [s.headers.get("Range") for s in origin.seen[before:]] == hops(st, ["bytes=0-1"] * 3)


PRIVATE_TARGETS = [
    ("http://10.0.0.1/video.mp4", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link_local"),
    ("http://100.64.0.1/", "cgnat"),
    ("http://[::1]:{port}/hop/0", "loopback"),
    ("http://127.0.0.2:{port}/hop/0", "loopback"),      # loopback outside the exempt /32
    ("http://0.0.0.0:{port}/hop/0", "unspecified"),
    ("http://[fe80::1]/", "link_local"),
    ("http://[fd00::1]/", "private"),
]


@pytest.mark.parametrize("target,reason", PRIVATE_TARGETS)
@pytest.mark.parametrize("via", ["/to", "/via"])
def test_redirect_into_private_address_refused(st, origin, target, reason, via):
    target = target.format(port=origin.port)
    path = f"{via}?u={q(target)}"
    s = sign(st, origin.url(path))
    assert s.status == 200, s
    before = len(origin.seen)
    r = raw_get(st.port, path_of(s.json["url"]))
    err = assert_raw_error(r, 403, "upstream_blocked")
    assert reason in err["message"], err
    # the origin saw the hops before the refused one, and nothing after
    assert [s.path for s in origin.seen[before:]] == \
        hops(st, ["/to"] if via == "/to" else ["/via", "/to"])


@pytest.mark.parametrize("target", ["file:///etc/passwd", "gopher://127.0.0.1:70/_x",
                                    "dict://127.0.0.1:2628/info", "ftp://127.0.0.1/"])
def test_redirect_to_other_schemes_refused(st, origin, target):
    r = stream(st, origin, f"/to?u={q(target)}")
    assert r.status in (403, 502), r
    assert r.headers.get("content-type", "").startswith("application/json"), r
    assert b"root:" not in r.body


def test_redirect_to_a_name_is_checked_by_its_address(st, origin):
    # localhost is 127.0.0.1 here, which this stack exempts: the guard judges the
    # address connected to, not the name, so this hop is allowed (its refusal,
    # without the exemption, is in test_proxy_ssrf.py).
    r = signed(st, origin, "/to?u=" + q(f"http://localhost:{origin.port}/hop/0"))
    assert r.status == 200 and r.body == b"arrived", r


def test_media_item_redirect_into_private_refused(st):
    err = assert_raw_error(raw_get(st.port, "/api/proxy/media/bad-redir"), 403, "upstream_blocked")
    assert "private" in err["message"], err


# --- an allow-listed URL stays on the allow-list ----------------------------------

def not_listed(origin, elsewhere):
    """Hops off stream.allow_hosts (which lists origin.host only)."""
    return [elsewhere.url("/x.mp4"),                              # another port
            f"http://localhost:{origin.port}/hop/0",              # another name, same address
            f"http://127.0.0.1:{origin.port}@localhost:{origin.port}/hop/0"]


@pytest.mark.parametrize("i", range(3))
@pytest.mark.parametrize("via", ["/to", "/via"])
@pytest.mark.parametrize("route", ["/stream", "/api/proxy/stream"])
def test_allow_listed_redirect_off_the_list_refused(st, origin, elsewhere, i, via, route):
    target = not_listed(origin, elsewhere)[i]
    before, before_else = len(origin.seen), len(elsewhere.seen)
    r = raw_get(st.port, f"{route}?url=" + q(origin.url(f"{via}?u={q(target)}")))
    err = assert_raw_error(r, 403, "upstream_blocked")
    assert "allow-list" in err["message"], err
    assert elsewhere.seen[before_else:] == []
    # the refused hop was not asked: only the listed hops were
    assert {s.path for s in origin.seen[before:]} <= {"/to", "/via"}, origin.seen[before:]
    r = raw_get(st.port, f"{route}?url=" + q(origin.url(f"{via}?u={q(target)}")), method="HEAD")
    assert r.status == 403, r


def test_allow_listed_playlist_redirect_off_the_list_refused(st, origin, elsewhere):
    before = len(elsewhere.seen)
    r = stream(st, origin, "/redir.m3u8?u=" + q(elsewhere.url("/index.m3u8")))
    err = assert_raw_error(r, 403, "upstream_blocked")
    assert "allow-list" in err["message"], err
    assert elsewhere.seen[before:] == []


def test_allow_listed_redirect_on_the_list_followed(st, origin):
    # an absolute Location back to the listed host:port (then a relative one)
    r = stream(st, origin, "/to?u=" + q(origin.url("/hop/1")))
    assert r.status == 200 and r.body == b"arrived", r


def test_signed_link_redirect_to_another_host_followed(st, origin, elsewhere):
    before = len(elsewhere.seen)
    r = signed(st, origin, "/to?u=" + q(elsewhere.url("/x.mp4")))
    assert r.status == 200 and r.body == b"elsewhere", r
    assert [s.path for s in elsewhere.seen[before:]] == ["/x.mp4"]
    r = signed(st, origin, "/redir.m3u8?u=" + q(elsewhere.url("/index.m3u8")))
    assert r.status == 200 and b"/api/seg/" in r.body, r


def test_media_item_redirect_to_another_host_followed(st, origin, elsewhere):
    # a media item's URL is the operator's (or an admin's): not held to the list
    r = raw_get(st.port, "/api/proxy/media/elsewhere")
    assert r.status == 200 and r.body == b"elsewhere", r
