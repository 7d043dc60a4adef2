"""dash.js and shaka-player in headless Chromium play DASH through the relay
(PLAYERS.md's recipe): a page served from another origin than the relay (so
CORS is exercised as on a real site) plays a relay MPD muted and reports back
with a POST.  Each player plays each of test_dash_play.py's streams -- a
SegmentTemplate stream, a SegmentList stream, a SegmentBase stream (indexRange)
and the multi-period MPD -- for 5 s without an error event; the multi-period
MPD is played across its period boundary (8 s).  The relay's own segment
executable served the media (hls.edge_cache_s 0: its log sees every request).

test_hls_browser.py's PageServer and play_in_chromium serve hls.js and its
page only, so this file has a page server of its own for the two players."""

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest

from conftest import free_port, make_config
from proxyutil import NginxOrigin, module_stack
from test_dash_play import ITEMS, make_media
from test_hls_browser import CHROMIUM
from test_hls_play import log_len
import tokens

pytestmark = pytest.mark.skipif(not CHROMIUM or not shutil.which("ffmpeg"),
                                reason="chromium or ffmpeg not installed")

# Shared by both pages: report() POSTs the verdict once (and sets the title);
# the player's page calls start(); pass when currentTime reaches n, after a
# seek to `seek` (if given) once playback has begun.
COMMON = """
const q = new URLSearchParams(location.search), n = +q.get('n'), seek = +(q.get('seek') || 0);
const src = q.get('src');
let done = false, seeked = !seek, maxT = 0;
const v = document.getElementById('v');
function report(ok, detail) {
  if (done) return; done = true;
  detail = String(detail).slice(0, 4000);
  document.title = (ok ? 'PASS ' : 'FAIL ') + detail;
  fetch('/report', {method: 'POST',
                    body: JSON.stringify({ok, detail, t: v.currentTime, maxT, seeked})});
}
function str(x) {
  try { return JSON.stringify(x); } catch (e) { return String(x); }
}
v.addEventListener('error', () => report(false, 'video error ' + (v.error && v.error.code)
                                             + ' ' + (v.error && v.error.message)));
v.addEventListener('timeupdate', () => {
  maxT = Math.max(maxT, v.currentTime);
  if (!seeked && v.currentTime >= 1) { seeked = true; v.currentTime = seek; return; }
  if (seeked && !v.seeking && v.currentTime >= n) report(true, 't=' + v.currentTime);
});
setTimeout(() => report(false, 'timeout at t=' + v.currentTime), 45000);
"""

PAGES = {
    "dashjs": """<!doctype html><meta charset=utf-8><title>loading</title>
<video id=v muted playsinline></video>
<script src="/dash.all.min.js"></script>
<script>""" + COMMON + """
const player = dashjs.MediaPlayer().create();
const ev = dashjs.MediaPlayer.events;
player.on(ev.ERROR, e => report(false, 'dash.js ERROR: ' + str(e.error)));
player.on(ev.PLAYBACK_ERROR, e => report(false, 'dash.js PLAYBACK_ERROR: ' + str(e.error)));
player.initialize(v, src, true);
</script>
""",
    "shaka": """<!doctype html><meta charset=utf-8><title>loading</title>
<video id=v muted playsinline></video>
<script src="/shaka-player.compiled.js"></script>
<script>""" + COMMON + """
function shakaError(e) {
  return 'shaka error ' + e.code + ' (category ' + e.category + ', severity ' + e.severity
         + '): ' + str(e.data);
}
(async () => {
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) return report(false, 'shaka: browser not supported');
  const player = new shaka.Player();
  await player.attach(v);
  player.addEventListener('error', e => report(false, shakaError(e.detail)));
  await player.load(src);
  await v.play();
})().catch(e => report(false, (e && e.code) ? shakaError(e) : 'shaka: ' + e));
</script>
""",
}

# npm package, the dist files to look for (first found wins), served as.
PLAYERS = {
    "dashjs": ("dashjs@5", ["dashjs/dist/modern/umd/dash.all.min.js",
                            "dashjs/dist/legacy/umd/dash.all.min.js",
                            "dashjs/dist/dash.all.min.js"], "/dash.all.min.js"),
    "shaka": ("shaka-player@5", ["shaka-player/dist/shaka-player.compiled.js"],
              "/shaka-player.compiled.js"),
}


def player_js(player):
    """The player's dist file, npm-installed once into a cache dir (the one
    test_hls_browser.py uses for hls.js)."""
    spec, paths, _ = PLAYERS[player]
    cache = Path(os.environ.get("MR_NPM_CACHE", Path(tempfile.gettempdir()) / "mediarelay-npm"))
    mods = cache / "node_modules"

    def find():
        return next((mods / p for p in paths if (mods / p).exists()), None)

    if find() is None:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund",
                        "--silent", spec], check=True, timeout=300)
    js = find()
    assert js is not None, f"{spec}: none of {paths} under {mods}"
    return js.read_bytes()


class PlayerPage:
    """The page of one player and its script on 127.0.0.1 (another origin than
    the relay); POST /report stores the page's verdict."""

    def __init__(self, player):
        page = PAGES[player].encode()
        js, js_path = player_js(player), PLAYERS[player][2]
        self.result = None
        self.got = threading.Event()
        server = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                body, ctype = ((page, "text/html") if path == "/" else
                               (js, "application/javascript") if path == js_path
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


def play(player, src, seconds=5, seek=None, timeout=60):
    """Chromium plays src with the player's page; the page's verdict, or None
    when it never reported."""
    page = PlayerPage(player)
    profile = tempfile.mkdtemp(prefix="mr-chromium-")
    url = f"http://127.0.0.1:{page.port}/?src={urllib.parse.quote(src, safe='')}&n={seconds}"
    if seek:
        url += f"&seek={seek}"
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


SEG_LINE = re.compile(r" GET /api/seg/([A-Za-z0-9_-]+)(\S*) (\d{3}) ")


def seg_served(st, since):
    """[(upstream URL path, status)] of the GET /api/seg/ requests the relay's
    segment executable answered (its log from line `since` on).  The URL is the
    token's (a directory's, for a tail after the token) plus the tail."""
    out = []
    for line in st.log("segment").splitlines()[since:]:
        m = SEG_LINE.search(line)
        if not m:
            continue
        tok, tail, status = m.groups()
        url = tokens.unseal(tok)[1].split(b"\n", 1)[1].decode()
        if tail.startswith("/"):
            url += urllib.parse.unquote(tail[1:].split("?", 1)[0])
        out.append((urllib.parse.urlsplit(url).path, int(status)))
    return out


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("dash-browser-origin"))
    make_media(o.path(""))
    return o


@pytest.fixture(scope="module")
def st(request, origin):
    # hls.edge_cache_s 0: the web server keeps nothing, so the segment
    # executable's log sees every request the player made.
    cfg = make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        hls={"edge_cache_s": 0},
        media={k: {"provider": "direct", "source": {"url": origin.url(p)}}
               for k, p in ITEMS.items()})
    yield from module_stack(request, cfg, extra_nginx=origin.nginx_conf())


# item: (seconds to reach, seek to once playing, upstream paths that must have
# been served (200/206) through the relay).
CASES = {
    "tmpl": (5, None, ["/tmpl/init-stream0.m4s", "/tmpl/init-stream1.m4s"]),
    "list": (5, None, ["/list/init-stream0.m4s", "/list/init-stream1.m4s"]),
    "sbase": (5, None, ["/sbase/video.mp4"]),
    # Seek to 6 s and play on to 11 s: across the period boundary at 8 s,
    # into the second period (another directory of the origin).
    "multi": (11, 6, ["/multi/tmpl/init-stream0.m4s", "/media/list-copy/init-stream0.m4s"]),
}


@pytest.mark.parametrize("item", list(CASES))
@pytest.mark.parametrize("player", list(PLAYERS))
def test_player_plays_dash_through_the_relay(st, player, item):
    seconds, seek, paths = CASES[item]
    before = log_len(st)
    result = play(player, st.url(f"/api/media/{item}/manifest.mpd"), seconds, seek)
    assert result is not None, "the page never reported (no POST within the timeout)"
    assert result.get("ok"), result
    if item == "multi":
        assert result["t"] >= 8.5 and result["seeked"], result
    served = seg_served(st, before)
    ok = [(p, s) for p, s in served if s in (200, 206)]
    assert ok, ("the relay's segment executable served nothing", served)
    for p in paths:
        assert any(q == p for q, _ in ok), (p, served)
    if item == "sbase":
        # SegmentBase: byte ranges of the one file (init, index, media).
        assert [s for p, s in ok if p == "/sbase/video.mp4"].count(206) >= 2, served
    if item == "multi":
        # Media segments of the second period, not only its init section.
        assert any(p.startswith("/media/list-copy/chunk-") for p, _ in ok), served
