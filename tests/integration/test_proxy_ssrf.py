"""mediarelay-proxy, the SSRF guard (upstream.allow_private_networks false, no
exemptions): loopback, private, link-local, CGNAT, multicast, unspecified and
their IPv6 forms are refused with 403 upstream_blocked and a message that says
why, whether the URL is allow-listed, signed, or a media item; schemes other
than http(s) are refused before anything else.

A live origin listens on 127.0.0.1: it must never see a request. The other
addresses see no traffic either: the guard refuses before connect().

In internal mode and in nginx offload mode (there mediarelay-proxy resolves
the host and vets the address before it hands anything to nginx)."""

import pytest

from conftest import assert_json_error, make_config
from proxyutil import MODES, ScriptedOrigin, assert_raw_error, module_stack, path_of, q, raw_get, sign


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()
    o.route("/", lambda h, seen: h.answer(200, {"Content-Type": "video/mp4"}, b"must not be relayed"))
    yield o
    o.close()


def table(port):
    """(url, reason, allow-list entry or None): the guard's table."""
    return [
        (f"http://127.0.0.1:{port}/v.mp4", "loopback", f"127.0.0.1:{port}"),
        ("http://10.0.0.1/v.mp4", "private", "10.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "link_local", "169.254.169.254"),
        (f"http://[::1]:{port}/v.mp4", "loopback", f"[::1]:{port}"),
        (f"http://0.0.0.0:{port}/v.mp4", "unspecified", f"0.0.0.0:{port}"),
        (f"http://localhost:{port}/v.mp4", "loopback", f"localhost:{port}"),   # a name for 127.0.0.1
        ("http://192.168.0.10/", "private", "192.168.0.10"),
        ("http://172.31.255.1/", "private", "172.31.255.1"),
        ("http://100.64.0.1/", "cgnat", "100.64.0.1"),
        ("http://224.0.0.1/", "multicast", "224.0.0.1"),
        (f"http://127.1:{port}/v.mp4", "loopback", None),                     # short form
        (f"http://2130706433:{port}/v.mp4", "loopback", None),                # decimal form
        (f"http://[::ffff:127.0.0.1]:{port}/v.mp4", "loopback", None),        # v4-mapped
        ("http://[fe80::1]/", "link_local", None),
        ("http://[fc00::1]/", "private", None),
        ("http://[::]/", "unspecified", None),
        # IPv4 inside IPv6 is judged as that IPv4 address; a network's own
        # NAT64 prefix is refused whatever it embeds
        (f"http://[::ffff:7f00:1]:{port}/v.mp4", "loopback", None),            # v4-mapped, hex
        (f"http://[::ffff:0:127.0.0.1]:{port}/v.mp4", "loopback", None),       # v4-translated
        (f"http://[64:ff9b::127.0.0.1]:{port}/v.mp4", "loopback", None),       # NAT64 well-known
        ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "link_local", None),
        ("http://[64:ff9b::10.0.0.1]/", "private", None),
        ("http://[64:ff9b:1::808:808]/", "private", None),                     # local-use NAT64
        ("http://[2002:a9fe:a9fe::1]/", "link_local", None),                   # 6to4
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "reserved", None),  # Teredo
        ("http://192.0.0.170/", "reserved", None),
        ("http://198.18.0.1/", "reserved", None),
        ("http://255.255.255.255/", "reserved", None),
        ("http://0.1.2.3/", "unspecified", None),
    ]


@pytest.fixture(scope="module", params=MODES)
def st(request, origin):
    allow = [entry for _, _, entry in table(origin.port) if entry]
    media = {
        "lo": f"http://127.0.0.1:{origin.port}/v.mp4",
        "meta": "http://169.254.169.254/latest/meta-data/",
        "name": f"http://localhost:{origin.port}/v.mp4",
        "v6": f"http://[::1]:{origin.port}/v.mp4",
        "rfc1918": "http://10.0.0.1/v.mp4",
    }
    config = make_config(
        upstream={"allow_private_networks": False, "allow_networks": []},
        stream={"allow_hosts": allow},
        media={k: {"provider": "direct", "source": {"url": u}} for k, u in media.items()})
    yield from module_stack(request, config, mode=request.param)


@pytest.fixture(autouse=True)
def no_origin_traffic(origin):
    yield
    assert origin.seen == [], f"the guard let a request through: {origin.seen}"


def test_table(st, origin):
    """Every row, through each way in; collected so one run shows all misses."""
    misses = []
    for url, reason, entry in table(origin.port):
        ways = []
        if entry:
            ways += [("allow-listed /stream", "/stream?url=" + q(url)),
                     ("allow-listed /api/proxy/stream", "/api/proxy/stream?url=" + q(url))]
        s = sign(st, url)
        if s.status != 200:
            misses.append((url, "sign", s.status, s.body[:200]))
        else:
            ways.append(("signed", path_of(s.json["url"])))
        for way, path in ways:
            for method in ("GET", "HEAD"):
                r = raw_get(st.port, path, method=method)
                if method == "HEAD":
                    ok = r.status == 403
                    got = r.status
                else:
                    try:
                        err = assert_raw_error(r, 403, "upstream_blocked")
                        ok = reason in err["message"]
                        got = err
                    except AssertionError as e:
                        ok, got = False, f"{r!r} {r.body[:200]!r} ({e})"
                if not ok:
                    misses.append((url, way, method, f"want 403 upstream_blocked '{reason}'",
                                   got))
    assert not misses, "\n".join(map(str, misses))


@pytest.mark.parametrize("media,reason", [("lo", "loopback"), ("meta", "link_local"),
                                          ("name", "loopback"), ("v6", "loopback"),
                                          ("rfc1918", "private")])
def test_media_items(st, media, reason):
    err = assert_raw_error(raw_get(st.port, f"/api/proxy/media/{media}"), 403, "upstream_blocked")
    assert reason in err["message"], err


def test_ipv6_allow_list_entry(st, origin):
    # "[::1]:PORT" is listed: that URL gets to the guard (blocked); another port does not.
    assert_raw_error(raw_get(st.port, "/stream?url=" + q(f"http://[::1]:{origin.port}/x")),
                     403, "upstream_blocked")
    other = origin.port + 1 if origin.port < 65535 else origin.port - 1
    assert_raw_error(raw_get(st.port, "/stream?url=" + q(f"http://[::1]:{other}/x")),
                     403, "forbidden")


SCHEMES = ["file:///etc/passwd", "FILE:///etc/passwd", "gopher://127.0.0.1:70/_GET%20/",
           "dict://127.0.0.1:11211/stats", "ftp://127.0.0.1/", "ldap://127.0.0.1/",
           "data:text/plain,hello", "javascript:alert(1)"]


@pytest.mark.parametrize("url", SCHEMES)
@pytest.mark.parametrize("route", ["/stream", "/api/proxy/stream"])
def test_other_schemes(st, url, route):
    r = raw_get(st.port, f"{route}?url={q(url)}")
    assert_raw_error(r, 403, "upstream_blocked")
    assert b"root:" not in r.body


@pytest.mark.parametrize("url", SCHEMES[:5])
def test_other_schemes_cannot_be_signed(st, url):
    assert_json_error(sign(st, url), 400, "bad_request")
