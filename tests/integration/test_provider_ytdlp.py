"""The ytdlp provider (issue 6) on the real stack: yt-dlp (Debian's, when it is
installed) on a local mp4 and HLS stream served by nginx, played through the
relay; and, always, through a wrapper script as providers.ytdlp.path that
counts its runs and prints canned JSON (or runs the real yt-dlp): the URL
cache (one run for 20 concurrent requests, a refresh while the old link is
served, forgetting on DELETE, the per-process cache without Redis), the
timeout (504, nothing left running), a failing run (502), output over the cap
(502), a missing executable (503), and a URL full of shell metacharacters
that reaches yt-dlp as one argument and never a shell."""

import json
import os
import shutil
import subprocess
import threading
import urllib.parse
import uuid

import pytest

from conftest import (ADMIN_TOKEN, assert_json_error, make_config, processes_mentioning,
                      wait_until)
from proxyutil import NginxOrigin, module_stack, path_of, q, raw_get

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# MR_TEST_NO_YTDLP=1 runs the suite as on a machine without yt-dlp (canned JSON).
YTDLP = None if os.environ.get("MR_TEST_NO_YTDLP") else shutil.which("yt-dlp")
FFMPEG = shutil.which("ffmpeg")
needs_ytdlp = pytest.mark.skipif(not YTDLP, reason="yt-dlp is not installed (Debian: yt-dlp)")

# Refresh timing (see test_refresh_serves_the_old_link): a link that lives
# LINK_S seconds, refreshed MARGIN_S before its end.  The resolver keeps a
# resolution until 10 s before the link's end and refreshes it from
# max(end - margin, a quarter of its life): with 26 and 13 the refresh window is
# [13 s, 16 s) after the resolution.
LINK_S = 26
MARGIN_S = 13

WRAPPER = r"""#!/bin/sh
# A stand-in for yt-dlp: logs the URL it was given (its last argument), then
# acts by the URL.  Never evaluates the URL.
for a in "$@"; do url=$a; done
printf '%s\n' "$url" >> "@LOG@"
printf '%s\n' "$*" >> "@LOG@.argv"
case $url in
*/slow/*)
    sleep 3607
    exit 0 ;;
*/slowfail/*)
    sleep 1
    echo "ERROR: [generic] slow failure" >&2
    exit 4 ;;
*/fail/*)
    echo "WARNING: [generic] a warning first" >&2
    printf 'ERROR: [generic] simulated failure \033[31mred\001\n' >&2
    exit 3 ;;
*/huge/*)
    head -c 3000000 /dev/zero | tr '\0' ' '
    echo '{}'
    exit 0 ;;
*/garbage/*)
    echo 'this is not json'
    exit 0 ;;
*ttl=*)
    sleep 1
    link="${url%%\?*}?deadline=$(( $(date +%s) + @LINK_S@ ))"
    printf '{"title":"canned","ext":"mp4","protocol":"http","url":"%s"}\n' "$link"
    exit 0 ;;
esac
if [ -n "@REAL@" ]; then
    exec "@REAL@" "$@"
fi
sleep 1
printf '{"title":"canned","ext":"mp4","protocol":"http","url":"%s","formats":[{"url":"%s","ext":"mp4","protocol":"http"}]}\n' "$url" "$url"
"""


def make_wrapper(dirpath, real=YTDLP):
    """A wrapper script named with a unique marker; (path, log path, marker)."""
    marker = "mr-ytdlp-" + uuid.uuid4().hex[:12]
    path = dirpath / marker
    log = dirpath / (marker + ".log")
    path.write_text(WRAPPER.replace("@LOG@", str(log)).replace("@REAL@", real or "")
                    .replace("@LINK_S@", str(LINK_S)))
    path.chmod(0o755)
    log.write_text("")
    return path, log, marker


def runs(log, url):
    """How many times the wrapper ran for url."""
    return sum(1 for line in log.read_text().splitlines() if line == url)


def make_media(tmp):
    """An mp4 (4 s, H.264 + AAC) and an HLS copy of it, made with ffmpeg."""
    www = tmp / "www"
    (www / "hls").mkdir(parents=True, exist_ok=True)
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-t", "4",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-movflags", "+faststart", str(www / "a.mp4")],
                   check=True, timeout=120, stdin=subprocess.DEVNULL)
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                    "-i", str(www / "a.mp4"), "-c", "copy", "-f", "hls", "-hls_time", "1",
                    "-hls_list_size", "0", "-hls_segment_filename", str(www / "hls" / "s%d.ts"),
                    str(www / "hls" / "index.m3u8")],
                   check=True, timeout=120, stdin=subprocess.DEVNULL)
    return (www / "a.mp4").read_bytes()


@pytest.fixture(scope="module")
def env(request, tmp_path_factory):
    if not FFMPEG:
        pytest.skip("ffmpeg is not installed")
    tmp = tmp_path_factory.mktemp("ytdlp")
    origin = NginxOrigin(tmp / "origin")
    mp4 = make_media(origin.dir)
    wrapper, log, marker = make_wrapper(tmp)
    # A file without an extension, with the type only in Content-Type.
    extra = origin.nginx_conf(extra_locations="""
    location = /noext { types { } default_type video/mp4; alias %s/www/a.mp4; }
    location /slow/ { return 404; }
""" % origin.dir)
    cfg = make_config(resolve={"refresh_margin_s": MARGIN_S},
                      providers={"ytdlp": {"path": str(wrapper), "timeout_s": 8,
                                           "max_output_bytes": 1 << 20}})
    gen = module_stack(request, cfg, extra_nginx=extra)
    st = next(gen)
    st.origin, st.mp4, st.wrapper, st.runlog, st.marker, st.tmp = (origin, mp4, wrapper, log,
                                                                     marker, tmp)
    yield st
    try:
        next(gen)
    except StopIteration:
        pass


def post(st, url, **extra):
    r = st.request("POST", "/api/media", headers=ADMIN,
                   body={"provider": "ytdlp", "source": {"url": url}, **extra})
    assert r.status == 201, r
    return r.json["id"]


def source(st, mid):
    r = st.get(f"/api/media/{mid}/source", timeout=30)
    assert r.status == 200, (r, st.runlog.read_text()[-2000:])
    return r.json


def concurrently(n, fn):
    """fn(i) in n threads started together; the results in order."""
    out = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait(timeout=30)
        try:
            out[i] = fn(i)
        except Exception as e:     # noqa: BLE001 - reported by the test
            out[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


# --- the real yt-dlp ---------------------------------------------------------------

@needs_ytdlp
def test_mp4_through_the_relay(env):
    url = env.origin.url("/a.mp4?real=1")
    mid = post(env, url)
    ms = source(env, mid)
    assert ms["provider"] == "ytdlp" and ms["mode"] == "proxy", ms
    assert ms["video_type"] == "mp4", ms
    assert ms["url"] == env.url(f"/api/proxy/media/{mid}"), ms
    assert ms["title"] == "a", ms
    body = raw_get(env.port, f"/api/proxy/media/{mid}")
    assert body.status == 200 and body.body == env.mp4, body
    part = raw_get(env.port, f"/api/proxy/media/{mid}", headers={"Range": "bytes=100-1099"})
    assert part.status == 206 and part.body == env.mp4[100:1100], part
    assert part.headers["content-range"] == f"bytes 100-1099/{len(env.mp4)}"
    # yt-dlp's User-Agent (its http_headers) went upstream; its Accept and
    # Sec-Fetch-Mode did not matter.
    assert any("/a.mp4?real=1" in ln and "Mozilla/5.0" in ln
               for ln in env.origin.log_lines()), env.origin.log_lines()


@needs_ytdlp
def test_hls_through_the_relay(env):
    mid = post(env, env.origin.url("/hls/index.m3u8"), title="The HLS one")
    ms = source(env, mid)
    assert ms["video_type"] == "hls" and ms["mode"] == "proxy", ms
    assert ms["url"] == env.url(f"/api/media/{mid}/index.m3u8"), ms
    assert ms["title"] == "The HLS one"
    pl = env.get(f"/api/media/{mid}/index.m3u8")
    assert pl.status == 200 and pl.body.startswith(b"#EXTM3U"), pl
    assert b"/api/seg/" in pl.body and env.origin.host.encode() not in pl.body, pl.body
    r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", ms["url"],
                        "-map", "0", "-c", "copy", "-f", "null", "-"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr


@needs_ytdlp
def test_resolve_endpoint_picks_ytdlp_last(env):
    # A URL with a media extension is direct's; one without goes to yt-dlp.
    r = env.get("/api/resolve?url=" + q(env.origin.url("/a.mp4")), headers=ADMIN)
    assert r.status == 200 and r.json["provider"] == "direct", r
    url = env.origin.url("/noext")
    r = env.get("/api/resolve?url=" + q(url), headers=ADMIN, timeout=30)
    assert r.status == 200, r
    ms = r.json
    assert ms["provider"] == "ytdlp" and ms["video_type"] == "mp4", ms
    assert ms["url"] == env.url(f"/api/proxy/media/{ms['id']}"), ms
    body = raw_get(env.port, path_of(ms["url"]))
    assert body.status == 200 and body.body == env.mp4
    # Without the admin token: closed.
    assert_json_error(env.get("/api/resolve?url=" + q(url)), 401, "unauthorized")


# --- the cache (wrapper: the real yt-dlp behind it, or canned JSON) -----------------

def test_one_run_for_20_concurrent_requests_and_forget_on_delete(env):
    url = env.origin.url("/a.mp4?case=concurrent")
    mid = post(env, url, id="yt-concurrent")
    got = concurrently(20, lambda i: env.get(f"/api/media/{mid}/source", timeout=60))
    assert all(getattr(r, "status", None) == 200 for r in got), got
    assert {r.json["url"] for r in got} == {env.url(f"/api/proxy/media/{mid}")}
    assert runs(env.runlog, url) == 1
    got = concurrently(20, lambda i: env.get(f"/api/media/{mid}/source", timeout=60))
    assert all(getattr(r, "status", None) == 200 for r in got), got
    assert runs(env.runlog, url) == 1
    assert env.redis_cli("EXISTS", f"mr:url:ytdlp:{mid}") == "1"
    # DELETE drops the cached resolution with the item.
    assert env.request("DELETE", f"/api/media/{mid}", headers=ADMIN).status == 204
    assert env.redis_cli("EXISTS", f"mr:url:ytdlp:{mid}") == "0"
    assert post(env, url, id="yt-concurrent") == mid
    source(env, mid)
    assert runs(env.runlog, url) == 2


def test_refresh_serves_the_old_link(env):
    """Inside the refresh window, the requests are answered from the cached
    link while exactly one of them runs yt-dlp again."""
    url = env.origin.url("/a.mp4?ttl=1")
    mid = post(env, url)
    first = env.get(f"/api/media/{mid}/source", timeout=30)
    assert first.status == 200, first
    assert runs(env.runlog, url) == 1
    cached = json.loads(env.redis_cli("GET", f"mr:url:ytdlp:{mid}"))
    assert "deadline=" in cached["url"] and cached["expire_at"] == int(
        urllib.parse.parse_qs(urllib.parse.urlsplit(cached["url"]).query)["deadline"][0])
    # Still fresh: cached.
    assert env.get(f"/api/media/{mid}/source").status == 200
    assert runs(env.runlog, url) == 1
    # Ten at a time, until the refresh window [LINK_S - MARGIN_S, LINK_S - 10) s
    # after the resolution: every answer from the cache, one run of yt-dlp.
    wait_until(lambda: refreshed_in_window(env, env.runlog, url, mid, 10),
               timeout=2 * LINK_S, interval=1, what="a refresh inside the window")
    # The refreshed link is in the cache, with a later deadline; one run made it.
    again = wait_until(lambda: (lambda c: c if c["expire_at"] > cached["expire_at"] else None)(
        json.loads(env.redis_cli("GET", f"mr:url:ytdlp:{mid}"))), what="the refreshed link")
    assert runs(env.runlog, url) == 2
    body = raw_get(env.port, f"/api/proxy/media/{mid}")
    assert body.status == 200 and body.body == env.mp4


def refreshed_in_window(st, log, url, mid, n):
    """n requests for mid's source at once, all answered (200); whether yt-dlp
    has run again for url.  An AssertionError when the cached resolution is
    gone without that run (the window passed without a refresh)."""
    got = concurrently(n, lambda i: st.get(f"/api/media/{mid}/source", timeout=30))
    assert all(getattr(r, "status", None) == 200 for r in got), got
    if runs(log, url) >= 2:
        return True
    assert st.redis_cli("EXISTS", f"mr:url:ytdlp:{mid}") == "1", \
        "the resolution lapsed without a refresh inside the margin"
    assert runs(log, url) == 1
    return False


def test_refresh_inside_the_margin_of_a_short_link(env, stack):
    """The design (docs/resolve.md): "Inside the margin, one request
    refreshes it while the others keep using the still-valid old one" -- for deadline=now+20, margin 15,
    6 s in."""
    wrapper = env.tmp / "short-link"
    log = env.tmp / "short-link.log"
    log.write_text("")
    wrapper.write_text(WRAPPER.replace("@LOG@", str(log)).replace("@REAL@", "")
                       .replace("@LINK_S@", "20"))
    wrapper.chmod(0o755)
    st = stack(make_config(resolve={"refresh_margin_s": 15},
                           providers={"ytdlp": {"path": str(wrapper), "timeout_s": 8}}))
    url = env.origin.url("/a.mp4?ttl=short")
    mid = post(st, url)
    assert st.get(f"/api/media/{mid}/source", timeout=30).status == 200
    cached = json.loads(st.redis_cli("GET", f"mr:url:ytdlp:{mid}"))
    # One request at a time until one of them refreshes the link, before
    # the cached resolution goes (10 s before the link's end).
    wait_until(lambda: refreshed_in_window(st, log, url, mid, 1), timeout=30, interval=0.5,
               what="a refresh inside the margin")
    wait_until(lambda: json.loads(st.redis_cli("GET", f"mr:url:ytdlp:{mid}"))["expire_at"]
               > cached["expire_at"], what="the refreshed link in the cache")
    assert runs(log, url) == 2


def test_without_redis_one_run_per_process(env, stack):
    url = env.origin.url("/a.mp4?case=noredis")
    st = stack(make_config(
        media={"nr": {"provider": "ytdlp", "source": {"url": url}}},
        providers={"ytdlp": {"path": str(env.wrapper), "timeout_s": 8}}), no_redis=True)
    got = concurrently(10, lambda i: st.get("/api/media/nr/source", timeout=60))
    assert all(getattr(r, "status", None) == 200 for r in got), got
    assert all(r.json["video_type"] == "mp4" for r in got)
    assert runs(env.runlog, url) == 1
    assert st.get("/api/media/nr/source").status == 200
    assert runs(env.runlog, url) == 1
    assert json.loads(st.get("/api/health").body)["redis"] == "down"


def test_page_address_is_guarded(env, stack):
    """yt-dlp fetches the page itself, past libcurl's SSRF guard: its host is held
    to the guard's rule first, so a page on a private address is refused and
    yt-dlp never runs; allow_networks lets it through."""
    url = env.origin.url("/a.mp4?case=guarded")
    st = stack(make_config(upstream={"allow_private_networks": False},
                           providers={"ytdlp": {"path": str(env.wrapper), "timeout_s": 8}}))
    mid = post(st, url)
    err = assert_json_error(st.get(f"/api/media/{mid}/source", timeout=30), 403,
                            "upstream_blocked")
    assert "not allowed" in err["message"]
    assert runs(env.runlog, url) == 0
    # a name that does not resolve is not a page either
    mid = post(st, "http://no-such-host.invalid/watch?v=1")
    assert_json_error(st.get(f"/api/media/{mid}/source", timeout=30), 502, "upstream_error")
    st2 = stack(make_config(upstream={"allow_private_networks": False,
                                      "allow_networks": ["127.0.0.1/32"]},
                            providers={"ytdlp": {"path": str(env.wrapper), "timeout_s": 8}}))
    mid = post(st2, url)
    assert st2.get(f"/api/media/{mid}/source", timeout=30).status == 200
    assert runs(env.runlog, url) == 1


# --- failures ----------------------------------------------------------------------

def test_timeout_is_504_and_leaves_nothing_running(env, stack, tmp_path):
    wrapper, log, marker = make_wrapper(tmp_path)
    st = stack(make_config(providers={"ytdlp": {"path": str(wrapper), "timeout_s": 2}}))
    mid = post(st, env.origin.url("/slow/x"))
    # yt-dlp would sleep an hour: any answer at all is the 2 s timeout's.
    r = st.get(f"/api/media/{mid}/source", timeout=20)
    assert_json_error(r, 504, "upstream_timeout")
    assert runs(log, env.origin.url("/slow/x")) == 1
    # Neither the wrapper nor its sleep outlives the timeout, and the
    # resolve process has no zombie child.
    assert wait_until(lambda: not processes_mentioning(marker)
                      and not processes_mentioning("sleep 3607"), timeout=5), \
        (processes_mentioning(marker), processes_mentioning("sleep 3607"))
    pid = st.pid("resolve")
    children = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == pid]
    assert children == [], children


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_exit_status_is_502(env):
    url = env.origin.url("/fail/x")
    mid = post(env, url)
    assert_json_error(env.get(f"/api/media/{mid}/source"), 502, "upstream_error")
    # Remembered for resolve.error_ttl_s (5 s): asked again at once, the
    # same answer and message, without a run.
    err = assert_json_error(env.get(f"/api/media/{mid}/source"), 502, "upstream_error")
    assert "simulated failure" in err["message"], err
    assert runs(env.runlog, url) == 1
    # The error line is logged, cleaned of control bytes.
    log = env.log("resolve")
    assert "ERROR: [generic] simulated failure ?[31mred?" in log, log[-2000:]
    assert "\x1b" not in log


def test_one_run_for_20_concurrent_requests_that_fail(env):
    url = env.origin.url("/slowfail/x")
    mid = post(env, url)
    results = concurrently(20, lambda i: env.get(f"/api/media/{mid}/source", timeout=30))
    for r in results:
        err = assert_json_error(r, 502, "upstream_error")
        assert "slow failure" in err["message"], err
    assert runs(env.runlog, url) == 1


def test_a_failure_is_tried_again_after_error_ttl(env, stack):
    st = stack(make_config(resolve={"error_ttl_s": 1},
                           providers={"ytdlp": {"path": str(env.wrapper), "timeout_s": 8}}))
    url = env.origin.url("/fail/again")
    mid = post(st, url)
    assert_json_error(st.get(f"/api/media/{mid}/source"), 502, "upstream_error")
    assert runs(env.runlog, url) == 1
    # Remembered (502 without a run) until error_ttl_s has passed; then run again.
    def asked_again():
        assert_json_error(st.get(f"/api/media/{mid}/source"), 502, "upstream_error")
        return runs(env.runlog, url) >= 2
    wait_until(asked_again, timeout=10, what="yt-dlp run again after error_ttl_s")
    assert runs(env.runlog, url) == 2


def test_exit_status_message_reaches_the_client(env):
    mid = post(env, env.origin.url("/fail/msg"))
    err = assert_json_error(env.get(f"/api/media/{mid}/source"), 502, "upstream_error")
    assert "simulated failure ?[31mred?" in err["message"], err


def test_output_over_the_cap_is_502(env):
    mid = post(env, env.origin.url("/huge/x"))
    assert_json_error(env.get(f"/api/media/{mid}/source", timeout=30), 502, "upstream_error")
    assert "max_output_bytes" in env.log("resolve")


def test_garbage_is_502(env):
    mid = post(env, env.origin.url("/garbage/x"))
    assert_json_error(env.get(f"/api/media/{mid}/source"), 502, "upstream_error")


def test_missing_executable_is_503(env, stack):
    st = stack(make_config(providers={"ytdlp": {"path": "/nonexistent/mr-yt-dlp"}}))
    mid = post(st, env.origin.url("/a.mp4?case=missing"))
    assert_json_error(st.get(f"/api/media/{mid}/source"), 503, "unavailable")
    assert "/nonexistent/mr-yt-dlp" in st.log("resolve") and "not found" in st.log("resolve")


def test_shell_metacharacters_never_reach_a_shell(env):
    pwned = f"/tmp/pwned-{uuid.uuid4().hex[:10]}"
    url = (env.origin.url("/fail/a") + ";touch%20" + pwned + "&&touch%20" + pwned +
           "|touch%20" + pwned + "$(touch%20" + pwned + ")`touch%20" + pwned + "`")
    mid = post(env, url)
    assert_json_error(env.get(f"/api/media/{mid}/source"), 502, "upstream_error")
    # One argument, byte for byte, after "--".
    assert runs(env.runlog, url) == 1
    argv = [ln for ln in (env.runlog.parent / (env.runlog.name + ".argv")).read_text().splitlines()
            if ln.endswith(url)]
    assert argv == ["--ignore-config --no-cache-dir --dump-single-json --no-playlist "
                    "--no-warnings --no-progress -- " + url]
    assert not os.path.exists(pwned)
    if YTDLP:
        # The real yt-dlp too, on a URL of the origin.
        url = env.origin.url("/a;touch%20" + pwned + "$(touch%20" + pwned + ")")
        mid = post(env, url)
        r = env.get(f"/api/media/{mid}/source", timeout=30)
        assert r.status in (200, 502), r
        assert not os.path.exists(pwned)


# --- what yt-dlp gets: flags, environment, a cap on runs in flight ------------------

BLOCKER = r"""#!/bin/sh
# A stand-in for yt-dlp that records its argv and the environment it was
# started with, then waits for @DIR@/release (60 s at most) before printing
# canned JSON.
for a in "$@"; do url=$a; done
echo "$$" >> "@DIR@/started"
printf '%s\n' "$*" > "@DIR@/argv.$$"
tr '\000' '\n' < /proc/$$/environ > "@DIR@/env.$$"
i=0
while [ ! -e "@DIR@/release" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
printf '{"title":"canned","ext":"mp4","protocol":"http","url":"%s"}\n' "$url"
"""


def make_blocker(dirpath):
    d = dirpath / "blocker"
    d.mkdir()
    path = d / "yt-dlp"
    path.write_text(BLOCKER.replace("@DIR@", str(d)))
    path.chmod(0o755)
    (d / "started").write_text("")
    return path, d


def started(d):
    return (d / "started").read_text().split()


def test_runs_in_flight_are_capped_with_a_minimal_environment(env, stack, tmp_path, monkeypatch):
    """providers.ytdlp.max_running 2: of five items asked for at once, two
    run and three are refused at once with 503 and Retry-After; a refusal
    is not remembered as the item's failure.  Each run had the fixed flags
    and an environment of PATH, HOME, LANG: nothing of the server's."""
    for k, v in {"MEDIARELAY_TEST_SECRET": "do-not-leak", "https_proxy": "http://127.0.0.1:9",
                 "PYTHONPATH": "/nonexistent-mr", "XDG_CONFIG_HOME": "/nonexistent-mr"}.items():
        monkeypatch.setenv(k, v)
    wrapper, d = make_blocker(tmp_path)
    st = stack(make_config(providers={"ytdlp": {"path": str(wrapper), "max_running": 2}}))
    ids = [post(st, env.origin.url(f"/a.mp4?cap={i}")) for i in range(5)]
    results = {}

    def get(i):
        results[i] = st.get(f"/api/media/{ids[i]}/source", timeout=90)
    threads = [threading.Thread(target=get, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    try:
        assert wait_until(lambda: len(results) == 3, timeout=30), results
        assert len(started(d)) == 2, started(d)
        refused = sorted(results)
        for i in refused:
            err = assert_json_error(results[i], 503, "overloaded")
            assert "providers.ytdlp.max_running" in err["message"], err
            assert results[i].header("Retry-After").isdigit(), results[i]
    finally:
        (d / "release").touch()
        for t in threads:
            t.join(timeout=60)
    for i in set(range(5)) - set(refused):
        assert results[i].status == 200 and results[i].json["title"] == "canned", results[i]
    assert len(started(d)) == 2
    # Not remembered: asked again, each refused item runs now.
    for i in refused:
        assert st.get(f"/api/media/{ids[i]}/source", timeout=30).status == 200
    assert len(started(d)) == 5
    # The server has the variables; no run had any of them.
    server_env = (f"/proc/{st.pid('resolve')}/environ")
    with open(server_env, "rb") as f:
        assert b"MEDIARELAY_TEST_SECRET=do-not-leak" in f.read()
    for pid in started(d):
        lines = (d / f"env.{pid}").read_text().splitlines()
        assert [ln.split("=", 1)[0] for ln in lines] == ["PATH", "HOME", "LANG"], lines
        assert lines[1:] == ["HOME=/nonexistent", "LANG=C.UTF-8"], lines
        assert (d / f"argv.{pid}").read_text().startswith(
            "--ignore-config --no-cache-dir --dump-single-json "), pid


@needs_ytdlp
def test_config_files_are_ignored(env, stack, tmp_path):
    """yt-dlp reads /etc/yt-dlp.conf, ~/.config/yt-dlp/config, and a
    yt-dlp.conf in its working directory: one there that would break every
    run (the wrapper stands for a service started in that directory) is not
    read."""
    d = tmp_path / "cwd"
    d.mkdir()
    (d / "yt-dlp.conf").write_text("--mr-config-was-read\n")
    exe = d / "yt-dlp"
    exe.write_text(f'#!/bin/sh\ncd "{d}" && exec "{YTDLP}" "$@"\n')
    exe.chmod(0o755)
    st = stack(make_config(providers={"ytdlp": {"path": str(exe), "timeout_s": 20}}))
    mid = post(st, env.origin.url("/a.mp4?cwd-config=1"))
    r = st.get(f"/api/media/{mid}/source", timeout=30)
    assert r.status == 200 and r.json["video_type"] == "mp4", r


@pytest.mark.parametrize("src,field", [
    ({"url": "ftp://example.com/a"}, "source.url"),
    ({"url": "http://127.0.0.1/a b"}, "source.url"),
    ({"url": "http://127.0.0.1/a\nb"}, "source.url"),
    ({"url": "http://127.0.0.1/" + "a" * 9000}, "source.url"),
    ({"url": 5}, "source.url"),
    ({}, "source.url"),
    ({"url": "http://127.0.0.1/a", "headers": {}}, "source.headers"),
])
def test_bad_sources_are_400(env, src, field):
    r = env.request("POST", "/api/media", headers=ADMIN, body={"provider": "ytdlp", "source": src})
    err = assert_json_error(r, 400, "bad_request")
    assert field in err["message"], err
