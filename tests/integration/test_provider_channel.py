"""The channel provider: a media item that is an IPTV channel of the configuration
({"provider": "channel", "source": {"channel": ID}}).

It plays the channel's url with its headers, whether the channel is in conf
`channels` or imported from `channels_m3u`; an id that names no channel is a
404 naming it; the item's playlist shares the channel's caches with
/live/{id}.m3u8 (one upstream fetch for viewers of either URL); a room on the
item still needs a session.  The origin serves a live playlist (no
EXT-X-ENDLIST) over TS segments made by ffmpeg."""

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import (ADMIN_TOKEN, KEY_PREFIX, assert_json_error, binary, make_config,
                      run_binary)
from proxyutil import ScriptedOrigin, module_stack
from test_hls_play import make_hls
import tokens

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REFERER = "https://tv.example/"
M3U_UA = "ChannelTest/1.0"
MPEGURL = "application/vnd.apple.mpegurl"


def live_of(vod):
    """ffmpeg's VOD playlist as a live one: no end, no playlist type, and a long
    target duration, so that the rewritten playlist stays fresh in the cache
    for hls.live_playlist_max_cache_ms."""
    out = []
    for line in vod.splitlines():
        if line.startswith(("#EXT-X-ENDLIST", "#EXT-X-PLAYLIST-TYPE")):
            continue
        if line.startswith("#EXT-X-TARGETDURATION:"):
            line = "#EXT-X-TARGETDURATION:120"
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """/{name}/index.m3u8 and its segments for every channel; /news/ wants the
    channel's Referer, /m3u/ the User-Agent of the imported list."""
    d = tmp_path_factory.mktemp("channel-origin")
    make_hls(d, "hls")
    segs = {p.name: p.read_bytes() for p in (d / "hls").glob("seg*.ts")}
    playlist = live_of((d / "hls" / "index.m3u8").read_text())
    o = ScriptedOrigin()

    def serve(want):
        def fn(h, seen):
            for k, v in want.items():
                if seen.headers.get(k) != v:
                    h.answer(403, {"Content-Type": "text/plain"}, b"who are you\n")
                    return
            name = seen.path.rsplit("/", 1)[1]
            if name == "index.m3u8":
                h.answer(200, {"Content-Type": MPEGURL}, playlist)
            elif name in segs:
                h.answer(200, {"Content-Type": "video/mp2t"}, segs[name])
            else:
                h.answer(404, {"Content-Type": "text/plain"}, b"no such file\n")
        return fn

    o.route("/news/", serve({"Referer": REFERER}))
    o.route("/m3u/", serve({"User-Agent": M3U_UA}))
    for name in ("cam", "club", "plain"):
        o.route(f"/{name}/", serve({}))
    yield o
    o.close()


@pytest.fixture(scope="module")
def st(request, origin, tmp_path_factory):
    d = tmp_path_factory.mktemp("channel-m3u")
    (d / "channels.m3u").write_text(
        "#EXTM3U\n"
        '#EXTINF:-1 tvg-id="imported",Imported\n'
        f"#EXTVLCOPT:http-user-agent={M3U_UA}\n"
        f"{origin.url('/m3u/index.m3u8')}\n")
    cfg = make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        hls={"edge_cache_s": 0, "live_playlist_max_cache_ms": 60000},
        channels={"news": {"url": origin.url("/news/index.m3u8"), "name": "News",
                           "logo": "https://tv.example/news.png",
                           "headers": {"Referer": REFERER}},
                  "cam": {"url": origin.url("/cam/index.m3u8")},
                  "club": {"url": origin.url("/club/index.m3u8")},
                  "plain": {"url": origin.url("/plain/index.m3u8")},
                  "clip": {"url": origin.url("/plain/clip.mp4?k=1")}},
        channels_m3u=str(d / "channels.m3u"),
        media={"conf-news": {"provider": "channel", "source": {"channel": "news"}},
               "roomy": {"provider": "channel", "source": {"channel": "club"}, "room": "r1"}})
    yield from module_stack(request, cfg)


def register(st, source, **item):
    r = st.request("POST", "/api/media", headers=ADMIN,
                   body={"provider": "channel", "source": source, **item})
    assert r.status == 201, r
    return json.loads(r.body)["id"]


def relay_lines(body):
    return [l for l in body.decode().splitlines() if l and not l.startswith("#")]


def token_data(relay_path):
    """(scope, upstream URL) signed in a relay URL's token (test_hls_play.mint's format)."""
    kind, scope, url = tokens.url_of(relay_path)
    return scope, url


def play_live(url):
    """ffmpeg reads 3 s of a live playlist through the relay (a live playlist
    has no end of its own)."""
    r = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", url, "-map", "0",
                        "-c", "copy", "-t", "3", "-f", "null", "-"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# --- the happy path ---------------------------------------------------------------------

def test_registered_channel_plays(st, origin):
    mid = register(st, {"channel": "news"}, title="Evening news")
    r = st.get(f"/api/media/{mid}/source")
    assert r.status == 200, r
    src = r.json
    assert src["provider"] == "channel"
    assert src["mode"] == "proxy"          # the channel has headers: always proxy
    assert src["url"] == st.url(f"/api/media/{mid}/index.m3u8")
    assert src["video_type"] == "hls"
    assert src["expire_at"] is None
    assert src["title"] == "Evening news"
    assert src["thumbnail"] == "https://tv.example/news.png"
    r = st.get(f"/api/media/{mid}/index.m3u8")
    assert r.status == 200, r
    assert r.header("Content-Type") == MPEGURL
    segs = relay_lines(r.body)
    assert segs and all(s.startswith("/api/seg/") and s.endswith(".ts") for s in segs), r.body
    assert origin.base_url.encode() not in r.body
    before = len(origin.seen)
    play_live(src["url"])
    assert any(s.path.startswith("/news/seg") for s in origin.seen[before:]), origin.seen[before:]


def test_conf_media_item_takes_the_channel_name(st):
    r = st.get("/api/media/conf-news/source")
    assert r.status == 200, r
    assert r.json["title"] == "News" and r.json["video_type"] == "hls"


def test_channel_headers_reach_the_upstream(st, origin):
    # The origin refuses a request without the channel's Referer...
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(origin.url("/news/seg00.ts"), timeout=10)
    assert e.value.code == 403
    # ...and the relay plays it: the playlist and the segments carry it.
    r = st.get("/api/media/conf-news/index.m3u8")
    assert r.status == 200, r
    seg = st.get(relay_lines(r.body)[-1])
    assert seg.status == 200 and seg.body[:1] == b"\x47", seg     # TS sync byte
    _, url = token_data(relay_lines(r.body)[-1])
    for path in ("/news/index.m3u8", urllib.parse.urlsplit(url).path):
        relayed = [s for s in origin.requests_to(path)
                   if not (s.headers.get("User-Agent") or "").startswith("Python-urllib")]
        assert relayed and all(s.headers["Referer"] == REFERER for s in relayed), relayed


def test_channel_from_channels_m3u(st, origin):
    mid = register(st, {"channel": "imported"})
    r = st.get(f"/api/media/{mid}/source")
    assert r.status == 200, r
    assert r.json["mode"] == "proxy" and r.json["video_type"] == "hls"
    assert r.json["title"] == "Imported"
    r = st.get(f"/api/media/{mid}/index.m3u8")
    assert r.status == 200, r
    assert origin.requests_to("/m3u/index.m3u8")[-1].headers["User-Agent"] == M3U_UA


def test_video_type_from_the_url_and_direct_mode(st, origin):
    # A channel URL that says otherwise: its type, and the proxy route for it.
    mid = register(st, {"channel": "clip"})
    r = st.get(f"/api/media/{mid}/source")
    assert r.status == 200, r
    assert r.json["video_type"] == "mp4"
    assert r.json["url"] == st.url(f"/api/proxy/media/{mid}")
    # providers.channel.mode as a runtime setting: a channel without headers
    # goes direct, one with headers stays proxied.
    plain, news = register(st, {"channel": "plain"}), register(st, {"channel": "news"})
    st.redis_cli("HSET", f"{KEY_PREFIX}settings", "proxy.enable_channel", "0")
    try:
        r = st.get(f"/api/media/{plain}/source")
        assert r.status == 200, r
        assert r.json["mode"] == "direct" and r.json["url"] == origin.url("/plain/index.m3u8")
        r = st.get(f"/api/media/{news}/source")
        assert r.json["mode"] == "proxy", r
    finally:
        st.redis_cli("HDEL", f"{KEY_PREFIX}settings", "proxy.enable_channel")


# --- one cache for both URLs ------------------------------------------------------------

def test_live_and_media_urls_share_the_caches(st, origin):
    mid = register(st, {"channel": "cam"})
    assert not origin.requests_to("/cam/index.m3u8")
    live = st.get("/live/cam.m3u8")
    media = st.get(f"/api/media/{mid}/index.m3u8")
    assert live.status == 200 and media.status == 200, (live, media)
    # The second viewer got the first one's rewritten playlist from the cache.
    assert live.header("X-Cache") == "MISS" and media.header("X-Cache") == "HIT"
    assert media.body == live.body
    assert len(origin.requests_to("/cam/index.m3u8")) == 1
    # Its segments are the channel's: the same relay URLs, the channel's scope.
    seg = relay_lines(media.body)[0]
    scope, url = token_data(seg)
    assert scope == "c:cam", scope
    a, b = st.get(seg), st.get(seg)
    assert a.status == 200 and b.status == 200 and a.body == b.body
    assert len(origin.requests_to(urllib.parse.urlsplit(url).path)) == 1


# --- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("src,field", [
    ({}, "source.channel"),
    ({"channel": 3}, "source.channel"),
    ({"channel": ""}, "source.channel"),
    ({"channel": "bad id!"}, "source.channel"),
    ({"channel": "x" * 65}, "source.channel"),
    ({"channel": "news", "url": "http://127.0.0.1/x.m3u8"}, "source.url"),
    ({"channel": "news", "headers": {}}, "source.headers"),
])
def test_bad_source_at_post(st, src, field):
    r = st.request("POST", "/api/media", headers=ADMIN, body={"provider": "channel", "source": src})
    err = assert_json_error(r, 400, "bad_request")
    assert field in err["message"], err


def test_bad_source_in_the_configuration(tmp_path):
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(make_config(media={
        "tv": {"provider": "channel", "source": {"channel": "news", "extra": 1}}})))
    r = run_binary([binary("resolve"), "--config", conf, "--check"])
    assert r.returncode != 0
    assert "media.tv.source.extra" in r.stderr, r.stderr


def test_unknown_channel_is_named(st, origin):
    mid = register(st, {"channel": "ghost"})
    for path in (f"/api/media/{mid}/source", f"/api/media/{mid}/index.m3u8"):
        err = assert_json_error(st.get(path), 404, "not_found")
        assert '"ghost"' in err["message"] and "source.channel" in err["message"], err


# --- rooms ------------------------------------------------------------------------------

def test_a_room_needs_a_session(st):
    for path in ("/api/media/roomy/source", "/api/media/roomy/index.m3u8"):
        assert_json_error(st.get(path), 401, "unauthorized")
    st.redis_cli("SET", f"{KEY_PREFIX}session:sid-alice", "alice")
    st.redis_cli("SET", f"{KEY_PREFIX}session:sid-bob", "bob")
    st.redis_cli("SADD", f"{KEY_PREFIX}room:r1:members", "alice")
    r = st.get("/api/media/roomy/index.m3u8", headers={"Cookie": "session=sid-alice"})
    assert r.status == 200, r
    assert relay_lines(r.body)
    assert_json_error(st.get("/api/media/roomy/index.m3u8",
                             headers={"Cookie": "session=sid-bob"}), 403, "forbidden")
