"""hls.js in headless Chromium plays HLS through the relay (PLAYERS.md's recipe):
a page served from another origin than the relay (so CORS is exercised as on a
real site) plays the relay URL muted and reports back with a POST; it passes
when currentTime reaches 5 s without a fatal hls.js error."""

import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest

from conftest import Stack, _finish, free_port, make_config
from proxyutil import NginxOrigin, module_stack
from test_hls_cache import live_origin, segment_fetches
from test_hls_play import log_len, make_hls, make_more_media, more_media_config, relay_served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-headless-shell")
pytestmark = pytest.mark.skipif(not CHROMIUM or not shutil.which("ffmpeg"),
                                reason="chromium or ffmpeg not installed")

PAGE = """<!doctype html><meta charset=utf-8><title>loading</title>
<video id=v muted playsinline></video>
<script src="/hls.min.js"></script>
<script>
const q = new URLSearchParams(location.search), n = +q.get('n');
let done = false;
function report(ok, detail) {
  if (done) return; done = true;
  document.title = (ok ? 'PASS ' : 'FAIL ') + detail;
  fetch('/report', {method: 'POST', body: JSON.stringify({ok, detail})});
}
const v = document.getElementById('v');
const hls = new Hls();
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) report(false, 'hls.js: ' + d.details); });
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch(e => report(false, 'play: ' + e)));
v.addEventListener('error', () => report(false, 'video error ' + (v.error && v.error.code)));
v.addEventListener('timeupdate', () => { if (v.currentTime >= n) report(true, 't=' + v.currentTime); });
setTimeout(() => report(false, 'timeout at t=' + v.currentTime), 45000);
hls.loadSource(q.get('src'));
hls.attachMedia(v);
</script>
"""


def hls_js():
    """dist/hls.min.js of npm's hls.js 1.x, installed once into a cache dir."""
    cache = Path(os.environ.get("MR_NPM_CACHE", Path(tempfile.gettempdir()) / "mediarelay-npm"))
    js = cache / "node_modules" / "hls.js" / "dist" / "hls.min.js"
    if not js.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund",
                        "--silent", "hls.js@1"], check=True, timeout=300)
    return js.read_bytes()


class PageServer:
    """The test page and hls.js on 127.0.0.1 (another origin than the relay);
    POST /report stores the page's verdict."""

    def __init__(self):
        self.js = hls_js()
        self.result = None
        self.got = threading.Event()
        server = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                body, ctype = ((PAGE.encode(), "text/html") if path == "/" else
                               (server.js, "application/javascript") if path == "/hls.min.js"
                               else (b"", "text/plain"))
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                server.result = json.loads(self.rfile.read(n) or b"{}")
                server.got.set()
                self.send_response(204)
                self.end_headers()

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def play_in_chromium(src, seconds=5, timeout=60):
    page = PageServer()
    profile = tempfile.mkdtemp(prefix="mr-chromium-")
    url = f"http://127.0.0.1:{page.port}/?src={urllib.parse.quote(src, safe='')}&n={seconds}"
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
         "--autoplay-policy=no-user-gesture-required", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", f"--user-data-dir={profile}", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        page.got.wait(timeout)
        return page.result
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        page.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("browser-origin"))
    make_hls(o.path(""), "plain")
    make_hls(o.path(""), "enc", encrypt=True)
    (o.path("") / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x180,"
        "CODECS=\"avc1.640015,mp4a.40.2\"\nplain/index.m3u8\n")
    return o


@pytest.fixture(scope="module")
def st(request, origin):
    cfg = make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        media={"master": {"provider": "direct", "source": {"url": origin.url("/master.m3u8")}},
               "enc": {"provider": "direct", "source": {"url": origin.url("/enc/index.m3u8")}}},
        channels={"tv": {"url": origin.url("/plain/index.m3u8")}})
    yield from module_stack(request, cfg, extra_nginx=origin.nginx_conf())


@pytest.mark.parametrize("path", ["/api/media/master/index.m3u8", "/api/media/enc/index.m3u8",
                                  "/live/tv.m3u8"])
def test_hlsjs_plays_through_the_relay(st, path):
    result = play_in_chromium(st.url(path))
    assert result is not None, "the page never reported (no POST within the timeout)"
    assert result.get("ok"), result


# --- fMP4 (EXT-X-MAP), separate audio renditions, EXT-X-BYTERANGE --------------------
# The streams of test_hls_play.py's later cases, on an origin and a stack of their own.


@pytest.fixture(scope="module")
def more_origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("browser-more-origin"))
    make_more_media(o.path(""))
    return o


@pytest.fixture(scope="module")
def more_st(request, more_origin):
    yield from module_stack(request, more_media_config(more_origin),
                            extra_nginx=more_origin.nginx_conf())


def served_ok(served, path):
    """The relay answered path (200 or 206), from its cache or the origin."""
    return any(p == path and status in (200, 206) for p, status in served)


def test_hlsjs_plays_fmp4(more_st):
    before = log_len(more_st)
    result = play_in_chromium(more_st.url("/api/media/fmp4/index.m3u8"))
    assert result is not None, "the page never reported (no POST within the timeout)"
    assert result.get("ok"), result
    served = relay_served(more_st, before)
    # The init section (EXT-X-MAP) and the .m4s segments came through the relay.
    for name in ("init.mp4", "seg00.m4s", "seg01.m4s", "seg02.m4s"):
        assert served_ok(served, f"/fmp4/{name}"), (name, served)


def test_hlsjs_plays_alt_audio(more_st):
    before = log_len(more_st)
    result = play_in_chromium(more_st.url("/api/media/alt/index.m3u8"))
    assert result is not None, "the page never reported (no POST within the timeout)"
    assert result.get("ok"), result
    served = relay_served(more_st, before)
    # 5 s played: the first three segments of the DEFAULT=YES audio rendition and
    # of a video-only variant were loaded (through the relay).
    for i in range(3):
        assert served_ok(served, f"/alt/audio/en/seg0{i}.ts"), (i, served)
        assert (served_ok(served, f"/alt/video/hi/seg0{i}.ts")
                or served_ok(served, f"/alt/video/lo/seg0{i}.ts")), (i, served)


def test_hlsjs_plays_byterange(more_st, more_origin):
    before = log_len(more_st)
    result = play_in_chromium(more_st.url("/api/media/br/index.m3u8"))
    assert result is not None, "the page never reported (no POST within the timeout)"
    assert result.get("ok"), result
    # hls.js asked for byte ranges of the one file (cross-origin, through the
    # relay), answered from the cached copy the origin sent at most once.
    served = [status for p, status in relay_served(more_st, before) if p == "/br/all.ts"]
    assert served.count(206) >= 3, served
    lines = [l for l in more_origin.log_lines() if " /br/all.ts " in l]
    assert len([l for l in lines if " 200 " in l]) <= 1, lines


def test_hlsjs_plays_a_live_channel_with_other_viewers(tmp_path):
    """hls.js plays a live channel (a window that moves every second) for 5 s
    while 5 more viewers (ffmpeg) watch it: no error, and the origin served
    each segment once."""
    o = live_origin(tmp_path)
    s = Stack(make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                          channels={"tv": {"url": o.url("/tv/index.m3u8")}}))
    failed = True
    try:
        s.start()
        others = [subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-i",
                                    s.url("/live/tv.m3u8"), "-map", "0", "-c", "copy",
                                    "-t", "6", "-f", "null", "-"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                  for _ in range(5)]
        result = play_in_chromium(s.url("/live/tv.m3u8"))
        for p in others:
            _, err = p.communicate(timeout=90)
            assert p.returncode == 0, err.decode(errors="replace")[-2000:]
        assert result is not None, "the page never reported (no POST within the timeout)"
        assert result.get("ok"), result
        counts = segment_fetches(o)
        assert len(counts) >= 4 and all(n == 1 for n in counts.values()), counts
        failed = False
    finally:
        _finish(s, failed)
        o.close()
