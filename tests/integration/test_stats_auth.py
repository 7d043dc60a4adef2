"""Who may read the counters: GET /api/stats and GET /metrics need the admin
token or metrics_token (Prometheus' bearer auth); metrics_token opens nothing
else.  Without credentials, or with wrong ones, the answer is the admin
routes' own: a JSON 401 with WWW-Authenticate: Bearer."""

import pytest

from conftest import ADMIN, ADMIN_TOKEN, assert_json_error, make_config
from proxyutil import module_stack

METRICS_TOKEN = "prometheus-scraper-0123456789abcdef0123"
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}
ROUTES = ["/api/stats", "/metrics"]
WRONG = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN},
         {"Authorization": f"Basic {METRICS_TOKEN}"},
         {"Authorization": f"Bearer {METRICS_TOKEN}x"},
         {"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"},
         {"Authorization": "Bearer "}]


@pytest.fixture(scope="module")
def st(request):
    yield from module_stack(request, make_config(metrics_token=METRICS_TOKEN))


def check_answer(path, r):
    assert r.status == 200, r
    if path == "/metrics":
        assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r
        assert b"mediarelay_redis_up 1" in r.body, r.body[:500]
    else:
        assert r.json["redis"] == "ok" and "total" in r.json, r


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("headers", WRONG)
def test_refused_without_the_right_token(st, path, headers):
    r = st.get(path, headers=headers)
    err = assert_json_error(r, 401, "unauthorized")
    assert "metrics_token" in err["message"], err
    assert r.header("WWW-Authenticate") == "Bearer", r
    assert b"mediarelay_" not in r.body and b"total" not in r.body, r


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("headers", [ADMIN, METRICS, {"Authorization": f"bearer {METRICS_TOKEN}"}])
def test_read_with_admin_or_metrics_token(st, path, headers):
    check_answer(path, st.get(path, headers=headers))


@pytest.mark.parametrize("path", ROUTES)
def test_head_needs_it_too(st, path):
    assert st.request("HEAD", path).status == 401
    assert st.request("HEAD", path, headers=METRICS).status == 200


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/api/media", {"provider": "direct", "source": {"url": "http://127.0.0.1:9/a.mp4"}}),
    ("DELETE", "/api/media/intro", None),
    ("POST", "/api/proxy/sign", {"url": "http://127.0.0.1:9/a.mp4", "ttl_s": 60}),
    ("GET", "/api/resolve?url=http%3A%2F%2F127.0.0.1%3A9%2Fa.mp4", None),
])
def test_metrics_token_opens_nothing_else(st, method, path, body):
    assert_json_error(st.request(method, path, headers=METRICS, body=body), 401, "unauthorized")


def test_admin_token_is_not_the_metrics_token(st):
    # The media item's source (headers, cookies) is shown to the admin only.
    r = st.get("/api/media/intro", headers=METRICS)
    assert r.status == 200 and "source" not in r.json, r
    r = st.get("/api/media/intro", headers=ADMIN)
    assert r.status == 200 and "source" in r.json, r


def test_without_metrics_token_only_the_admin_reads(stack):
    s = stack(make_config())
    for path in ROUTES:
        assert_json_error(s.get(path), 401, "unauthorized")
        assert_json_error(s.get(path, headers=METRICS), 401, "unauthorized")
        check_answer(path, s.get(path, headers=ADMIN))


def test_metrics_token_without_admin_token(stack):
    s = stack(make_config(admin_token="", metrics_token=METRICS_TOKEN))
    for path in ROUTES:
        check_answer(path, s.get(path, headers=METRICS))
        assert_json_error(s.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}),
                          401, "unauthorized")
        assert_json_error(s.get(path, headers={"Authorization": "Bearer "}), 401, "unauthorized")
