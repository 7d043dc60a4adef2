"""mediarelay-proxy, the upstream header policy: a media item's headers reach the
origin, a default User-Agent, the client's own headers never do (except Range
and the conditionals), and a 403 is retried once without Referer/Origin.

In internal mode and in nginx offload mode.  Offload departs by design
(docs/proxy.md): only Referer, Origin, User-Agent and Cookie of a policy reach
the upstream, and an upstream error's body is the upstream's own.  A 403 is
retried once without Referer/Origin in both modes, and only when the policy
had one of them (@mediarelay_offload_403)."""

import pytest

from conftest import make_config
from proxyutil import MODES, ScriptedOrigin, assert_upstream_status, module_stack, raw_get

DEFAULT_UA = "mediarelay-test-default/1.0"
REFERER = "https://ref.example/watch?v=1"
ORIGIN_HDR = "https://ref.example"
POLICY = {"Referer": REFERER, "Origin": ORIGIN_HDR, "User-Agent": "PolicyUA/2.0",
          "Cookie": "sess=policy-cookie; lang=en", "X-Api-Key": "key-1"}

# What the client sends: none of it may reach the origin.
CLIENT = {"Cookie": "client_session=client-cookie", "Authorization": "Bearer client-token",
          "Referer": "https://client.example/", "Origin": "https://client.example",
          "User-Agent": "client-agent/9", "X-Api-Key": "client-key",
          "Proxy-Authorization": "Basic Y2xpZW50OnB3"}


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()
    o.route("/echo", lambda h, seen: h.answer(200, {"Content-Type": "text/plain"}, b"echo"))

    def need_referer(h, seen):
        if seen.headers.get("Referer") == REFERER:
            h.answer(200, {"Content-Type": "video/mp4"}, b"welcome")
        else:
            h.answer(403, {"Content-Type": "text/plain"}, b"hotlinking denied")

    def no_referer(h, seen):
        if seen.headers.get("Referer") is not None or seen.headers.get("Origin") is not None:
            h.answer(403, {"Content-Type": "text/plain"}, b"foreign referer")
        else:
            h.answer(200, {"Content-Type": "video/mp4"}, b"served without referer")

    o.route("/need-referer", need_referer)
    o.route("/no-referer", no_referer)
    o.route("/always-403", lambda h, seen: h.answer(403, {}, b"no"))
    o.route("/always-401", lambda h, seen: h.answer(401, {}, b"no"))
    o.route("/sneaky", lambda h, seen: h.answer(200, {"Content-Type": "video/mp4"}, b"0123456789"))
    yield o
    o.close()


def media(url, headers=None):
    src = {"url": url}
    if headers is not None:
        src["headers"] = headers
    return {"provider": "direct", "source": src}


@pytest.fixture(scope="module", params=MODES)
def st(request, origin):
    u = origin.url
    config = make_config(
        upstream={"allow_private_networks": True, "user_agent": DEFAULT_UA},
        media={
            "pol": media(u("/echo"), POLICY),
            "plain": media(u("/echo")),
            "ref-ok": media(u("/need-referer"), {"Referer": REFERER}),
            "ref-wrong": media(u("/need-referer"), {"Referer": "https://wrong.example/"}),
            "ref-none": media(u("/need-referer")),
            "retry": media(u("/no-referer"), POLICY),
            "retry-origin": media(u("/no-referer"), {"Origin": ORIGIN_HDR}),
            "always": media(u("/always-403"), {"Referer": REFERER, "Origin": ORIGIN_HDR}),
            "no-retry": media(u("/always-403"), {"User-Agent": "PolicyUA/2.0"}),
            "unauth": media(u("/always-401"), {"Referer": REFERER}),
            # what a policy may not set (the relay owns these headers)
            "sneaky": media(u("/sneaky"), {
                "Host": "evil.example", "Connection": "close, X-Foo", "Range": "bytes=0-0",
                "Transfer-Encoding": "chunked", "Content-Length": "5", "TE": "trailers",
                "Upgrade": "h2c", "If-None-Match": '"x"', "Referer": REFERER}),
        })
    yield from module_stack(request, config, mode=request.param)


def fetch(st, origin, media_id, path, headers=None):
    """GET the media item; (response, the origin's requests for path made by it)."""
    before = len(origin.requests_to(path))
    r = raw_get(st.port, f"/api/proxy/media/{media_id}", headers=headers)
    return r, origin.requests_to(path)[before:]


def all_values(seen):
    return " ".join(f"{k}: {v}" for k, v in seen.headers.items())


def test_policy_reaches_the_origin(st, origin):
    r, seen = fetch(st, origin, "pol", "/echo", headers=CLIENT)
    assert r.status == 200 and r.body == b"echo", r
    assert len(seen) == 1, seen
    h = seen[0].headers
    assert h.get("Referer") == REFERER
    assert h.get("Origin") == ORIGIN_HDR
    assert h.get("User-Agent") == "PolicyUA/2.0"
    assert h.get("Cookie") == "sess=policy-cookie; lang=en"
    # offload: only the four headers above of a policy reach the upstream
    assert h.get("X-Api-Key") == ("key-1" if st.offload == "off" else None), seen
    assert h.get_all("Cookie") == ["sess=policy-cookie; lang=en"], seen
    assert h.get("Authorization") is None and h.get("Proxy-Authorization") is None, seen
    assert "client" not in all_values(seen[0]), seen
    assert h.get("Host") == origin.host, seen


def test_default_user_agent_and_nothing_from_the_client(st, origin):
    r, seen = fetch(st, origin, "plain", "/echo", headers=CLIENT)
    assert r.status == 200, r
    assert len(seen) == 1, seen
    h = seen[0].headers
    assert h.get("User-Agent") == DEFAULT_UA, seen
    for name in ("Cookie", "Authorization", "Proxy-Authorization", "Referer", "Origin",
                 "X-Api-Key"):
        assert h.get(name) is None, (name, seen)
    assert "client" not in all_values(seen[0]), seen


def test_range_and_conditionals_are_forwarded(st, origin):
    conditional = {"Range": "bytes=0-3", "If-Range": '"e1"', "If-None-Match": '"e1", "e2"',
                   "If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT"}
    r, seen = fetch(st, origin, "plain", "/echo", headers=conditional)
    assert r.status == 200, r
    h = seen[0].headers
    for k, v in conditional.items():
        assert h.get(k) == v, (k, seen)


def test_referer_checking_origin(st, origin):
    r, seen = fetch(st, origin, "ref-ok", "/need-referer")
    assert r.status == 200 and r.body == b"welcome", r
    assert [s.headers.get("Referer") for s in seen] == [REFERER]


def test_referer_checking_origin_without_policy(st, origin):
    r, seen = fetch(st, origin, "ref-none", "/need-referer",
                    headers={"Referer": REFERER})      # the client's Referer is not used
    assert_upstream_status(st, r, 403)
    # No policy Referer/Origin: nothing to drop, no second try.
    assert len(seen) == 1, seen
    assert all(s.headers.get("Referer") is None for s in seen), seen


def test_wrong_referer_is_retried_once_then_403(st, origin):
    r, seen = fetch(st, origin, "ref-wrong", "/need-referer")
    assert_upstream_status(st, r, 403)
    assert [s.headers.get("Referer") for s in seen] == ["https://wrong.example/", None], seen


def test_403_retry_without_referer_and_origin(st, origin):
    r, seen = fetch(st, origin, "retry", "/no-referer")
    assert r.status == 200 and r.body == b"served without referer", r
    assert len(seen) == 2, seen
    first, second = seen[0].headers, seen[1].headers
    assert first.get("Referer") == REFERER and first.get("Origin") == ORIGIN_HDR
    assert second.get("Referer") is None and second.get("Origin") is None, seen
    # the rest of the policy stays
    assert second.get("User-Agent") == "PolicyUA/2.0"
    assert second.get("Cookie") == "sess=policy-cookie; lang=en"
    assert second.get("X-Api-Key") == ("key-1" if st.offload == "off" else None)


def test_403_retry_with_origin_only(st, origin):
    r, seen = fetch(st, origin, "retry-origin", "/no-referer")
    assert r.status == 200, r
    assert [s.headers.get("Origin") for s in seen] == [ORIGIN_HDR, None], seen


def test_403_retry_keeps_range(st, origin):
    r, seen = fetch(st, origin, "retry", "/no-referer", headers={"Range": "bytes=0-3"})
    assert r.status == 200, r
    assert [s.headers.get("Range") for s in seen] == ["bytes=0-3", "bytes=0-3"], seen


def test_persistent_403_is_passed_on(st, origin):
    r, seen = fetch(st, origin, "always", "/always-403")
    assert_upstream_status(st, r, 403)
    assert len(seen) == 2, seen                         # one retry, not more
    assert [s.headers.get("Referer") for s in seen] == [REFERER, None], seen


def test_403_without_referer_is_not_retried(st, origin):
    r, seen = fetch(st, origin, "no-retry", "/always-403")
    assert_upstream_status(st, r, 403)
    # Nothing to drop, so no second try, in either mode.
    assert len(seen) == 1, seen
    assert all(s.headers.get("User-Agent") == "PolicyUA/2.0" for s in seen), seen


def test_401_is_not_retried(st, origin):
    r, seen = fetch(st, origin, "unauth", "/always-401")
    assert_upstream_status(st, r, 401)
    assert len(seen) == 1, seen


def test_head_retry(st, origin):
    before = len(origin.requests_to("/no-referer"))
    r = raw_get(st.port, "/api/proxy/media/retry", method="HEAD")
    seen = origin.requests_to("/no-referer")[before:]
    assert r.status == 200 and r.body == b"", r
    assert [s.method for s in seen] == ["HEAD", "HEAD"], seen


def test_hop_by_hop_and_host_in_a_policy_are_ignored(st, origin):
    r, seen = fetch(st, origin, "sneaky", "/sneaky")
    assert r.status == 200 and r.body == b"0123456789", r
    assert len(seen) == 1, seen
    h = seen[0].headers
    assert h.get("Host") == origin.host
    assert h.get("Referer") == REFERER
    for name in ("Range", "Transfer-Encoding", "Content-Length", "TE", "Upgrade",
                 "If-None-Match"):
        assert h.get(name) is None, (name, dict(h))
    assert "x-foo" not in (h.get("Connection") or "").lower(), dict(h)
