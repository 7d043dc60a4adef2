"""GET /api/resolve?url= for anyone (resolve.open), bounded: a client that
iterates URLs spends its budget (resolve.open_client_budget per
open_window_s, 429 with Retry-After beyond) and the items anonymous clients
make are kept at resolve.open_max_items, least recently used first out.
yt-dlp is a script that logs each run and prints canned JSON."""

import urllib.parse

import pytest

from conftest import ADMIN, assert_json_error, make_config

FAKE = r"""#!/bin/sh
for a in "$@"; do url=$a; done
printf '%s\n' "$url" >> "@LOG@"
printf '{"title":"canned","ext":"mp4","protocol":"http","url":"%s"}\n' "$url"
"""
BUDGET = 5
WINDOW_S = 3600
MAX_ITEMS = 12


@pytest.fixture
def fake(tmp_path):
    log = tmp_path / "runs.log"
    log.write_text("")
    path = tmp_path / "yt-dlp"
    path.write_text(FAKE.replace("@LOG@", str(log)))
    path.chmod(0o755)
    return path, log


def config(fake_path, **resolve):
    return make_config(resolve={"open": True, "open_client_budget": BUDGET,
                                "open_window_s": WINDOW_S, "open_max_items": MAX_ITEMS,
                                **resolve},
                       server={"trusted_proxies": ["127.0.0.1"]},
                       providers={"ytdlp": {"path": str(fake_path), "timeout_s": 10}})


def page(i):
    # No media extension: the ytdlp provider's, as any page would be.
    return f"http://127.0.0.1:9/page/{i}"


def resolve(st, url, client=None, headers=None):
    h = dict(headers or {})
    if client:
        h["X-Forwarded-For"] = client
    return st.get("/api/resolve?url=" + urllib.parse.quote(url, safe=""), headers=h, timeout=30)


def runs(log):
    return len(log.read_text().splitlines())


def keys(st, pattern):
    out = st.redis_cli("--scan", "--pattern", pattern)
    return [k for k in out.splitlines() if k]


def test_a_client_iterating_urls_is_bounded(stack, fake):
    path, log = fake
    st = stack(config(path))
    got = [resolve(st, page(i), client="198.51.100.1") for i in range(200)]
    assert [r.status for r in got[:BUDGET]] == [200] * BUDGET, got[:BUDGET]
    for r in got[BUDGET:]:
        err = assert_json_error(r, 429, "too_many_requests")
        assert "198.51.100.1" in err["message"] and "open_client_budget" in err["message"], err
        # The next one is a window / budget away (12 minutes here).
        assert 0 < int(r.header("Retry-After")) <= WINDOW_S // BUDGET, r
    assert runs(log) == BUDGET
    assert len(keys(st, "mr:media:u-*")) == BUDGET
    assert len(keys(st, "mr:url:ytdlp:u-*")) == BUDGET
    assert keys(st, "mr:rl:open:*") == ["mr:rl:open:198.51.100.1"]
    # What was resolved is answered from the cache, free, budget or not.
    again = resolve(st, page(0), client="198.51.100.1")
    assert again.status == 200 and again.json["id"] == got[0].json["id"], again
    assert runs(log) == BUDGET
    # Another client has its own budget; the admin has none.
    assert resolve(st, page(500), client="198.51.100.2").status == 200
    assert resolve(st, page(501), client="198.51.100.1", headers=ADMIN).status == 200
    assert runs(log) == BUDGET + 2


def test_anonymous_items_are_kept_at_open_max_items(stack, fake):
    path, log = fake
    st = stack(config(path))
    ids = []
    for i in range(40):
        r = resolve(st, page(i), client=f"198.51.100.{i + 1}")
        assert r.status == 200, r
        ids.append(r.json["id"])
    assert runs(log) == 40
    assert st.redis_cli("ZCARD", "mr:adhoc") == str(MAX_ITEMS)
    assert len(keys(st, "mr:media:u-*")) == MAX_ITEMS
    assert len(keys(st, "mr:url:ytdlp:u-*")) <= MAX_ITEMS
    # The oldest went; the newest are there and served from the cache.
    assert_json_error(st.get(f"/api/media/{ids[0]}/source"), 404, "not_found")
    assert st.get(f"/api/media/{ids[-1]}/source").status == 200
    assert runs(log) == 40
    # Asking again for one that went: registered and resolved anew.
    assert resolve(st, page(0), client="198.51.100.1").status == 200
    assert runs(log) == 41
    assert st.redis_cli("ZCARD", "mr:adhoc") == str(MAX_ITEMS)
    # An item the admin registered is not the anonymous clients' to evict,
    # even when they ask for it too.
    adm = resolve(st, page(900), headers=ADMIN)
    assert adm.status == 200, adm
    assert resolve(st, page(900), client="203.0.113.200").status == 200
    for i in range(MAX_ITEMS + 2):
        assert resolve(st, page(1000 + i), client=f"203.0.113.{i + 1}").status == 200
    assert st.get(f"/api/media/{adm.json['id']}/source").status == 200
    assert st.redis_cli("ZSCORE", "mr:adhoc", f"ytdlp:{adm.json['id']}") == ""


def test_forwarded_for_is_believed_only_from_trusted_proxies(stack, fake):
    path, log = fake
    st = stack(config(path) | {"server": {"trusted_proxies": []}})
    got = [resolve(st, page(i), client=f"198.51.100.{i + 1}") for i in range(BUDGET + 3)]
    assert [r.status for r in got] == [200] * BUDGET + [429] * 3, got
    err = assert_json_error(got[-1], 429, "too_many_requests")
    assert "127.0.0.1" in err["message"], err
    assert runs(log) == BUDGET


def test_without_redis_open_resolve_is_503(stack, fake):
    path, log = fake
    st = stack(config(path), no_redis=True)
    assert_json_error(resolve(st, page(1), client="198.51.100.1"), 503, "unavailable")
    assert runs(log) == 0


def test_budget_zero_leaves_only_the_item_bound(stack, fake):
    path, log = fake
    st = stack(config(path, open_client_budget=0))
    for i in range(BUDGET + 5):
        assert resolve(st, page(i), client="198.51.100.1").status == 200
    assert runs(log) == BUDGET + 5
    assert keys(st, "mr:rl:open:*") == []
