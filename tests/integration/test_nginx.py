"""contrib/nginx/mediarelay.conf: body limits and nginx's own errors in the API's shape."""

from conftest import ADMIN_TOKEN, assert_json_error


def test_api_body_limit(shared_stack):
    resp = shared_stack.request("POST", "/api/media", body=b"x" * (100 * 1024),
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                         "Content-Type": "application/json"})
    assert_json_error(resp, 413, "payload_too_large")


def test_api_body_below_limit_reaches_the_app(shared_stack):
    resp = shared_stack.request("POST", "/api/media", body=b"x" * (32 * 1024),
                                headers={"Content-Type": "application/json"})
    assert resp.status != 413, resp


def test_stream_body_limit(shared_stack):
    resp = shared_stack.request("POST", "/stream?url=x", body=b"x" * 4096)
    assert_json_error(resp, 413, "payload_too_large")


def test_no_version_in_server_header(shared_stack):
    resp = shared_stack.get("/api/health")
    assert resp.header("Server") in (None, "nginx"), resp
