"""Routing and the JSON error shape: 404, 405, 401 from the right executable."""

import base64

import pytest

from conftest import ADMIN_TOKEN, assert_json_error

MEDIA_ITEM = {"provider": "direct", "source": {"url": "http://127.0.0.1:9/a.mp4"}}


@pytest.mark.parametrize("path", ["/api/nope", "/api/health/nope", "/api/media/intro/nope",
                                  "/api/seg", "/api/m3u8", "/api/proxy", "/live", "/api/seg/",
                                  "/live/", "/nope"])
def test_unknown_path_is_not_found(shared_stack, path):
    assert_json_error(shared_stack.get(path), 404, "not_found")


@pytest.mark.parametrize("method,path", [
    ("PUT", "/api/health"),
    ("DELETE", "/api/stats"),
    ("POST", "/api/health/m3u8"),
    ("PUT", "/api/health/segment"),
    ("DELETE", "/api/health/proxy"),
])
def test_wrong_method(shared_stack, method, path):
    resp = shared_stack.request(method, path)
    assert_json_error(resp, 405, "method_not_allowed")
    assert "GET" in {m.upper() for m in resp.header_tokens("Allow")}, resp


@pytest.mark.parametrize("path", ["/api/media/nope/source", "/api/media/nope/index.m3u8",
                                  "/api/media/nope/manifest.mpd", "/api/proxy/media/nope"])
def test_unknown_media_is_not_found(shared_stack, path):
    assert_json_error(shared_stack.get(path), 404, "not_found")


def test_media_from_config(shared_stack):
    r = shared_stack.get("/api/media/intro/source")
    assert r.status == 200, r


def test_media_from_redis(shared_stack):
    import json
    shared_stack.redis_cli("SET", "mr:media:fromredis", json.dumps(MEDIA_ITEM))
    r = shared_stack.get("/api/media/fromredis/source")
    assert r.status == 200, r
    assert json.loads(r.body)["id"] == "fromredis"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": ADMIN_TOKEN},
                                     {"Authorization": "Basic " + base64.b64encode(
                                         ADMIN_TOKEN.encode()).decode()}])
def test_admin_needs_token(shared_stack, headers):
    resp = shared_stack.request("POST", "/api/media", headers=headers, body=MEDIA_ITEM)
    assert_json_error(resp, 401, "unauthorized")


def test_admin_with_token(shared_stack):
    resp = shared_stack.request("POST", "/api/media", body=MEDIA_ITEM,
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert resp.status == 201, resp


@pytest.mark.parametrize("path,status,code", [
    ("/api/m3u8/x.m3u8", 403, "forbidden"),          # not a token
    ("/api/seg/abc.ts", 403, "forbidden"),
    ("/live/news.m3u8", 404, "not_found"),           # no such channel
])
def test_hls_routes_refuse_bad_input(shared_stack, path, status, code):
    assert_json_error(shared_stack.get(path), status, code)
