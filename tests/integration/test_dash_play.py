"""DASH through the relay (issue 5), played by ffmpeg: a SegmentTemplate
stream (video + audio, SegmentTimeline), a SegmentList stream, a single file
cut by byte ranges, a SegmentBase stream (indexRange), and a multi-period
MPD whose periods live in other directories.  Every URL in the rewritten MPD
points at the relay; tails that would leave their signed directory are
refused; MPDs that are not MPDs, or declare entities, are refused."""

import re
import shutil
import struct
import subprocess
import time
import urllib.parse

import pytest

from conftest import assert_json_error, make_config
from proxyutil import NginxOrigin, get_until, module_stack, raw_get
from test_hls_play import mint

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")

AV = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
      "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
      "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
      "-c:a", "aac", "-b:a", "64k"]


def ffmpeg(*args, cwd=None):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120, cwd=cwd)


def boxes(data):
    """Top-level MP4 boxes: [(type, offset, size)]."""
    out, off = [], 0
    while off + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        if size == 1:
            size = struct.unpack(">Q", data[off + 8:off + 16])[0]
        if size < 8:
            break
        out.append((kind.decode("latin-1"), off, size))
        off += size
    return out


def make_media(www):
    (www / "tmpl").mkdir()
    ffmpeg(*AV, "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
           "manifest.mpd", cwd=www / "tmpl")
    (www / "list").mkdir()
    ffmpeg(*AV, "-f", "dash", "-seg_duration", "2", "-use_template", "0", "-use_timeline", "0",
           "manifest.mpd", cwd=www / "list")
    (www / "single").mkdir()
    ffmpeg(*AV, "-f", "dash", "-seg_duration", "2", "-single_file", "1",
           "-single_file_name", "single-$RepresentationID$.mp4", "manifest.mpd",
           cwd=www / "single")
    # SegmentBase: one fragmented MP4 with a sidx, and an MPD that says where
    # its init section and index are.
    (www / "sbase").mkdir()
    ffmpeg(*AV[:4], "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
           "-movflags", "+frag_keyframe+empty_moov+global_sidx+default_base_moof",
           "-f", "mp4", str(www / "sbase" / "video.mp4"))
    data = (www / "sbase" / "video.mp4").read_bytes()
    bx = boxes(data)
    moov_end = next(o + s for k, o, s in bx if k == "moov")
    sidx = next((o, o + s - 1) for k, o, s in bx if k == "sidx")
    (www / "sbase" / "manifest.mpd").write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"
     type="static" mediaPresentationDuration="PT8S" minBufferTime="PT2S">
  <Period>
    <AdaptationSet mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
      <Representation id="v" codecs="avc1.42c00c" bandwidth="700000" width="320" height="180">
        <BaseURL>video.mp4</BaseURL>
        <SegmentBase indexRange="{sidx[0]}-{sidx[1]}">
          <Initialization range="0-{moov_end - 1}"/>
        </SegmentBase>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
""")
    # Two periods, each in a directory of its own (BaseURL per Period), and
    # a Location that must point back at the relay.
    text = (www / "tmpl" / "manifest.mpd").read_text()
    period = re.search(r"<Period.*</Period>", text, re.S).group(0)
    p1 = period.replace('<Period id="0" start="PT0.0S">',
                        '<Period id="p1" start="PT0S">\n<BaseURL>tmpl/</BaseURL>', 1)
    p2 = period.replace('<Period id="0" start="PT0.0S">',
                        '<Period id="p2" start="PT8S">\n<BaseURL>../media/list-copy/</BaseURL>', 1)
    head = text[:text.index("<Period")].replace('mediaPresentationDuration="PT8.0S"',
                                                'mediaPresentationDuration="PT16.0S"')
    (www / "multi").mkdir()
    (www / "multi" / "manifest.mpd").write_text(
        head.replace("<ProgramInformation>",
                     "<Location>manifest.mpd</Location>\n\t<ProgramInformation>", 1)
        + p1 + "\n" + p2 + "\n</MPD>\n")
    shutil.copytree(www / "tmpl", www / "multi" / "tmpl")
    (www / "media").mkdir()
    shutil.copytree(www / "tmpl", www / "media" / "list-copy")
    (www / "bad").mkdir()
    (www / "bad" / "html.mpd").write_text("<html><body>sorry</body></html>\n")
    (www / "bad" / "xxe.mpd").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE MPD [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>&x;</BaseURL></MPD>\n')
    (www / "bad" / "bomb.mpd").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE MPD [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">'
                  for i in range(8))
        + ']>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>&i;</BaseURL></MPD>\n')


ITEMS = {"tmpl": "/tmpl/manifest.mpd", "list": "/list/manifest.mpd",
         "single": "/single/manifest.mpd", "sbase": "/sbase/manifest.mpd",
         "multi": "/multi/manifest.mpd", "html": "/bad/html.mpd", "xxe": "/bad/xxe.mpd",
         "bomb": "/bad/bomb.mpd", "gone": "/bad/nope.mpd"}


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("dash-origin"))
    make_media(o.path(""))
    return o


@pytest.fixture(scope="module")
def st(request, origin):
    cfg = make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        media={k: {"provider": "direct", "source": {"url": origin.url(p)}}
               for k, p in ITEMS.items()})
    yield from module_stack(request, cfg, extra_nginx=origin.nginx_conf())


def probe(url):
    """ffmpeg reads every stream through the relay; ffprobe counts the frames."""
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-of", "json",
                        "-show_entries", "stream=codec_type,nb_read_frames", url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import json
    return {s["codec_type"]: int(s.get("nb_read_frames", 0))
            for s in json.loads(r.stdout)["streams"]}


def urls_in(text):
    """Every URL-ish value of the MPD: BaseURL/Location text, URL attributes."""
    out = re.findall(r"<(?:BaseURL|Location)[^>]*>([^<]*)<", text)
    out += re.findall(r'(?:media|initialization|sourceURL)="([^"]*)"', text)
    return out


@pytest.mark.parametrize("item", ["tmpl", "list", "single"])
def test_ffmpeg_plays_through_the_relay(st, origin, item):
    r = st.get(f"/api/media/{item}/manifest.mpd")
    assert r.status == 200, r
    assert r.header("content-type") == "application/dash+xml"
    text = r.body.decode()
    assert origin.host not in text
    assert "/api/seg/" in text
    # Exactly what ffmpeg reads from the origin itself (its DASH reader
    # skips a SegmentList's first segment either way: 150 of 200 frames).
    got = probe(st.url(f"/api/media/{item}/manifest.mpd"))
    direct = probe(origin.url(ITEMS[item]))
    assert got == direct and got.get("video", 0) >= 150 and got.get("audio", 0) >= 250, got


def test_segment_base_is_relayed_with_its_ranges(st, origin):
    r = st.get("/api/media/sbase/manifest.mpd")
    assert r.status == 200, r
    text = r.body.decode()
    base = re.search(r"<BaseURL>([^<]*)</BaseURL>", text).group(1)
    assert base.startswith("/api/seg/") and base.endswith("/video.mp4"), base
    init = re.search(r'<Initialization range="0-(\d+)"', text).group(1)
    data = origin.path("sbase/video.mp4").read_bytes()
    r = raw_get(st.port, base, {"Range": f"bytes=0-{init}"})
    assert r.status == 206 and r.body == data[:int(init) + 1]
    idx = re.search(r'indexRange="(\d+)-(\d+)"', text).groups()
    r = raw_get(st.port, base, {"Range": f"bytes={idx[0]}-{idx[1]}"})
    assert r.status == 206 and r.body[4:8] == b"sidx"
    got = probe(st.url("/api/media/sbase/manifest.mpd"))
    assert got.get("video", 0) >= 190, got


def test_multi_period_and_location(st, origin):
    r = st.get("/api/media/multi/manifest.mpd")
    assert r.status == 200, r
    text = r.body.decode()
    assert origin.host not in text
    for u in urls_in(text):
        if u.startswith(("init-", "chunk-")):
            continue        # templates under a relayed BaseURL
        assert u.startswith("/api/"), (u, text)
    loc = re.search(r"<Location>([^<]*)</Location>", text).group(1)
    assert loc.startswith("/api/m3u8/") and loc.endswith(".mpd")
    again = st.get(loc)
    assert again.status == 200 and again.body == r.body
    # ffmpeg 5.1 reads the first period only, from the relay as from the
    # origin (dash.js and shaka play both: test_dash_browser.py).
    got = probe(st.url("/api/media/multi/manifest.mpd"))
    assert got == probe(origin.url(ITEMS["multi"])) and got.get("video", 0) >= 190, got


def test_tails_that_leave_the_directory_are_refused(st, origin):
    text = st.get("/api/media/tmpl/manifest.mpd").body.decode()
    base = re.search(r"<BaseURL>([^<]*)</BaseURL>", text).group(1)
    assert base.startswith("/api/seg/") and base.endswith("/"), base
    ok = raw_get(st.port, base + "init-stream0.m4s")
    assert ok.status == 200
    assert ok.body == origin.path("tmpl/init-stream0.m4s").read_bytes()
    for tail in ("%2e%2e/list/manifest.mpd", "..%2flist/manifest.mpd", "a%2F..%2F..%2Fx",
                 "%2E%2E/%2E%2E/etc/passwd", "x%5c..%5c..%5cy", "http:%2f%2fevil.example/x",
                 ".%2e/x"):
        r = raw_get(st.port, base + tail)
        assert r.status in (403, 404), (tail, r.status)
        if r.status == 403:
            assert b"forbidden" in r.body
    # The token covers the directory, not the host: another token's tail is
    # not this one's, and a tampered token is refused.
    tok = base.split("/")[3]
    bad = tok[:8] + ("A" if tok[8] != "A" else "B") + tok[9:]
    assert_json_error(st.get(f"/api/seg/{bad}/init-stream0.m4s"), 403, "forbidden")


def test_directory_tokens_are_not_segment_tokens(st, origin):
    seg = mint(b"s", "m:tmpl", origin.url("/tmpl/init-stream0.m4s"), int(time.time()) + 600)
    assert_json_error(st.get(f"/api/seg/{seg}/x.m4s"), 403, "forbidden")
    d = mint(b"d", "m:tmpl", origin.url("/tmpl/"), int(time.time()) + 600)
    assert st.get(f"/api/seg/{d}/init-stream0.m4s").status == 200
    assert_json_error(st.get(f"/api/seg/{d}.m4s"), 403, "forbidden")
    expired = mint(b"d", "m:tmpl", origin.url("/tmpl/"), int(time.time()) - 1)
    assert_json_error(st.get(f"/api/seg/{expired}/init-stream0.m4s"), 403, "token_expired")


def test_bad_manifests_are_refused(st):
    assert_json_error(st.get("/api/media/html/manifest.mpd"), 502, "bad_manifest")
    # (Each within the client's 10 s timeout; the unit tests show the
    # refusal happens while parsing, before any expansion.)
    r = st.get("/api/media/xxe/manifest.mpd")
    assert_json_error(r, 502, "bad_manifest")
    assert b"root:" not in r.body
    assert_json_error(st.get("/api/media/bomb/manifest.mpd"), 502, "bad_manifest")
    assert_json_error(st.get("/api/media/gone/manifest.mpd"), 404, "upstream_status")


def test_dynamic_mpd_is_fetched_once_per_half_update_period(request):
    """A live (dynamic) MPD: 20 viewers at once cost one upstream fetch; the
    copy is fresh for half of minimumUpdatePeriod (PT2S -> 1 s)."""
    import threading
    from conftest import Stack, _finish
    from proxyutil import ScriptedOrigin
    o = ScriptedOrigin()
    state = {"n": 0}

    def mpd(h, seen):
        time.sleep(0.3)
        h.answer(200, {"Content-Type": "application/dash+xml"}, f"""<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT2S"
     availabilityStartTime="2026-01-01T00:00:00Z" minBufferTime="PT2S">
  <Period id="p0" start="PT0S"><AdaptationSet mimeType="video/mp4">
    <Representation id="v" bandwidth="100000">
      <SegmentTemplate media="s$Number$.m4s" initialization="init.mp4" duration="2"
                       startNumber="{state['n']}"/>
    </Representation></AdaptationSet></Period>
</MPD>
""")
    o.route("/live/manifest.mpd", mpd)
    s = Stack(make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                          media={"live": {"provider": "direct",
                                          "source": {"url": o.url("/live/manifest.mpd")}}}))
    failed = True
    try:
        s.start()
        got = []
        ts = [threading.Thread(target=lambda: got.append(raw_get(s.port,
                               "/api/media/live/manifest.mpd"))) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert len(got) == 20 and all(r.status == 200 for r in got)
        assert len({r.body for r in got}) == 1
        assert len(o.requests_to("/live/manifest.mpd")) == 1
        assert b"/api/seg/" in got[0].body and o.host.encode() not in got[0].body
        state["n"] = 1
        # Answered from the copy until it goes stale; then fetched again.
        r = get_until(s.port, "/api/media/live/manifest.mpd",
                      lambda r: r.headers.get("x-cache") != "HIT", what="the MPD copy going stale")
        assert r.headers["x-cache"] == "MISS" and r.body != got[0].body
        assert len(o.requests_to("/live/manifest.mpd")) == 2
        failed = False
    finally:
        _finish(s, failed)
        o.close()
