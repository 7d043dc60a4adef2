"""The bilibili provider (issue 6) on the real stack.

The web API is mocked (a ScriptedOrigin at providers.bilibili.api_base)
from its documented shapes: /x/web-interface/view (title, pic, pages with
their cid) and /x/player/playurl (dash.video[]/audio[] with SegmentBase
ranges, or durl[]).  The media are fragmented MP4s with a sidx made here by
ffmpeg, served by an nginx origin that refuses any request without
`Referer: https://www.bilibili.com` (as Bilibili's CDN does), behind links
with `deadline=`.  Covered: the DASH MediaSource (inline MPD, expiry from
the links, the other codec as a video-only more_sources entry), the MPD
served through the relay and played by ffmpeg, the header policy on the API
and the CDN, the progressive (durl) case, API errors, source validation,
can_handle through /api/resolve, and one resolution for concurrent asks."""

import html
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import ADMIN_TOKEN, assert_json_error, make_config
from proxyutil import NginxOrigin, ScriptedOrigin, module_stack, path_of, raw_get
from test_dash_play import boxes

pytestmark = pytest.mark.skipif(not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
                                reason="ffmpeg/ffprobe not installed")

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REFERER = "https://www.bilibili.com"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) MrTest/1.0"
SESSDATA = "abc123%2Ctest"
DEADLINE = int(time.time()) + 3600

BV_DASH = "BV1xx411c7mD"
BV_DURL = "BV1Durl00001"
BV_PAGES = "BV1Pages0002"
BV_GONE = "BV1NotFound1"
BV_DENIED = "BV1Forbidden"
BV_GARBAGE = "BV1Malformed"
BV_MANY = "BV1Concurrnt"
BV_REVOKED = "BV1Revoked01"
BV_REVDURL = "BV1RevDurl01"

CID = {BV_DASH: 279786, BV_DURL: 279787, BV_DENIED: 279788, BV_MANY: 279789,
       BV_REVOKED: 279790, BV_REVDURL: 279791}
PAGES_CIDS = [500001, 500002]

FRAG = "+frag_keyframe+empty_moov+global_sidx+default_base_moof"


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def ranges(path):
    """(Initialization range, indexRange) of an indexed fragmented MP4."""
    bx = boxes(path.read_bytes())
    moov_end = next(o + s for k, o, s in bx if k == "moov")
    sidx = next((o, o + s - 1) for k, o, s in bx if k == "sidx")
    assert sidx[0] >= moov_end, bx
    return f"0-{moov_end - 1}", f"{sidx[0]}-{sidx[1]}"


@pytest.fixture(scope="module")
def cdn(tmp_path_factory):
    """The media, on an nginx origin that wants Bilibili's Referer."""
    o = NginxOrigin(tmp_path_factory.mktemp("bili-cdn"))
    www = o.path("")
    (www / "upgcxcode").mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "4", "-c:v", "libx264",
           "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-movflags", FRAG,
           "-f", "mp4", str(www / "upgcxcode" / "v-avc.m4s"))
    # The "HEVC" file is the same bytes under another name: what is tested
    # is where the relay sends a player, not the decoder.
    shutil.copy(www / "upgcxcode" / "v-avc.m4s", www / "upgcxcode" / "v-hevc.m4s")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4", "-c:a", "aac",
           "-b:a", "64k", "-movflags", FRAG, "-f", "mp4", str(www / "upgcxcode" / "a.m4s"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i",
           "sine=frequency=440:sample_rate=48000", "-t", "4", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart",
           str(www / "upgcxcode" / "whole.mp4"))
    o.ranges = {n: ranges(www / "upgcxcode" / n) for n in ("v-avc.m4s", "v-hevc.m4s", "a.m4s")}
    o.ref_log = o.dir / "referer.log"
    return o


def cdn_nginx(cdn):
    return ("log_format mr_bili '$request_uri $status \"$http_referer\" \"$http_user_agent\" "
            "\"$http_cookie\"';\n"
            + cdn.nginx_conf(extra_locations=f"""
    location /upgcxcode/ {{
        access_log {cdn.ref_log} mr_bili;
        if ($http_referer != "{REFERER}") {{ return 403; }}
    }}"""))


def signed(cdn, name, base=None, sig="0123abcd"):
    return (base or cdn.base_url) + (f"/upgcxcode/{name}?e=ig8euxZM2rNcNbdlhoNvNC8BqJIzNbfq&deadline={DEADLINE}"
                   f"&gen=playurlv2&os=bcache&oi=0&upsig={sig}&uipk=5")


def dash_answer(cdn, base=None, sig="0123abcd"):
    def rep(name, rid, codecid, codecs, bw, mime="video/mp4", **extra):
        init, index = cdn.ranges[name]
        u = signed(cdn, name, base, sig)
        r = {"id": rid, "baseUrl": u, "base_url": u, "backupUrl": [], "backup_url": [],
             "bandwidth": bw, "mimeType": mime, "mime_type": mime, "codecs": codecs,
             "startWithSap": 1, "start_with_sap": 1,
             "SegmentBase": {"Initialization": init, "indexRange": index},
             "segment_base": {"initialization": init, "index_range": index}, "codecid": codecid}
        r.update(extra)
        return r
    video = [rep("v-avc.m4s", 32, 7, "avc1.64000d", 300000, width=320, height=180,
                 frameRate="25.000", sar="1:1"),
             rep("v-hevc.m4s", 32, 12, "hev1.1.6.L120.90", 200000, width=320, height=180,
                 frameRate="25.000", sar="N/A")]
    audio = [rep("a.m4s", 30280, 0, "mp4a.40.2", 64000, mime="audio/mp4")]
    return {"quality": 32, "format": "flv480", "timelength": 4000,
            "accept_quality": [32], "accept_description": ["480P"],
            "dash": {"duration": 4, "minBufferTime": 1.5, "min_buffer_time": 1.5,
                     "video": video, "audio": audio, "dolby": None, "flac": None}}


def view_answer(bvid, pages):
    return {"bvid": bvid, "aid": 170001, "title": f"Test video {bvid}",
            "pic": "http://i0.hdslb.com/bfs/archive/cover.jpg", "duration": 4 * len(pages),
            "pages": [{"cid": c, "page": i + 1, "part": f"part {i + 1}", "duration": 4}
                      for i, c in enumerate(pages)]}


class Revoking:
    """A second CDN (on the API's mock, under /cdn/) whose links can be revoked
    before their deadline, as Bilibili's are: each playurl answer gets a new
    upsig; revoke() makes the CDN refuse every upsig handed out so far."""

    def __init__(self):
        self.issued, self.revoked = [], set()
        self.lock = threading.Lock()

    def new_sig(self):
        with self.lock:
            self.issued.append(f"r{len(self.issued)}")
            return self.issued[-1]

    def revoke(self):
        with self.lock:
            self.revoked |= set(self.issued)


def serve_file(h, data):
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range") or "")
    if not m:
        return h.answer(200, {"Content-Type": "video/mp4", "Accept-Ranges": "bytes"}, data)
    start = int(m.group(1))
    end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
    if start > end:
        return h.answer(416, {"Content-Range": f"bytes */{len(data)}"})
    h.answer(206, {"Content-Type": "video/mp4", "Accept-Ranges": "bytes",
                   "Content-Range": f"bytes {start}-{end}/{len(data)}"}, data[start:end + 1])


@pytest.fixture(scope="module")
def revoking():
    return Revoking()


@pytest.fixture(scope="module")
def api(cdn, revoking):
    o = ScriptedOrigin()

    def ok(h, data):
        h.answer(200, {"Content-Type": "application/json; charset=utf-8"},
                 json.dumps({"code": 0, "message": "0", "ttl": 1, "data": data}))

    def err(h, code, message):
        h.answer(200, {"Content-Type": "application/json; charset=utf-8"},
                 json.dumps({"code": code, "message": message, "ttl": 1}))

    def view(h, seen):
        bvid = urllib.parse.parse_qs(seen.query).get("bvid", [""])[0]
        if bvid == BV_GONE:
            return err(h, -404, "啥都木有")
        if bvid == BV_GARBAGE:
            return h.answer(200, {"Content-Type": "application/json"}, b'{"code":0,"data":{')
        if bvid == BV_MANY:
            time.sleep(0.5)     # a window for the others to arrive
        if bvid == BV_PAGES:
            return ok(h, view_answer(bvid, PAGES_CIDS))
        if bvid in CID:
            return ok(h, view_answer(bvid, [CID[bvid]]))
        return err(h, -400, "请求错误")

    def playurl(h, seen):
        q = urllib.parse.parse_qs(seen.query)
        bvid, cid = q.get("bvid", [""])[0], int(q.get("cid", ["0"])[0])
        if bvid == BV_DENIED:
            return err(h, -10403, "抱歉您所在地区不可观看！")
        if bvid == BV_REVOKED:
            return ok(h, dash_answer(cdn, o.url("/cdn"), revoking.new_sig()))
        if bvid == BV_REVDURL:
            u = o.url(f"/cdn/upgcxcode/whole.mp4?deadline={DEADLINE}&upsig={revoking.new_sig()}")
            return ok(h, {"quality": 16, "format": "mp4", "timelength": 4000,
                          "durl": [{"order": 1, "url": u, "size": 1, "length": 4000}]})
        if bvid == BV_DURL:
            u = cdn.url(f"/upgcxcode/whole.mp4?deadline={DEADLINE}&upsig=ff00")
            return ok(h, {"quality": 16, "format": "mp4", "timelength": 4000,
                          "durl": [{"order": 1, "url": u, "backup_url": [u], "size": 1,
                                    "length": 4000}]})
        if cid in (CID.get(bvid), *PAGES_CIDS):
            return ok(h, dash_answer(cdn))
        return err(h, -400, "请求错误")

    def revocable(h, seen):
        sig = urllib.parse.parse_qs(seen.query).get("upsig", [""])[0]
        if h.headers.get("Referer") != REFERER or sig in revoking.revoked:
            return h.answer(403, {"Content-Type": "text/plain"}, b"403 Forbidden\n")
        name = seen.path[len("/cdn/upgcxcode/"):]
        if name not in ("v-avc.m4s", "v-hevc.m4s", "a.m4s", "whole.mp4"):
            return h.answer(404, {"Content-Type": "text/plain"}, b"no\n")
        serve_file(h, cdn.path("upgcxcode/" + name).read_bytes())

    o.route("/cdn/upgcxcode/", revocable)
    o.route("/x/web-interface/view", view)
    o.route("/x/player/playurl", playurl)
    yield o
    o.close()


@pytest.fixture(scope="module")
def st(request, cdn, api):
    # Links are revoked moments after they were handed out: resolving again
    # is allowed at once (resolve.again_min_s 0; test_expiry.py covers the
    # default).
    cfg = make_config(upstream={"allow_networks": ["127.0.0.1/32"], "user_agent": UA},
                      providers={"bilibili": {"api_base": api.url("/"), "cookie": SESSDATA}},
                      resolve={"again_min_s": 0})
    yield from module_stack(request, cfg, extra_nginx=cdn_nginx(cdn))


def register(st, source, **extra):
    return st.request("POST", "/api/media", headers=ADMIN,
                      body={"provider": "bilibili", "source": source, **extra})


def new_item(st, source, **extra):
    r = register(st, source, **extra)
    assert r.status == 201, r
    return r.json["id"]


def api_calls(api, path, bvid):
    return [s for s in api.requests_to(path)
            if urllib.parse.parse_qs(s.query).get("bvid") == [bvid]]


def probe(url):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-of", "json",
                        "-show_entries", "stream=codec_type,nb_read_frames:format=duration", url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    return ({s["codec_type"]: int(s.get("nb_read_frames", 0)) for s in out["streams"]},
            float(out["format"].get("duration", 0)))


# --- DASH --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dash_item(st):
    return new_item(st, {"bvid": BV_DASH})


def test_dash_source(st, api, dash_item):
    r = st.get(f"/api/media/{dash_item}/source")
    assert r.status == 200, r
    s = r.json
    assert s["provider"] == "bilibili" and s["mode"] == "proxy", s
    assert s["video_type"] == "mpd"
    assert s["url"] == st.url(f"/api/media/{dash_item}/manifest.mpd"), s
    assert s["title"] == f"Test video {BV_DASH}"
    assert s["thumbnail"] == "http://i0.hdslb.com/bfs/archive/cover.jpg"
    assert s["duration"] == 4
    assert s["expire_at"] == DEADLINE
    assert len(s["more_sources"]) == 1, s
    alt = s["more_sources"][0]
    assert alt["name"] == "180p HEVC (video only)" and alt["video_type"] == "mp4", alt
    assert alt["url"] == st.url(f"/api/proxy/media/{dash_item}?t="
                                + urllib.parse.quote(alt["name"], safe="")), alt
    # The playurl call asked for the view's cid, DASH with HEVC/AV1, 1080p.
    q = urllib.parse.parse_qs(api_calls(api, "/x/player/playurl", BV_DASH)[0].query)
    assert q == {"bvid": [BV_DASH], "cid": [str(CID[BV_DASH])], "qn": ["80"],
                 "fnval": ["4048"], "fourk": ["1"]}, q


def test_api_requests_carry_the_header_policy(st, api, dash_item):
    assert st.get(f"/api/media/{dash_item}/source").status == 200
    calls = api_calls(api, "/x/web-interface/view", BV_DASH) + \
        api_calls(api, "/x/player/playurl", BV_DASH)
    assert len(calls) == 2, calls
    for c in calls:
        assert c.headers.get("Referer") == REFERER, c
        assert c.headers.get("User-Agent") == UA, c
        # A cookie value without '=' is a SESSDATA value.
        assert c.headers.get("Cookie") == f"SESSDATA={SESSDATA}", c


def test_manifest_points_at_the_relay(st, cdn, dash_item):
    r = st.get(f"/api/media/{dash_item}/manifest.mpd")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/dash+xml"
    text = r.body.decode()
    # (The upstream's query stays in each tail, after the signed directory:
    # the DASH rewriter's design, docs/dash.md.)
    assert cdn.host not in text, text
    bases = [html.unescape(b) for b in re.findall(r"<BaseURL>([^<]*)</BaseURL>", text)]
    assert len(bases) == 2, text        # the AVC video and the audio; HEVC is not in it
    for b in bases:
        assert b.startswith(("/api/seg/", st.url("/api/seg/"))), b
    assert 'id="32-7"' in text and 'id="32-12"' not in text, text
    assert 'codecs="avc1.64000d"' in text and 'codecs="mp4a.40.2"' in text
    init, index = cdn.ranges["v-avc.m4s"]
    assert f'indexRange="{index}"' in text and f'range="{init}"' in text
    # The init section comes back through the relay, byte for byte.
    video = next(b for b in bases if "v-avc" in b)
    got = raw_get(st.port, path_of(video) if video.startswith("http") else video,
                  {"Range": f"bytes={init}"})
    data = cdn.path("upgcxcode/v-avc.m4s").read_bytes()
    assert got.status == 206 and got.body == data[:int(init.split("-")[1]) + 1], got


def test_ffmpeg_plays_video_and_audio(st, cdn, dash_item):
    streams, duration = probe(st.url(f"/api/media/{dash_item}/manifest.mpd"))
    assert streams.get("video", 0) >= 95 and streams.get("audio", 0) >= 180, streams
    assert 3.5 <= duration <= 4.5, duration
    # Every media request reached the CDN with Bilibili's Referer and the
    # browser User-Agent (the CDN refuses the others with 403), and no cookie.
    lines = cdn.ref_log.read_text().splitlines()
    assert lines
    for line in lines:
        assert re.match(rf'\S+ 20[06] "{re.escape(REFERER)}" "{re.escape(UA)}" "-"$', line), line


def test_other_codec_is_a_video_only_file(st, cdn, dash_item):
    s = st.get(f"/api/media/{dash_item}/source").json
    alt = s["more_sources"][0]
    r = raw_get(st.port, path_of(alt["url"]))
    assert r.status == 200, r
    assert r.body == cdn.path("upgcxcode/v-hevc.m4s").read_bytes()


def test_page_picks_its_cid(st, api):
    item = new_item(st, {"bvid": BV_PAGES, "page": 2})
    s = st.get(f"/api/media/{item}/source").json
    assert s["video_type"] == "mpd" and s["title"] == f"Test video {BV_PAGES} - part 2", s
    q = urllib.parse.parse_qs(api_calls(api, "/x/player/playurl", BV_PAGES)[-1].query)
    assert q["cid"] == [str(PAGES_CIDS[1])], q
    # A page that does not exist.
    item = new_item(st, {"bvid": BV_PAGES, "page": 3})
    assert_json_error(st.get(f"/api/media/{item}/source"), 404, "not_found")


def test_the_resolution_is_made_once(st, api):
    item = new_item(st, {"bvid": BV_MANY})
    results = [None] * 10

    def ask(i):
        results[i] = st.get(f"/api/media/{item}/source", timeout=30)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status == 200 and r.json["video_type"] == "mpd" for r in results), results
    assert len(api_calls(api, "/x/web-interface/view", BV_MANY)) == 1
    assert len(api_calls(api, "/x/player/playurl", BV_MANY)) == 1
    # And later asks are served from the cache.
    assert st.get(f"/api/media/{item}/source").status == 200
    assert len(api_calls(api, "/x/player/playurl", BV_MANY)) == 1


# --- durl ----------------------------------------------------------------------------

def test_durl_is_a_progressive_file(st, cdn):
    item = new_item(st, {"bvid": BV_DURL})
    s = st.get(f"/api/media/{item}/source").json
    assert s["video_type"] == "mp4" and s["mode"] == "proxy", s
    assert s["url"] == st.url(f"/api/proxy/media/{item}"), s
    assert s["expire_at"] == DEADLINE and s["duration"] == 4 and s["more_sources"] == [], s
    r = raw_get(st.port, f"/api/proxy/media/{item}")
    assert r.status == 200 and r.body == cdn.path("upgcxcode/whole.mp4").read_bytes(), r
    streams, duration = probe(st.url(f"/api/proxy/media/{item}"))
    assert streams.get("video", 0) >= 95 and streams.get("audio", 0) >= 180, streams


# --- errors and validation ---------------------------------------------------------------

def test_view_error_is_not_found(st):
    item = new_item(st, {"bvid": BV_GONE})
    assert_json_error(st.get(f"/api/media/{item}/source"), 404, "not_found")


def test_view_error_carries_the_api_message(st):
    item = new_item(st, {"bvid": BV_GONE})
    err = assert_json_error(st.get(f"/api/media/{item}/source"), 404, "not_found")
    assert "啥都木有" in err["message"] or "-404" in err["message"], err


def test_playurl_error(st, api):
    item = new_item(st, {"bvid": BV_DENIED})
    assert_json_error(st.get(f"/api/media/{item}/source"), 403, "forbidden")
    assert len(api_calls(api, "/x/player/playurl", BV_DENIED)) >= 1
    assert st.get(f"/api/media/{item}/manifest.mpd").status == 403


def test_malformed_api_answer_is_bad_gateway(st):
    item = new_item(st, {"bvid": BV_GARBAGE})
    assert_json_error(st.get(f"/api/media/{item}/source"), 502, "upstream_error")


@pytest.mark.parametrize("source,field", [
    ({"bvid": "BV1xx411c7m"}, "source.bvid"),
    ({"bvid": "AV1xx411c7mD"}, "source.bvid"),
    ({"bvid": "BV1xx411c7m!"}, "source.bvid"),
    ({"bvid": 12}, "source.bvid"),
    ({}, "source.bvid"),
    ({"bvid": BV_DASH, "page": 0}, "source.page"),
    ({"bvid": BV_DASH, "page": 1001}, "source.page"),
    ({"bvid": BV_DASH, "page": "2"}, "source.page"),
    ({"bvid": BV_DASH, "quality": 80}, "source.quality"),
    ({"url": "https://www.bilibili.com/audio/au1"}, "source.url"),
])
def test_bad_source_is_refused(st, source, field):
    r = register(st, source)
    err = assert_json_error(r, 400, "bad_request")
    assert err["message"].startswith(field), err


def test_page_urls_resolve(st, api):
    """can_handle: www.bilibili.com/video/BV… pages (with ?p=N), nothing else."""
    url = f"https://www.bilibili.com/video/{BV_PAGES}/?p=2&spm_id_from=333.1007"
    r = st.get("/api/resolve?url=" + urllib.parse.quote(url, safe=""), headers=ADMIN)
    assert r.status == 200, r
    assert r.json["provider"] == "bilibili" and r.json["video_type"] == "mpd", r.json
    q = urllib.parse.parse_qs(api_calls(api, "/x/player/playurl", BV_PAGES)[-1].query)
    assert q["cid"] == [str(PAGES_CIDS[1])], q
    for other in ("https://b23.tv/BV1xx411c7mD", "https://www.bilibili.com/bangumi/play/ep1"):
        r = st.get("/api/resolve?url=" + urllib.parse.quote(other, safe=""), headers=ADMIN)
        assert r.status == 400 or r.json.get("provider") != "bilibili", r


# --- links revoked before their deadline ------------------------------------------------

def first_rep(text, name):
    """(relay path, init range) of the first Representation whose BaseURL holds name."""
    for rep in re.findall(r"<Representation.*?</Representation>", text, re.S):
        base = html.unescape(re.search(r"<BaseURL>([^<]*)</BaseURL>", rep).group(1))
        if name in base:
            init = re.search(r'<Initialization range="([^"]*)"', rep).group(1)
            return (path_of(base) if base.startswith("http") else base), init
    raise AssertionError(f"no {name} in {text}")


def test_revoked_durl_link_is_resolved_again(st, api, revoking):
    """The proxy path: the cached link fails (403), the relay resolves again
    and the player sees nothing."""
    item = new_item(st, {"bvid": BV_REVDURL})
    r = raw_get(st.port, f"/api/proxy/media/{item}", {"Range": "bytes=0-99"})
    assert r.status == 206, r
    before = len(api_calls(api, "/x/player/playurl", BV_REVDURL))
    revoking.revoke()
    r = raw_get(st.port, f"/api/proxy/media/{item}", {"Range": "bytes=0-99"})
    assert r.status == 206, r
    assert len(api_calls(api, "/x/player/playurl", BV_REVDURL)) == before + 1


def test_revoked_dash_links_give_a_fresh_manifest(st, api, revoking):
    item = new_item(st, {"bvid": BV_REVOKED})
    assert st.get(f"/api/media/{item}/manifest.mpd").status == 200
    revoking.revoke()
    text = st.get(f"/api/media/{item}/manifest.mpd").body.decode()
    path, init = first_rep(text, "v-avc")
    r = raw_get(st.port, path, {"Range": f"bytes={init}"})
    assert r.status == 206, r


def test_revoked_dash_segment_is_recovered(st, api, revoking):
    item = new_item(st, {"bvid": BV_REVOKED, "page": 1})
    text = st.get(f"/api/media/{item}/manifest.mpd").body.decode()
    vpath, vinit = first_rep(text, "v-avc")
    apath, ainit = first_rep(text, "/a.m4s")
    assert raw_get(st.port, vpath, {"Range": f"bytes={vinit}"}).status == 206
    # The link dies while the player is at it; the audio file was never
    # fetched, so no cache can hide it.
    revoking.revoke()
    r = raw_get(st.port, apath, {"Range": f"bytes={ainit}"})
    assert r.status == 206, r
