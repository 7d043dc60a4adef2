"""The control plane (issue 6): POST/GET/DELETE /api/media, the MediaSource
of /api/media/{id}/source (mode, relay URL per type, the type sniffed when
the URL does not say), /api/resolve?url=, and ?t= for other sources."""

import json

import pytest

from conftest import ADMIN_TOKEN, assert_json_error, make_config
from proxyutil import ScriptedOrigin, module_stack, raw_get

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HLS = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ns.ts\n#EXT-X-ENDLIST\n"
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 2000


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()
    o.route("/files/a.mp4", lambda h, s: h.answer(200, {"Content-Type": "video/mp4"}, MP4))
    o.route("/noext/hls", lambda h, s: h.answer(
        200, {"Content-Type": "application/vnd.apple.mpegurl"}, HLS))
    o.route("/noext/bin", lambda h, s: h.answer(
        200, {"Content-Type": "application/octet-stream"}, MP4))
    o.route("/noext/what", lambda h, s: h.answer(200, {"Content-Type": "text/plain"}, b"hi"))
    yield o
    o.close()


@pytest.fixture(scope="module")
def st(request, origin):
    cfg = make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                      media={"fixed": {"provider": "direct",
                                       "source": {"url": origin.url("/files/a.mp4")}}})
    yield from module_stack(request, cfg)


def post(st, item, headers=ADMIN):
    return st.request("POST", "/api/media", headers=headers, body=item)


def source(st, mid):
    r = st.get(f"/api/media/{mid}/source")
    assert r.status == 200, r
    return json.loads(r.body)


def test_register_read_source_delete(st, origin):
    r = post(st, {"provider": "direct", "title": "A film",
                  "source": {"url": origin.url("/files/a.mp4")}})
    assert r.status == 201, r
    item = json.loads(r.body)
    mid = item["id"]
    assert len(mid) == 12 and item["provider"] == "direct" and item["title"] == "A film"
    assert item["source_url"] == f"/api/media/{mid}/source"
    # The item: its source (which may hold headers and cookies) for the admin only.
    pub = json.loads(st.get(f"/api/media/{mid}").body)
    assert pub["id"] == mid and "source" not in pub and pub["read_only"] is False
    adm = json.loads(st.get(f"/api/media/{mid}", headers=ADMIN).body)
    assert adm["source"] == {"url": origin.url("/files/a.mp4")}
    ms = source(st, mid)
    assert ms["mode"] == "proxy" and ms["video_type"] == "mp4" and ms["title"] == "A film"
    assert ms["url"] == st.url(f"/api/proxy/media/{mid}")
    assert ms["more_sources"] == [] and ms["subtitles"] == {}
    body = raw_get(st.port, f"/api/proxy/media/{mid}")
    assert body.status == 200 and body.body == MP4
    r = st.request("DELETE", f"/api/media/{mid}", headers=ADMIN)
    assert r.status == 204, r
    assert_json_error(st.get(f"/api/media/{mid}/source"), 404, "not_found")


def test_given_id_conflicts_and_bad_items(st, origin):
    good = {"provider": "direct", "source": {"url": origin.url("/files/a.mp4")}}
    assert post(st, {**good, "id": "my-film"}).status == 201
    assert_json_error(post(st, {**good, "id": "my-film"}), 409, "conflict")
    assert_json_error(post(st, {**good, "id": "fixed"}), 409, "conflict")
    assert_json_error(post(st, {**good, "id": "bad id!"}), 400, "bad_request")
    err = assert_json_error(post(st, {"provider": "nope", "source": {}}), 400, "bad_request")
    assert "provider" in err["message"]
    err = assert_json_error(post(st, {"provider": "direct", "source": {"url": "ftp://x/a"}}),
                            400, "bad_request")
    assert "source.url" in err["message"], err
    assert_json_error(post(st, {**good, "color": "red"}), 400, "bad_request")
    assert_json_error(st.request("POST", "/api/media", headers=ADMIN, body="not json"),
                      400, "bad_request")
    assert_json_error(post(st, {**good, "title": "x" * 70000}), 413, "payload_too_large")
    assert_json_error(post(st, good, headers={}), 401, "unauthorized")
    # Items of the configuration are read-only.
    assert_json_error(st.request("DELETE", "/api/media/fixed", headers=ADMIN), 405,
                      "method_not_allowed")
    assert json.loads(st.get("/api/media/fixed").body)["read_only"] is True


@pytest.mark.parametrize("path,vtype,route", [
    ("/noext/hls", "hls", "/index.m3u8"),
    ("/noext/bin", "mp4", None),
])
def test_type_is_sniffed_when_the_url_does_not_say(st, origin, path, vtype, route):
    mid = json.loads(post(st, {"provider": "direct",
                               "source": {"url": origin.url(path)}}).body)["id"]
    ms = source(st, mid)
    assert ms["video_type"] == vtype, ms
    assert ms["url"] == (st.url(f"/api/media/{mid}{route}") if route
                         else st.url(f"/api/proxy/media/{mid}"))
    # The sniff asked for the first bytes only.
    assert origin.requests_to(path)[-1].headers["Range"] == "bytes=0-1023"


def test_unknown_type_is_null_and_proxied(st, origin):
    mid = json.loads(post(st, {"provider": "direct",
                               "source": {"url": origin.url("/noext/what")}}).body)["id"]
    ms = source(st, mid)
    assert ms["video_type"] is None and ms["url"] == st.url(f"/api/proxy/media/{mid}")


def test_mode_from_settings_and_headers(st, origin):
    plain = json.loads(post(st, {"provider": "direct",
                                 "source": {"url": origin.url("/files/a.mp4")}}).body)["id"]
    with_ref = json.loads(post(st, {"provider": "direct", "source": {
        "url": origin.url("/files/a.mp4"),
        "headers": {"Referer": "https://site.example/"}}}).body)["id"]
    st.redis_cli("HSET", "mr:settings", "proxy.enable_direct", "0")
    try:
        ms = source(st, plain)
        assert ms["mode"] == "direct" and ms["url"] == origin.url("/files/a.mp4")
        # A Referer is a header a page cannot send: still through the relay.
        assert source(st, with_ref)["mode"] == "proxy"
        st.redis_cli("HSET", "mr:settings", "proxy.enable_direct", "true")
        assert source(st, plain)["mode"] == "proxy"
    finally:
        st.redis_cli("HDEL", "mr:settings", "proxy.enable_direct")


def test_resolve_endpoint(st, origin):
    q = "/api/resolve?url=" + origin.url("/files/a.mp4").replace(":", "%3A").replace("/", "%2F")
    assert_json_error(st.get(q), 401, "unauthorized")
    r = st.get(q, headers=ADMIN)
    assert r.status == 200, r
    ms = json.loads(r.body)
    assert ms["provider"] == "direct" and ms["id"].startswith("u-")
    assert ms["url"] == st.url(f"/api/proxy/media/{ms['id']}")
    assert raw_get(st.port, f"/api/proxy/media/{ms['id']}").body == MP4
    # The same URL: the same id.
    assert json.loads(st.get(q, headers=ADMIN).body)["id"] == ms["id"]
    assert_json_error(st.get("/api/resolve", headers=ADMIN), 400, "bad_request")
    assert_json_error(st.get("/api/resolve?url=ftp%3A%2F%2Fx%2Fa.mp4", headers=ADMIN), 400,
                      "bad_request")


def test_named_sources_that_do_not_exist(st, origin):
    assert_json_error(st.get("/api/proxy/media/fixed?t=1080p"), 404, "not_found")
    assert_json_error(st.get("/api/proxy/media/fixed?t=sub%3Aen"), 404, "not_found")


def test_open_resolve(request, origin):
    from conftest import Stack, _finish
    s = Stack(make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                          resolve={"open": True}))
    try:
        s.start()
        q = "/api/resolve?url=" + origin.url("/files/a.mp4").replace(":", "%3A").replace(
            "/", "%2F")
        assert s.get(q).status == 200
    finally:
        _finish(s, False)


def test_registration_needs_redis(request, origin):
    from conftest import Stack, _finish
    s = Stack(make_config(upstream={"allow_networks": ["127.0.0.1/32"]}), no_redis=True)
    try:
        s.start()
        r = s.request("POST", "/api/media", headers=ADMIN, body={
            "provider": "direct", "source": {"url": origin.url("/files/a.mp4")}})
        assert_json_error(r, 503, "unavailable")
    finally:
        _finish(s, False)
