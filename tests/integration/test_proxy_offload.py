"""mediarelay-proxy in nginx offload mode (stream.offload "nginx"): what only this
mode has.  The tests both modes share run in both from test_proxy_http.py,
test_proxy_policy.py, test_proxy_redirects.py, test_proxy_ssrf.py,
test_proxy_stream.py and test_proxy_stats.py.

- An upstream cannot steer nginx: its X-Accel-Redirect (to /_mediarelay_offload
  with an X-Mediarelay-Upstream of its choosing, to another location, to the
  named locations) is not followed, also not on the 403 retry, and no X-Accel-*
  or X-Mediarelay-* header reaches the client.
- The proxy hands nginx an address, never a name: a media item on
  http://localhost:PORT works (the stack's nginx has no resolver, so a name
  would fail), and the origin sees Host: localhost:PORT.  With the guard on and
  no exemption the same URL is 403 upstream_blocked: test_proxy_ssrf.py.
- A client cannot switch the proxy to its own relaying (the fallback nginx
  uses after a redirect) with a header.
- A 403, retried, that turns into a redirect ends with the proxy following it.
- A client that leaves: the origin sees its connection closed; an upstream
  that breaks off: the client sees a truncated answer.
"""

import socket
import time

import pytest

from conftest import make_config, wait_until
from proxyutil import ScriptedOrigin, module_stack, peer_closed, q, raw_get, trickle

REFERER = "https://ref.example/watch"
POLICY_COOKIE = "sess=policy-cookie-7f3a"
POLICY = {"Referer": REFERER, "User-Agent": "PolicyUA/3.0", "Cookie": POLICY_COOKIE}

# Where a malicious upstream's X-Accel-Redirect points.
ACCEL_TARGETS = {
    "offload": "/_mediarelay_offload",
    "health": "/api/health",
    "redirect": "@mediarelay_offload_redirect",
    "retry": "@mediarelay_offload_403",
}
OWN_BODY = b"the upstream's own body"


@pytest.fixture(scope="module")
def secret():
    """An origin nothing may reach: the one a malicious upstream points nginx at."""
    o = ScriptedOrigin()
    o.route("/", lambda h, seen: h.answer(200, {"Content-Type": "text/plain"}, b"SECRET"))
    yield o
    o.close()


@pytest.fixture(scope="module")
def origin(secret):
    o = ScriptedOrigin()
    evil = {"Content-Type": "text/plain",
            "X-Mediarelay-Upstream": secret.url("/secret"),
            "X-Mediarelay-Host": secret.host,
            "X-Mediarelay-Sni": "secret.example",
            "X-Mediarelay-Cookie": "stolen=1",
            "X-Mediarelay-Cors-Origin": "https://evil.example",
            "X-Accel-Buffering": "yes",
            "X-Accel-Limit-Rate": "1",
            "X-Accel-Expires": "3600",
            "X-Accel-Charset": "koi8-r"}

    def accel(h, seen):                 # /accel/<target>
        target = ACCEL_TARGETS[seen.path.rsplit("/", 1)[1]]
        h.answer(200, {**evil, "X-Accel-Redirect": target}, OWN_BODY)

    def accel_after_403(h, seen):       # the same, once the Referer is gone
        if seen.headers.get("Referer"):
            h.answer(403, {"Content-Type": "text/plain"}, b"foreign referer")
        else:
            accel(h, seen)

    def forbid_then_redirect(h, seen):  # 403 with a Referer, else 302 to /echo
        if seen.headers.get("Referer"):
            h.answer(403, {"Content-Type": "text/plain"}, b"foreign referer")
        else:
            h.answer(302, {"Location": "/echo"}, b"")

    def idle(h, seen):                  # 64 KiB, then nothing; notes when the peer closes
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(1 << 30))
        h.end_headers()
        h.send_raw(b"i" * 65536)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not o.stop.is_set():
            if peer_closed(h.connection):
                seen.closed_at = time.monotonic()
                return
            time.sleep(0.05)

    def early_cl(h, seen):              # promises 1 MiB, sends 100 KiB, closes
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(1 << 20))
        h.end_headers()
        h.send_raw(b"e" * 102400)
        h.close_connection = True

    o.route("/accel/", accel)
    o.route("/accel-after-403/", accel_after_403)
    o.route("/forbid-then-redirect", forbid_then_redirect)
    o.route("/echo", lambda h, seen: h.answer(200, {"Content-Type": "text/plain"}, b"echo"))
    o.route("/redirect", lambda h, seen: h.answer(302, {"Location": "/echo"}, b""))
    o.route("/missing", lambda h, seen: h.answer(404, {"Content-Type": "text/plain"}, b"gone"))
    o.route("/endless", lambda h, seen: trickle(h, seen, b"e" * 16384, 10 ** 6, 0.05,
                                                content_length=False, stop=o.stop))
    o.route("/idle", idle)
    o.route("/early-cl", early_cl)
    yield o
    o.close()


def item(url, headers=None):
    src = {"url": url}
    if headers:
        src["headers"] = headers
    return {"provider": "direct", "source": src}


@pytest.fixture(scope="module")
def st(request, origin):
    u = origin.url
    media = {
        "echo": item(u("/echo"), POLICY),
        "redirect": item(u("/redirect"), POLICY),
        "missing": item(u("/missing"), POLICY),
        "forbid-then-redirect": item(u("/forbid-then-redirect"), POLICY),
        "local": item(f"http://localhost:{origin.port}/echo", POLICY),
        "endless": item(u("/endless")),
        "idle": item(u("/idle")),
        "early-cl": item(u("/early-cl")),
    }
    for name in ACCEL_TARGETS:
        media[f"accel-{name}"] = item(u(f"/accel/{name}"))
        media[f"accel403-{name}"] = item(u(f"/accel-after-403/{name}"), POLICY)
    # The guard on, with the origin's address exempt: the secret origin (on
    # 127.0.0.1 too) is kept away by nginx's config alone, not by the guard.
    config = make_config(
        upstream={"allow_private_networks": False, "allow_networks": ["127.0.0.1/32"]},
        stream={"allow_hosts": [origin.host, f"localhost:{origin.port}"]},
        media=media)
    yield from module_stack(request, config, mode="nginx")


def fetch(st, origin, media, headers=None, method="GET"):
    """GET (or HEAD) a media item; (response, the origin's requests made by it)."""
    before = len(origin.seen)
    r = raw_get(st.port, f"/api/proxy/media/{media}", headers=headers, method=method, timeout=5)
    return r, origin.seen[before:]


# --- an upstream cannot steer nginx --------------------------------------------------

@pytest.mark.parametrize("via", ["accel", "accel403"])
@pytest.mark.parametrize("target", list(ACCEL_TARGETS))
def test_upstream_x_accel_redirect_is_not_followed(st, origin, secret, target, via):
    n_secret = len(secret.seen)
    r, seen = fetch(st, origin, f"{via}-{target}")
    assert r.status == 200, r
    assert r.body == OWN_BODY, r            # not SECRET, not /api/health's JSON, no relay
    assert r.complete, r
    names = {k for k, _ in r.raw_headers}
    assert not [n for n in names if n.startswith(("x-accel-", "x-mediarelay-"))], r
    assert "evil.example" not in r.headers.get("access-control-allow-origin", ""), r
    assert secret.seen[n_secret:] == []
    # one request from nginx (two with the 403 retry), none from a relaying proxy
    if via == "accel":
        assert [s.headers.get("Referer") for s in seen] == [None], seen
    else:
        assert [s.headers.get("Referer") for s in seen] == [REFERER, None], seen
    assert all(s.headers.get("Accept") is None for s in seen), seen


def test_no_internal_header_on_any_answer(st, origin):
    """raw_get checks every answer for X-Mediarelay-* and X-Accel-*; here also that
    the policy's Cookie (which the proxy hands nginx in X-Mediarelay-Cookie) is in
    no header of an answer of any kind."""
    answers = [
        raw_get(st.port, "/api/proxy/media/echo"),
        raw_get(st.port, "/api/proxy/media/echo", method="HEAD"),
        raw_get(st.port, "/api/proxy/media/echo", headers={"Range": "bytes=0-1"}),
        raw_get(st.port, "/api/proxy/media/redirect"),              # the proxy's fallback
        raw_get(st.port, "/api/proxy/media/missing"),               # an upstream 404
        raw_get(st.port, "/api/proxy/media/forbid-then-redirect"),  # 403 retry, then fallback
        raw_get(st.port, "/stream?url=" + q(origin.url("/echo"))),
        raw_get(st.port, "/stream?url=" + q("http://10.0.0.1/x")),  # refused: not listed
        raw_get(st.port, "/api/proxy/media/nope"),
    ]
    assert [a.status for a in answers] == [200, 200, 200, 200, 404, 200, 200, 403, 404], answers
    for a in answers:
        for k, v in a.raw_headers:
            assert not k.startswith(("x-mediarelay-", "x-accel-")), (k, a)
            assert "policy-cookie" not in v, (k, v, a)


# --- nginx gets an address -----------------------------------------------------------

@pytest.mark.parametrize("way", ["media", "stream"])
def test_a_name_is_resolved_by_the_proxy(st, origin, way):
    # The stack's nginx has no resolver: handed "localhost" it could not
    # connect at all.  The proxy resolved it (127.0.0.1, exempt here) and the
    # Host header still names the host of the URL.
    before = len(origin.seen)
    path = ("/api/proxy/media/local" if way == "media"
            else "/stream?url=" + q(f"http://localhost:{origin.port}/echo"))
    r = raw_get(st.port, path)
    assert r.status == 200 and r.body == b"echo", r
    seen = origin.seen[before:]
    assert len(seen) == 1, seen
    assert seen[0].headers.get("Host") == f"localhost:{origin.port}", seen
    assert seen[0].headers.get("Accept") is None, seen      # nginx asked, not the proxy


# --- the fallback cannot be forged -------------------------------------------------

def test_the_fallback_is_told_apart_by_accept(st, origin):
    # How the tests below tell who asked the origin: libcurl (the proxy relaying
    # itself) sends "Accept: */*"; nginx, with proxy_pass_request_headers off,
    # sends no Accept.  A redirect is the one way into the proxy's own relaying.
    r, seen = fetch(st, origin, "redirect")
    assert r.status == 200 and r.body == b"echo", r
    assert [(s.path, s.headers.get("Accept")) for s in seen] == \
        [("/redirect", None), ("/redirect", "*/*"), ("/echo", "*/*")], seen


@pytest.mark.parametrize("header", ["MEDIARELAY_OFFLOAD_FALLBACK", "Mediarelay-Offload-Fallback",
                                    "Mediarelay_Offload_Fallback", "X-Mediarelay-Offload-Fallback"])
def test_client_cannot_force_the_fallback(st, origin, header):
    r, seen = fetch(st, origin, "echo", headers={header: "1"})
    assert r.status == 200 and r.body == b"echo", r
    assert len(seen) == 1, seen
    h = seen[0].headers
    assert h.get("Accept") is None, f"the proxy relayed it itself: {seen}"
    assert h.get("Referer") == REFERER and h.get("Cookie") == POLICY_COOKIE, seen
    assert h.get(header) is None, seen
    assert "fallback" not in " ".join(h.keys()).lower(), seen


# --- 403 retry, then a redirect ------------------------------------------------------

def test_403_retry_that_redirects_is_followed_by_the_proxy(st, origin):
    r, seen = fetch(st, origin, "forbid-then-redirect")
    assert r.status == 200 and r.body == b"echo", r
    got = [(s.path, s.headers.get("Referer"), s.headers.get("Accept")) for s in seen]
    assert got == [
        ("/forbid-then-redirect", REFERER, None),   # nginx: 403
        ("/forbid-then-redirect", None, None),      # nginx, retried: 302
        ("/forbid-then-redirect", REFERER, "*/*"),  # the proxy relays it: 403
        ("/forbid-then-redirect", None, "*/*"),     # retried: 302
        ("/echo", None, "*/*"),                     # followed
    ], seen


# --- a client that leaves, an upstream that breaks off -----------------------------------

def open_stream(port, path, nbytes, timeout=10):
    """A client socket that has read the headers and nbytes of body of GET path."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf or len(buf.partition(b"\r\n\r\n")[2]) < nbytes:
        b = s.recv(65536)
        assert b, f"closed early: {buf[:300]!r}"
        buf += b
    assert buf.startswith(b"HTTP/1.1 200"), buf[:300]
    return s


@pytest.mark.parametrize("media", ["endless", "idle"])
def test_client_disconnect_closes_the_upstream(st, origin, media):
    n = len(origin.requests_to("/" + media))
    s = open_stream(st.port, f"/api/proxy/media/{media}", 32 * 1024)
    seen = origin.requests_to("/" + media)[n:]
    assert len(seen) == 1 and seen[0].closed_at is None, seen
    s.close()
    assert wait_until(lambda: seen[0].closed_at is not None, timeout=5), \
        f"nginx kept the upstream of /{media} open after the client left"


def test_early_close_is_truncated(st):
    r = raw_get(st.port, "/api/proxy/media/early-cl")
    assert r.status == 200, r
    assert r.framing == "length" and r.headers["content-length"] == str(1 << 20), r
    assert not r.complete, r
    assert r.body == b"e" * len(r.body), r
