"""IPTV channels from an M3U list (channels_m3u): names, groups and logos,
VLC options and Kodi-style headers as the channel's header policy; the
configuration's channels win an id; /live/channels.m3u lists every channel
pointing at the relay; a list that cannot be read stops the start."""

import json
import urllib.parse

import pytest

from conftest import binary, make_config, run_binary
from proxyutil import ScriptedOrigin, get_until, module_stack, raw_get


@pytest.fixture(scope="module")
def origin():
    o = ScriptedOrigin()

    def playlist(h, seen):
        # Each list entry's origin wants its own headers.
        want = {"/vlc/index.m3u8": ("Referer", "https://tv.example/"),
                "/kodi/index.m3u8": ("User-Agent", "Kodi/20 (Linux)")}.get(seen.path)
        if want and seen.headers.get(want[0]) != want[1]:
            h.answer(403, {"Content-Type": "text/plain"}, b"who are you\n")
            return
        h.answer(200, {"Content-Type": "application/vnd.apple.mpegurl"},
                 "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n"
                 "#EXTINF:2.0,\nseg1.ts\n")
    for p in ("/vlc/index.m3u8", "/kodi/index.m3u8", "/conf/index.m3u8", "/plain/index.m3u8"):
        o.route(p, playlist)
    yield o
    o.close()


def channel_list(origin):
    return (
        "#EXTM3U\n"
        '#EXTINF:-1 tvg-id="vlc" tvg-logo="http://logo.example/v.png" group-title="News",'
        "VLC News\n"
        "#EXTVLCOPT:http-referrer=https://tv.example/\n"
        f"{origin.url('/vlc/index.m3u8')}\n"
        '#EXTINF:-1 group-title="Sport",Kodi Sport\n'
        f"{origin.url('/kodi/index.m3u8')}|User-Agent=Kodi%2F20%20(Linux)\n"
        '#EXTINF:-1 tvg-id="conf",Imported twin\n'
        f"{origin.url('/plain/index.m3u8')}\n"
        "#EXTINF:-1,Not http\nrtmp://x.example/live\n")


@pytest.fixture(scope="module")
def st(request, origin, tmp_path_factory):
    d = tmp_path_factory.mktemp("m3u")
    (d / "channels.m3u").write_text(channel_list(origin))
    cfg = make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                      channels={"conf": {"url": origin.url("/conf/index.m3u8"),
                                         "name": "From conf", "group": "Conf"}},
                      channels_m3u=str(d / "channels.m3u"))
    yield from module_stack(request, cfg)


def entries(body):
    """[(extinf line, url)] of an M3U list."""
    lines = body.decode().splitlines()
    assert lines[0] == "#EXTM3U"
    return [(lines[i], lines[i + 1]) for i in range(1, len(lines), 2)]


def test_channels_m3u_lists_every_channel(st):
    r = raw_get(st.port, "/live/channels.m3u")
    assert r.status == 200
    assert r.headers["content-type"].startswith("audio/x-mpegurl")
    got = entries(r.body)
    assert [u for _, u in got] == [st.url(f"/live/{i}.m3u8")
                                   for i in ("conf", "vlc", "kodi-sport", "conf-2")]
    assert got[0][0] == ('#EXTINF:-1 tvg-id="conf" tvg-name="From conf" '
                         'group-title="Conf",From conf')
    assert got[1][0] == ('#EXTINF:-1 tvg-id="vlc" tvg-name="VLC News" '
                         'tvg-logo="http://logo.example/v.png" group-title="News",VLC News')
    assert 'group-title="Sport"' in got[2][0]
    # Every entry plays through the relay, with the list's headers.
    for _, url in got:
        path = urllib.parse.urlsplit(url).path
        r = raw_get(st.port, path)
        assert r.status == 200, (path, r.body)
        assert b"/api/seg/" in r.body


def test_headers_from_the_list_reach_the_origin(st, origin):
    raw_get(st.port, "/live/vlc.m3u8")
    raw_get(st.port, "/live/kodi-sport.m3u8")
    assert origin.requests_to("/vlc/index.m3u8")[-1].headers["Referer"] == "https://tv.example/"
    assert origin.requests_to("/kodi/index.m3u8")[-1].headers["User-Agent"] == "Kodi/20 (Linux)"


def test_the_configuration_wins_an_id(st, origin):
    before = len(origin.requests_to("/conf/index.m3u8"))
    # Until the live playlist's copy (if any) goes stale, it is served as is;
    # the request that fetches it again asks the configured origin.
    r = get_until(st.port, "/live/conf.m3u8", lambda r: r.headers.get("x-cache") != "HIT",
                  what="an upstream fetch of /live/conf.m3u8")
    assert r.status == 200 and r.headers["x-cache"] == "MISS", r.headers
    assert len(origin.requests_to("/conf/index.m3u8")) == before + 1


def test_skipped_entries_are_logged(st):
    log = st.log("m3u8")
    assert "channels_m3u" in log and "1 entries skipped" in log


def test_forwarded_host_or_public_url_make_the_links(st, request, origin, tmp_path):
    r = raw_get(st.port, "/live/channels.m3u",
                {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tv.example.org"})
    # contrib/nginx sets X-Forwarded-* from the connection itself: the
    # client's own claim does not get through.
    assert entries(r.body)[0][1] == st.url("/live/conf.m3u8")


@pytest.mark.parametrize("content,why", [
    (None, "cannot open"),
    ("<html>not a list</html>\n", "not an M3U list"),
])
def test_a_list_that_cannot_be_read_stops_the_start(tmp_path, content, why):
    m3u = tmp_path / "channels.m3u"
    if content is not None:
        m3u.write_text(content)
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(make_config(channels_m3u=str(m3u))))
    r = run_binary([binary("m3u8"), "--config", conf, "--check"])
    assert r.returncode != 0
    assert "channels_m3u" in r.stderr and why in r.stderr, r.stderr


def test_a_relative_list_path_is_taken_from_the_configuration_directory(tmp_path, origin):
    (tmp_path / "list.m3u").write_text(channel_list(origin))
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(make_config(channels_m3u="list.m3u")))
    r = run_binary([binary("m3u8"), "--config", conf, "--check"])
    assert r.returncode == 0, r.stderr
