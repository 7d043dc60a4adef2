"""CORS: headers on every answer (errors too), preflights, an origin allow-list."""

import pytest

from conftest import ADMIN, make_config

EXPOSED = {"content-range", "content-length", "accept-ranges"}

# (method, path, extra headers): successes and errors from each executable.
ANSWERS = [
    ("GET", "/api/health", {}),
    ("GET", "/api/health/m3u8", {}),
    ("GET", "/api/health/segment", {}),
    ("GET", "/api/health/proxy", {}),
    ("GET", "/api/nope", {}),
    ("PUT", "/api/health", {}),
    ("GET", "/api/media/nope/source", {}),
    ("GET", "/api/media/intro/source", {}),
    ("POST", "/api/media", {}),
    ("GET", "/api/media/nope/index.m3u8", {}),
    ("GET", "/live/news.m3u8", {}),
    ("GET", "/api/seg/abc.ts", {}),
    ("HEAD", "/api/seg/abc.ts", {}),
    ("GET", "/api/proxy/media/nope", {}),
    ("GET", "/stream?url=http%3A%2F%2F127.0.0.1%3A9%2Fx", {}),
    ("GET", "/metrics", {}),
    ("GET", "/api/stats", ADMIN),
]


@pytest.mark.parametrize("method,path,headers", ANSWERS)
def test_cors_headers_on_every_answer(shared_stack, method, path, headers):
    resp = shared_stack.request(method, path, headers={"Origin": "https://player.example", **headers})
    assert resp.header("Access-Control-Allow-Origin") == "*", resp
    assert EXPOSED <= resp.header_tokens("Access-Control-Expose-Headers"), resp


@pytest.mark.parametrize("path", ["/api/proxy/media/intro", "/api/health", "/api/media/intro/source",
                                  "/api/media/intro/index.m3u8", "/api/seg/abc.ts",
                                  "/stream?url=http%3A%2F%2F127.0.0.1%3A9%2Fx"])
def test_preflight(shared_stack, path):
    resp = shared_stack.request("OPTIONS", path, headers={
        "Origin": "https://player.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range",
    })
    assert resp.status == 204, resp
    assert resp.header("Access-Control-Allow-Origin") == "*", resp
    assert "GET" in {m.upper() for m in resp.header_tokens("Access-Control-Allow-Methods")}, resp
    assert "range" in resp.header_tokens("Access-Control-Allow-Headers"), resp
    max_age = resp.header("Access-Control-Max-Age")
    assert max_age and max_age.strip().isdigit() and int(max_age) > 0, resp


def test_preflight_for_admin_api(shared_stack):
    resp = shared_stack.request("OPTIONS", "/api/media", headers={
        "Origin": "https://admin.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert resp.status == 204, resp
    assert resp.header("Access-Control-Allow-Origin") == "*", resp
    assert {"authorization", "content-type"} <= resp.header_tokens("Access-Control-Allow-Headers"), resp


@pytest.fixture(scope="module")
def listed_origin_stack(request):
    from conftest import Stack, _finish
    s = Stack(make_config(cors={"allow_origin": ["https://a.example"]}))
    s.start()
    failed_before = request.session.testsfailed
    yield s
    _finish(s, request.session.testsfailed > failed_before)


@pytest.mark.parametrize("method,path", [("GET", "/api/health"), ("GET", "/api/health/proxy"),
                                         ("GET", "/api/nope"), ("GET", "/api/seg/abc.ts")])
def test_listed_origin_is_echoed(listed_origin_stack, method, path):
    resp = listed_origin_stack.request(method, path, headers={"Origin": "https://a.example"})
    assert resp.header("Access-Control-Allow-Origin") == "https://a.example", resp
    assert "origin" in resp.header_tokens("Vary"), resp


@pytest.mark.parametrize("method,path", [("GET", "/api/health"), ("GET", "/api/health/segment"),
                                         ("GET", "/api/nope")])
def test_other_origin_gets_no_allow_origin(listed_origin_stack, method, path):
    resp = listed_origin_stack.request(method, path, headers={"Origin": "https://b.example"})
    assert resp.header("Access-Control-Allow-Origin") is None, resp


def test_listed_origin_preflight(listed_origin_stack):
    headers = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"}
    ok = listed_origin_stack.request("OPTIONS", "/api/proxy/media/intro",
                                     headers={"Origin": "https://a.example", **headers})
    assert ok.status == 204, ok
    assert ok.header("Access-Control-Allow-Origin") == "https://a.example", ok
    assert "origin" in ok.header_tokens("Vary"), ok
    other = listed_origin_stack.request("OPTIONS", "/api/proxy/media/intro",
                                        headers={"Origin": "https://b.example", **headers})
    assert other.header("Access-Control-Allow-Origin") is None, other
