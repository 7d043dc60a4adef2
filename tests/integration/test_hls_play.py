"""HLS through the relay, played by ffmpeg: a master with variants, TS segments,
AES-128 keys, a channel with a header policy; tokens that are tampered with,
expired, or of the wrong kind are refused.  (Caching, live channels and
hls.js are later steps of issue 4.)"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse

import pytest

from conftest import (SECRET, SRCDIR, Stack, _finish, alive, assert_json_error, deep_merge,
                      make_config)
from proxyutil import NginxOrigin, module_stack
import tokens

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")


def make_hls(d, name, encrypt=False):
    """A 8 s TS HLS VOD in d/name/ (2 s segments); AES-128 when encrypt."""
    out = d / name
    out.mkdir()
    args = ["ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
            "-c:a", "aac", "-b:a", "64k", "-f", "hls", "-hls_time", "2",
            "-hls_playlist_type", "vod", "-hls_segment_filename", str(out / "seg%02d.ts")]
    if encrypt:
        (out / "k.bin").write_bytes(os.urandom(16))
        (out / "keyinfo").write_text(f"k.bin\n{out / 'k.bin'}\n")
        args += ["-hls_key_info_file", str(out / "keyinfo")]
    subprocess.run(args + [str(out / "index.m3u8")], check=True, timeout=120)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("hls-origin"))
    www = o.path("")
    make_hls(www, "plain")
    make_hls(www, "enc", encrypt=True)
    (www / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x180\nplain/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=320x180\nenc/index.m3u8\n")
    (www / "notaplaylist.m3u8").write_text("<html>sorry</html>\n")
    # the heap overflow of issue 11: EXT-X-DEFINE variables and a variant URL
    # that fills a token (tests/data/m3u8/, also the unit test's)
    (www / "overflow.m3u8").write_bytes(
        (SRCDIR / "tests/data/m3u8/regress-define-long-variant.m3u8").read_bytes())
    return o


@pytest.fixture(scope="module")
def st(request, origin):
    cfg = make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        stream={"allow_hosts": [origin.host]},
        media={"master": {"provider": "direct", "source": {"url": origin.url("/master.m3u8")}},
               "enc": {"provider": "direct", "source": {"url": origin.url("/enc/index.m3u8")}},
               "junk": {"provider": "direct", "source": {"url": origin.url("/notaplaylist.m3u8")}},
               "overflow": {"provider": "direct", "source": {"url": origin.url("/overflow.m3u8")}},
               "gone": {"provider": "direct", "source": {"url": origin.url("/nope.m3u8")}}},
        channels={"ref": {"url": origin.url("/ref/plain/index.m3u8"),
                          "headers": {"Referer": "https://tv.example/"}}})
    # /ref/ serves the same files only with the channel's Referer.
    extra = origin.nginx_conf(extra_locations=f"""
    location = /plain/noext {{
        default_type application/vnd.apple.mpegurl;
        alias {origin.path('')}/plain/index.m3u8;
    }}
    location /ref/ {{
        alias {origin.path('')}/;
        if ($http_referer != "https://tv.example/") {{ return 403; }}
    }}""")
    yield from module_stack(request, cfg, extra_nginx=extra)


def play(url):
    r = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", url, "-map", "0",
                        "-c", "copy", "-f", "null", "-"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stderr


def relay_lines(body):
    return [l for l in body.splitlines() if l and not l.startswith("#")]


def test_master_is_rewritten_and_plays(st, origin):
    r = st.get("/api/media/master/index.m3u8")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/vnd.apple.mpegurl"
    text = r.body.decode()
    assert all(l.startswith("/api/m3u8/") and l.endswith(".m3u8") for l in relay_lines(text)), text
    assert origin.base_url not in text
    before = len(origin.log_lines())
    play(st.url("/api/media/master/index.m3u8"))
    fetched = origin.log_lines()[before:]
    assert any("/plain/seg" in l for l in fetched), fetched


def test_variant_segments_keep_their_extension(st):
    master = st.get("/api/media/master/index.m3u8").body.decode()
    variant = st.get(relay_lines(master)[0])
    assert variant.status == 200, variant
    segs = relay_lines(variant.body.decode())
    assert len(segs) == 4 and all(s.startswith("/api/seg/") and s.endswith(".ts") for s in segs)
    seg = st.get(segs[0])
    assert seg.status == 200 and seg.body[:1] == b"\x47", seg    # TS sync byte
    # Range on a segment, through the relay.
    part = st.get(segs[0], headers={"Range": "bytes=188-375"})
    assert part.status == 206 and part.body == seg.body[188:376], part


def test_aes128_key_is_relayed_and_plays(st, origin):
    text = st.get("/api/media/enc/index.m3u8").body.decode()
    key_line = [l for l in text.splitlines() if l.startswith("#EXT-X-KEY:")][0]
    assert 'URI="/api/seg/' in key_line and '.bin"' in key_line, key_line
    uri = key_line.split('URI="')[1].split('"')[0]
    assert st.get(uri).body == origin.path("enc/k.bin").read_bytes()
    play(st.url("/api/media/enc/index.m3u8"))


def test_channel_with_header_policy(st, origin):
    # Without the channel's Referer the origin refuses: the policy is what makes it play.
    assert st.get("/live/ref.m3u8").status == 200
    before = len(origin.log_lines())
    play(st.url("/live/ref.m3u8"))
    lines = origin.log_lines()[before:]
    assert any("/ref/plain/seg" in l and (" 200 " in l or " 206 " in l) for l in lines), lines


def test_define_overflow_playlist_is_refused(st):
    """The playlist that overflowed the rewriter's buffer: refused as too large,
    and the m3u8 process lives on (the ASan run of the suite checks its memory)."""
    pid = st.pid("m3u8")
    for _ in range(3):
        assert_json_error(st.get("/api/media/overflow/index.m3u8"), 502, "bad_playlist")
    assert st.pid("m3u8") == pid and alive(pid)
    assert st.get("/api/media/master/index.m3u8").status == 200


def test_upstream_errors(st):
    assert_json_error(st.get("/api/media/junk/index.m3u8"), 502, "bad_playlist")
    assert_json_error(st.get("/api/media/gone/index.m3u8"), 404, "upstream_status")
    assert_json_error(st.get("/api/media/nope/index.m3u8"), 404, "not_found")
    assert_json_error(st.get("/live/nope.m3u8"), 404, "not_found")


def mint(kind, scope, url, exp, secret=SECRET):
    """A relay token made in Python (tests/integration/tokens.py), not by the relay."""
    return tokens.mint(kind + scope.encode() + b"\n" + url.encode(), exp, secret)


def test_tokens(st, origin):
    seg_url = origin.url("/plain/seg00.ts")
    good = mint(b"s", "m:master", seg_url, int(time.time()) + 600)
    assert st.get(f"/api/seg/{good}.ts").status == 200
    # The Python-made token is the relay's own format: the relay made the same.
    expired = mint(b"s", "m:master", seg_url, int(time.time()) - 1)
    assert_json_error(st.get(f"/api/seg/{expired}.ts"), 403, "token_expired")
    forged = mint(b"s", "m:master", seg_url, int(time.time()) + 600, secret="x" * 32)
    assert_json_error(st.get(f"/api/seg/{forged}.ts"), 403, "forbidden")
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    assert_json_error(st.get(f"/api/seg/{flipped}.ts"), 403, "forbidden")
    # A segment token is no playlist token, and the other way round.
    assert_json_error(st.get(f"/api/m3u8/{good}.m3u8"), 403, "forbidden")
    playlist = mint(b"p", "m:master", origin.url("/plain/index.m3u8"), int(time.time()) + 600)
    assert st.get(f"/api/m3u8/{playlist}.m3u8").status == 200
    assert_json_error(st.get(f"/api/seg/{playlist}"), 403, "forbidden")
    # A scope whose media item does not exist.
    orphan = mint(b"s", "m:nobody", seg_url, int(time.time()) + 600)
    assert_json_error(st.get(f"/api/seg/{orphan}.ts"), 404, "not_found")
    # The same playlist twice in one hour: the same bytes (cacheable).
    a = st.get("/api/media/master/index.m3u8").body
    b = st.get("/api/media/master/index.m3u8").body
    assert a == b


def test_stream_playlists_are_rewritten(st, origin):
    """/stream hands a playlist to the rewriter: by its name, or by its Content-Type."""
    import urllib.parse
    for path in ("/plain/index.m3u8", "/plain/noext"):
        url = urllib.parse.quote(origin.url(path), safe="")
        r = st.get(f"/stream?url={url}")
        assert r.status == 200, r
        segs = relay_lines(r.body.decode())
        assert len(segs) == 4 and all(s.startswith("/api/seg/") for s in segs), r.body
        assert st.get(segs[1]).status == 200
        play(st.url(f"/stream?url={url}"))
    # Not a playlist: relayed as it is.
    mp4 = urllib.parse.quote(origin.url("/plain/seg00.ts"), safe="")
    r = st.get(f"/stream?url={mp4}")
    assert r.status == 200 and r.body == origin.path("plain/seg00.ts").read_bytes()


# --- fMP4 (EXT-X-MAP), separate audio renditions, EXT-X-BYTERANGE --------------------
# More real-player cases (issue 4): the streams are made by ffmpeg here, served by
# an nginx origin of their own, and played through a stack of their own.

FFMPEG_AV = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "8",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
             "-c:a", "aac", "-b:a", "64k"]
FFMPEG_HLS = ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"]

# What an 8 s, 25 fps, 44.1 kHz AAC stream has at least when it was played whole
# (200 frames, ~345 AAC frames); a player that stops early or skips a segment
# (2 s: 50 frames) falls below.
MIN_VIDEO_FRAMES = 190
MIN_AUDIO_FRAMES = 320


def make_fmp4(d, name):
    """A 8 s fMP4 HLS VOD in d/name/: EXT-X-MAP init.mp4 + four .m4s segments."""
    out = d / name
    out.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", *FFMPEG_AV, *FFMPEG_HLS,
                    "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
                    "-hls_segment_filename", str(out / "seg%02d.m4s"), str(out / "index.m3u8")],
                   check=True, timeout=120)
    text = (out / "index.m3u8").read_text()
    assert '#EXT-X-MAP:URI="init.mp4"' in text and "seg03.m4s" in text, text


def make_byterange(d, name):
    """A 8 s TS HLS VOD in d/name/ as one file, all.ts, cut by EXT-X-BYTERANGE."""
    out = d / name
    out.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", *FFMPEG_AV, *FFMPEG_HLS,
                    "-hls_flags", "single_file", "-hls_segment_filename", str(out / "all.ts"),
                    str(out / "index.m3u8")], check=True, timeout=120)
    text = (out / "index.m3u8").read_text()
    assert text.count("#EXT-X-BYTERANGE:") == 4 and text.count("\nall.ts") == 4, text


ALT_CODECS = 'CODECS="avc1.42c00c,mp4a.40.2"'


def make_alt_audio(d, name):
    """d/name/master.m3u8: two video-only TS variants (video/hi, video/lo) and an
    audio rendition group "aud" with two audio-only TS renditions (audio/en, 440 Hz,
    DEFAULT=YES; audio/fr, 660 Hz), each 8 s in 2 s segments."""
    out = d / name
    for sub, args in (("video/hi", ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-an",
                                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "50"]),
                      ("video/lo", ["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-an",
                                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "50"]),
                      ("audio/en", ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                                    "-vn", "-c:a", "aac", "-b:a", "64k"]),
                      ("audio/fr", ["-f", "lavfi", "-i", "sine=frequency=660:sample_rate=44100",
                                    "-vn", "-c:a", "aac", "-b:a", "64k"])):
        (out / sub).mkdir(parents=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, "-t", "8", *FFMPEG_HLS,
                        "-hls_segment_filename", str(out / sub / "seg%02d.ts"),
                        str(out / sub / "index.m3u8")], check=True, timeout=120)
    (out / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:4\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",'
        'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="1",URI="audio/en/index.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Francais",LANGUAGE="fr",'
        'DEFAULT=NO,AUTOSELECT=YES,CHANNELS="1",URI="audio/fr/index.m3u8"\n'
        f'#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180,{ALT_CODECS},AUDIO="aud"\n'
        "video/hi/index.m3u8\n"
        f'#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x90,{ALT_CODECS},AUDIO="aud"\n'
        "video/lo/index.m3u8\n")


def make_more_media(www):
    """The three streams of the cases below, under www/fmp4, www/br, www/alt."""
    make_fmp4(www, "fmp4")
    make_byterange(www, "br")
    make_alt_audio(www, "alt")


MORE_MEDIA = {"fmp4": "/fmp4/index.m3u8", "br": "/br/index.m3u8", "alt": "/alt/master.m3u8"}


def more_media_config(o):
    """These cases check what the relay itself served (its log): the web
    server keeps nothing (hls.edge_cache_s 0).  The first module's stack
    plays through the edge cache."""
    return make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        hls={"edge_cache_s": 0},
        media={k: {"provider": "direct", "source": {"url": o.url(p)}}
               for k, p in MORE_MEDIA.items()})


@pytest.fixture(scope="module")
def more_origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("hls-more-origin"))
    make_more_media(o.path(""))
    return o


@pytest.fixture(scope="module")
def more_st(request, more_origin):
    yield from module_stack(request, more_media_config(more_origin),
                            extra_nginx=more_origin.nginx_conf())


def uri_attr(line):
    return line.split('URI="', 1)[1].split('"', 1)[0]


def assert_relayed(text, origin):
    """Nothing in a rewritten playlist points at the origin: every URI line and
    URI="…" attribute is a relay path."""
    assert origin.base_url not in text and origin.host not in text, text
    assert "http://" not in text and "https://" not in text, text
    for line in text.splitlines():
        uris = ([uri_attr(line)] if 'URI="' in line else []) if line.startswith("#") else [line]
        for u in uris:
            if u:
                assert u.startswith(("/api/seg/", "/api/m3u8/")), line


def relay_served(st, since=0):
    """[(upstream URL path, status)] of the segment requests the relay answered
    (its access log from line `since` on), the URL read out of each token."""
    out = []
    for line in st.log("segment").splitlines()[since:]:
        m = re.search(r" GET /api/seg/([A-Za-z0-9_-]+)[^ ]* (\d{3}) ", line)
        if not m:
            continue
        url = tokens.unseal(m.group(1))[1].split(b"\n", 1)[1].decode()
        out.append((urllib.parse.urlsplit(url).path, int(m.group(2))))
    return out


def log_len(st):
    return len(st.log("segment").splitlines())


def remux_and_count(url, tmp_path, name="out.mkv"):
    """ffmpeg reads every stream of url through the relay (-map 0 -c copy) into a
    Matroska file (exit code 0, no error printed); ffprobe then decodes that file.
    Returns [(codec_type, decoded frames, language tag), …] and the duration (s)."""
    out = tmp_path / name
    r = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", url, "-map", "0",
                        "-c", "copy", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-of", "json",
                        "-show_entries", "stream=codec_type,nb_read_frames:stream_tags=language"
                        ":format=duration", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    streams = [(s["codec_type"], int(s.get("nb_read_frames", 0)),
                (s.get("tags") or {}).get("language"))
               for s in info["streams"]]
    return streams, float(info["format"]["duration"])


def test_fmp4_map_is_relayed_with_its_extension(more_st, more_origin):
    r = more_st.get("/api/media/fmp4/index.m3u8")
    assert r.status == 200, r
    text = r.body.decode()
    assert_relayed(text, more_origin)
    maps = [l for l in text.splitlines() if l.startswith("#EXT-X-MAP:")]
    assert len(maps) == 1, text
    init_uri = uri_attr(maps[0])
    assert init_uri.startswith("/api/seg/") and init_uri.endswith(".mp4"), maps
    segs = relay_lines(text)
    assert len(segs) == 4 and all(s.startswith("/api/seg/") and s.endswith(".m4s")
                                  for s in segs), text
    init = more_st.get(init_uri)
    assert init.status == 200, init
    assert init.body == more_origin.path("fmp4/init.mp4").read_bytes()
    assert init.body[4:8] == b"ftyp", init.body[:16]
    seg = more_st.get(segs[1])
    assert seg.status == 200 and seg.body == more_origin.path("fmp4/seg01.m4s").read_bytes(), seg
    assert b"moof" in seg.body[:4096], seg.body[:64]        # styp, sidx, moof, mdat


def test_fmp4_plays_with_ffmpeg(more_st, more_origin, tmp_path):
    before = log_len(more_st)
    streams, duration = remux_and_count(more_st.url("/api/media/fmp4/index.m3u8"), tmp_path)
    kinds = sorted(k for k, _, _ in streams)
    assert kinds == ["audio", "video"], streams
    frames = dict((k, n) for k, n, _ in streams)
    assert frames["video"] >= MIN_VIDEO_FRAMES, streams
    assert frames["audio"] >= MIN_AUDIO_FRAMES, streams
    assert 7.5 <= duration <= 9.0, duration
    # Every part went through the relay (from its cache or the origin).
    served = relay_served(more_st, before)
    for name in ("init.mp4", "seg00.m4s", "seg01.m4s", "seg02.m4s", "seg03.m4s"):
        assert any(p == f"/fmp4/{name}" and status in (200, 206)
                   for p, status in served), (name, served)


def test_alt_audio_master_is_rewritten(more_st, more_origin):
    r = more_st.get("/api/media/alt/index.m3u8")
    assert r.status == 200, r
    text = r.body.decode()
    assert_relayed(text, more_origin)
    media = [l for l in text.splitlines() if l.startswith("#EXT-X-MEDIA:")]
    assert len(media) == 2, text
    for line, lang, default in ((media[0], "en", "YES"), (media[1], "fr", "NO")):
        # Only the URI changes: the other attributes stay as written, in order.
        assert line.startswith('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",'), line
        assert f'LANGUAGE="{lang}",DEFAULT={default},' in line, line
        uri = uri_attr(line)
        assert uri.startswith("/api/m3u8/") and uri.endswith(".m3u8"), line
        audio = more_st.get(uri)
        assert audio.status == 200, audio
        atext = audio.body.decode()
        assert_relayed(atext, more_origin)
        segs = relay_lines(atext)
        orig = relay_lines(more_origin.path(f"alt/audio/{lang}/index.m3u8").read_text())
        assert len(segs) == len(orig) >= 4 and all(s.endswith(".ts") for s in segs), atext
        seg = more_st.get(segs[0])
        assert seg.status == 200
        assert seg.body == more_origin.path(f"alt/audio/{lang}/seg00.ts").read_bytes()
    inf = [l for l in text.splitlines() if l.startswith("#EXT-X-STREAM-INF:")]
    assert len(inf) == 2 and all(l.endswith('AUDIO="aud"') for l in inf), text
    assert all(v.startswith("/api/m3u8/") for v in relay_lines(text)), text


def test_alt_audio_plays_with_ffmpeg(more_st, more_origin, tmp_path):
    url = more_st.url("/api/media/alt/index.m3u8")
    # ffprobe on the relay's master: video from the variants, audio from the group.
    p = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries",
                        "stream=codec_type,codec_name:stream_tags=language", url],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    probed = json.loads(p.stdout)["streams"]
    assert {s["codec_type"] for s in probed} == {"video", "audio"}, probed
    before = log_len(more_st)
    streams, duration = remux_and_count(url, tmp_path)
    video = [n for k, n, _ in streams if k == "video"]
    audio = {lang: n for k, n, lang in streams if k == "audio"}
    assert video and all(n >= MIN_VIDEO_FRAMES for n in video), streams
    assert set(audio) == {"en", "fr"}, streams
    assert all(n >= MIN_AUDIO_FRAMES for n in audio.values()), streams
    assert 7.5 <= duration <= 9.0, duration
    served = relay_served(more_st, before)
    for sub in ("video/hi", "video/lo", "audio/en", "audio/fr"):
        for i in range(4):
            assert any(p == f"/alt/{sub}/seg0{i}.ts" and status in (200, 206)
                       for p, status in served), (sub, i, served)


def test_byterange_playlist_is_rewritten(more_st, more_origin):
    r = more_st.get("/api/media/br/index.m3u8")
    assert r.status == 200, r
    text = r.body.decode()
    assert_relayed(text, more_origin)
    orig = more_origin.path("br/index.m3u8").read_text()
    # The byte ranges stay as written; the four URI lines are one relay URL (.ts).
    ranges = [l for l in text.splitlines() if l.startswith("#EXT-X-BYTERANGE:")]
    assert ranges == [l for l in orig.splitlines() if l.startswith("#EXT-X-BYTERANGE:")], text
    segs = relay_lines(text)
    assert len(segs) == 4 and len(set(segs)) == 1, text
    assert segs[0].startswith("/api/seg/") and segs[0].endswith(".ts"), segs
    whole = more_origin.path("br/all.ts").read_bytes()
    for rng in ranges:
        n, off = (int(x) for x in rng.split(":", 1)[1].split("@"))
        part = more_st.get(segs[0], headers={"Range": f"bytes={off}-{off + n - 1}"})
        assert part.status == 206, part
        assert part.header("Content-Range") == f"bytes {off}-{off + n - 1}/{len(whole)}", part
        assert part.body == whole[off:off + n]
        assert part.body[:1] == b"\x47"


def test_byterange_plays_with_ffmpeg(more_st, more_origin, tmp_path):
    """With the segment cache: ffmpeg's range requests are answered from one
    cached copy of the file, which the origin sent once, whole."""
    before = log_len(more_st)
    streams, duration = remux_and_count(more_st.url("/api/media/br/index.m3u8"), tmp_path)
    frames = dict((k, n) for k, n, _ in streams)
    assert sorted(frames) == ["audio", "video"], streams
    assert frames["video"] >= MIN_VIDEO_FRAMES and frames["audio"] >= MIN_AUDIO_FRAMES, streams
    assert 7.5 <= duration <= 9.0, duration
    served = [status for p, status in relay_served(more_st, before) if p == "/br/all.ts"]
    assert served.count(206) >= 4, served
    fetched = [l for l in more_origin.log_lines() if "/br/all.ts" in l]
    assert len([l for l in fetched if " 200 " in l]) <= 1, fetched


def test_byterange_plays_uncached(more_st, more_origin, tmp_path):
    """Without the cache, each range goes to the origin as a range.  (A second
    stack; the origin stays the one more_st's nginx serves.)"""
    s = Stack(deep_merge(more_media_config(more_origin), {"hls": {"segment_cache_max_bytes": 0}}))
    failed = True
    try:
        s.start()
        before = len(more_origin.log_lines())
        streams, duration = remux_and_count(s.url("/api/media/br/index.m3u8"), tmp_path)
        frames = dict((k, n) for k, n, _ in streams)
        assert frames["video"] >= MIN_VIDEO_FRAMES and frames["audio"] >= MIN_AUDIO_FRAMES
        assert 7.5 <= duration <= 9.0, duration
        fetched = [l for l in more_origin.log_lines()[before:] if "/br/all.ts" in l]
        ranges = [l.split('"')[1] for l in fetched if " 206 " in l]
        orig = more_origin.path("br/index.m3u8").read_text()
        for rng in (l for l in orig.splitlines() if l.startswith("#EXT-X-BYTERANGE:")):
            n, off = (int(x) for x in rng.split(":", 1)[1].split("@"))
            assert f"bytes={off}-{off + n - 1}" in ranges, (off, n, fetched)
        assert not any(" 200 " in l for l in fetched), fetched      # never the whole file
        failed = False
    finally:
        _finish(s, failed)


def test_define_import_reaches_the_nested_playlist(st, origin):
    """A master's EXT-X-DEFINE values travel with its variant's relay URL, so
    the media playlist's EXT-X-DEFINE:IMPORT resolves as a player's would."""
    www = origin.path("")
    (www / "vars").mkdir(exist_ok=True)
    (www / "vars" / "master.m3u8").write_text(
        '#EXTM3U\n#EXT-X-DEFINE:NAME="dir",VALUE="plain"\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=800000\nmedia.m3u8\n")
    media = (www / "plain" / "index.m3u8").read_text()
    media = media.replace("#EXTM3U\n", '#EXTM3U\n#EXT-X-DEFINE:IMPORT="dir"\n', 1)
    media = "\n".join(f"../{{$dir}}/{l}" if l.endswith(".ts") else l
                      for l in media.splitlines()) + "\n"
    (www / "vars" / "media.m3u8").write_text(media)
    tok = mint(b"p", "m:master", origin.url("/vars/master.m3u8"), int(time.time()) + 600)
    r = st.get(f"/api/m3u8/{tok}.m3u8")
    assert r.status == 200, r
    variant = relay_lines(r.body.decode())[0]
    r = st.get(variant)
    assert r.status == 200, r
    segs = relay_lines(r.body.decode())
    assert len(segs) == 4
    seg = st.get(segs[0])
    assert seg.status == 200 and seg.body[:1] == b"\x47"      # a TS packet
    assert seg.body == (www / "plain" / "seg00.ts").read_bytes()
    play(st.url(f"/api/m3u8/{tok}.m3u8"))
