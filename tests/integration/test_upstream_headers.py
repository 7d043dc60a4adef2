"""Request headers that reach an origin: whatever a channel list, the
configuration or the media API asks for, an origin never sees a Host other
than its own, a Content-Length or a Transfer-Encoding on a GET, or a
Connection it did not negotiate; on the manifest fetch and on the segment
fetch alike.  The headers providers need (Referer, User-Agent, Cookie,
Authorization) get through.

The one filter is mr_header_refused (docs/proxy.md, "Headers sent
upstream"): a malformed header is an error in the configuration and the API,
a well-formed one the relay declines is left out; a channel list (someone
else's file) loses either.  In internal mode and in nginx offload mode (there
nginx fetches the segments, with the policy's four headers)."""

import json
import re

import pytest

from conftest import ADMIN_TOKEN, assert_json_error, binary, make_config, run_binary
from proxyutil import MODES, ScriptedOrigin, module_stack, path_of, raw_get

PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg1.ts\n#EXT-X-ENDLIST\n"

# What a hostile (or careless) list or API client asks for, and the headers
# that must get through.
BAD = {"Host": "evil.example", "Content-Length": "5", "Transfer-Encoding": "chunked",
       "Connection": "X-Smuggle"}
GOOD = {"Referer": "https://tv.example/", "Cookie": "sid=42"}


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()

    def serve(h, seen):
        if seen.path.endswith(".m3u8"):
            h.answer(200, {"Content-Type": "application/vnd.apple.mpegurl"}, PLAYLIST)
        else:
            h.answer(200, {"Content-Type": "video/mp2t"}, b"segment")
    o.route("/", serve)
    yield o
    o.close()


def channel_list(origin):
    kodi = "&".join(f"{k}={v}" for k, v in {**BAD, **GOOD}.items()).replace("/", "%2F")
    return ("#EXTM3U\n"
            "#EXTINF:-1 tvg-id=\"kodi\",Kodi\n"
            f"{origin.url('/kodi/index.m3u8')}|{kodi}&X-Bad=a%0D%0AInjected%3A%201\n"
            "#EXTINF:-1 tvg-id=\"vlc\",VLC\n"
            "#EXTVLCOPT:http-referrer=https://tv.example/\n"
            f"{origin.url('/vlc/index.m3u8')}|Host=evil.example&Content-Length=5\n")


@pytest.fixture(scope="module", params=MODES)
def st(request, origin, tmp_path_factory):
    d = tmp_path_factory.mktemp("m3u")
    (d / "channels.m3u").write_text(channel_list(origin))
    config = make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        channels={"conf": {"url": origin.url("/conf/index.m3u8"), "headers": {**BAD, **GOOD}}},
        channels_m3u=str(d / "channels.m3u"),
        media={"item": {"provider": "direct",
                        "source": {"url": origin.url("/item/index.m3u8"),
                                   "headers": {**BAD, **GOOD}}},
               "file": {"provider": "direct",
                        "source": {"url": origin.url("/file/movie.mp4"),
                                   "headers": {**BAD, **GOOD}}}})
    yield from module_stack(request, config, mode=request.param)


def check_seen(origin, path, referer=GOOD["Referer"], cookie=GOOD["Cookie"]):
    """The last request the origin saw for path: its own Host once, none of
    BAD, the good headers."""
    seen = origin.requests_to(path)
    assert seen, f"the origin never saw {path}"
    h = seen[-1].headers
    assert h.get_all("Host") == [origin.host], (path, seen[-1])
    assert "Content-Length" not in h and "Transfer-Encoding" not in h, (path, seen[-1])
    assert "X-Smuggle" not in (h.get("Connection") or ""), (path, seen[-1])
    assert "X-Bad" not in h and "Injected" not in h, (path, seen[-1])
    assert h.get("Referer") == referer, (path, seen[-1])
    if cookie is not None:
        assert h.get("Cookie") == cookie, (path, seen[-1])


def play(st, path):
    """The playlist at path and its one segment, through the relay."""
    r = raw_get(st.port, path)
    assert r.status == 200, r
    segs = re.findall(r"\S*/api/seg/\S+", r.body.decode())
    assert len(segs) == 1, r.body
    seg = raw_get(st.port, path_of(segs[0]) if segs[0].startswith("http") else segs[0])
    assert seg.status == 200 and seg.body == b"segment", seg


@pytest.mark.parametrize("channel,prefix,cookie", [("kodi", "/kodi", GOOD["Cookie"]),
                                                   ("vlc", "/vlc", None),
                                                   ("conf", "/conf", GOOD["Cookie"])])
def test_channel_headers(st, origin, channel, prefix, cookie):
    play(st, f"/live/{channel}.m3u8")
    check_seen(origin, f"{prefix}/index.m3u8", cookie=cookie)     # the manifest fetch
    check_seen(origin, f"{prefix}/seg1.ts", cookie=cookie)        # the segment fetch


def test_media_item_headers(st, origin):
    play(st, "/api/media/item/index.m3u8")
    check_seen(origin, "/item/index.m3u8")
    check_seen(origin, "/item/seg1.ts")
    r = raw_get(st.port, "/api/proxy/media/file")
    assert r.status == 200 and r.body == b"segment", r
    check_seen(origin, "/file/movie.mp4")


def test_media_api(st, origin):
    """POST /api/media: well-formed headers the relay declines are accepted and
    never sent; malformed ones are a 400 that names the header."""
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"provider": "direct",
            "source": {"url": origin.url("/api/index.m3u8"), "headers": {**BAD, **GOOD}}}
    r = st.request("POST", "/api/media", headers=auth, body=body)
    assert r.status == 201, r
    play(st, f"/api/media/{r.json['id']}/index.m3u8")
    check_seen(origin, "/api/index.m3u8")
    check_seen(origin, "/api/seg1.ts")
    for name, value in [("X-Evil", "a\r\nInjected: 1"), ("X Space", "v"), ("X(1)", "v"),
                        ("X-Nul", "a\u0000b")]:
        bad = {"provider": "direct",
               "source": {"url": origin.url("/x.mp4"), "headers": {name: value}}}
        err = assert_json_error(st.request("POST", "/api/media", headers=auth, body=bad),
                                400, "bad_request")
        assert f"source.headers.{name}" in err["message"], err


@pytest.mark.parametrize("headers,why", [
    ({"X-A": "a\r\nb"}, "a control byte in the value"),
    ({"Bad Name": "v"}, "not a valid header name"),
])
def test_malformed_configuration_header_stops_the_start(tmp_path, headers, why):
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(make_config(
        channels={"c": {"url": "http://127.0.0.1:9/i.m3u8", "headers": headers}})))
    r = run_binary([binary("m3u8"), "--config", str(conf), "--check"])
    assert r.returncode != 0 and why in r.stderr, r.stderr


def test_declined_configuration_header_is_left_out(tmp_path):
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(make_config(
        channels={"c": {"url": "http://127.0.0.1:9/i.m3u8", "headers": {**BAD, **GOOD}}})))
    r = run_binary([binary("m3u8"), "--config", str(conf), "--check"])
    assert r.returncode == 0, r.stderr
