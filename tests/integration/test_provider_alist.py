"""The alist provider (issue 6): a file on an Alist server by instance and path.

The Alist API is mocked from its documented shapes (ScriptedOrigin): POST
/api/fs/get and /api/fs/other answer HTTP 200 with {"code","message","data"};
the files themselves are served by the same mock under /d/ (Alist's download
route) and /raw/ (what a storage driver's raw_url would point at).
"""

import json
import threading
import time

import pytest

from conftest import ADMIN_TOKEN, assert_json_error, make_config
from proxyutil import ScriptedOrigin, module_stack, path_of, raw_get

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TOKEN = "alist-token"
MOVIE = bytes(range(256)) * 64          # 16 KiB, every offset tells where it is
SRT = b"1\n00:00:01,000 --> 00:00:02,000\nhello\n"
VTT = b"WEBVTT\n\n00:01.000 --> 00:02.000\nni hao\n"
HLS = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg0.ts\n#EXT-X-ENDLIST\n"


def file_data(name, raw_url, provider="Local", **extra):
    """The data of /api/fs/get for a file, as Alist v3 gives it."""
    d = {"name": name, "size": len(MOVIE), "is_dir": False,
         "modified": "2024-05-01T10:00:00Z", "created": "2024-05-01T10:00:00Z",
         "sign": "file-sign", "thumb": "", "type": 2, "hashinfo": "null", "hash_info": None,
         "raw_url": raw_url, "readme": "", "header": "", "provider": provider, "related": None}
    d.update(extra)
    return d


def ok(data):
    return {"code": 200, "message": "success", "data": data}


class MockAlist:
    """The Alist API: answers by the "path" in the request body."""

    def __init__(self):
        self.o = ScriptedOrigin()
        self.get = {}           # path -> answer (dict: JSON, bytes: raw body)
        self.other = {}         # path -> answer for /api/fs/other
        self.files = {}         # URL path -> bytes, served with Range
        self.calls = []         # (endpoint, headers, parsed body)
        self.delay = {}         # path -> seconds /api/fs/get takes
        self.lock = threading.Lock()
        self.o.route("/api/fs/get", self._api(self.get))
        self.o.route("/api/fs/other", self._api(self.other))
        self.o.route("/d/", self._file)
        self.o.route("/raw/", self._file)

    def url(self, path):
        return self.o.url(path)

    def _api(self, table):
        def fn(h, seen):
            raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            with self.lock:
                self.calls.append((seen.path, h.headers, body))
            path = body.get("path") if isinstance(body, dict) else None
            if seen.path == "/api/fs/get" and path in self.delay:
                time.sleep(self.delay[path])
            ans = table.get(path, {"code": 500, "message": "object not found", "data": None})
            if isinstance(ans, tuple):          # (HTTP status, body)
                h.answer(ans[0], {"Content-Type": "text/html"}, ans[1])
            elif isinstance(ans, bytes):
                h.answer(200, {"Content-Type": "text/html"}, ans)
            else:
                h.answer(200, {"Content-Type": "application/json; charset=utf-8"},
                         json.dumps(ans))
        return fn

    def _file(self, h, seen):
        data = self.files.get(seen.path)
        if data is None:
            h.answer(404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a)
            end = min(int(b), len(data) - 1) if b else len(data) - 1
            h.answer(206, {"Content-Type": "video/mp4", "Accept-Ranges": "bytes",
                           "Content-Range": f"bytes {start}-{end}/{len(data)}"},
                     data[start:end + 1])
            return
        ctype = ("application/vnd.apple.mpegurl" if seen.path.endswith(".m3u8")
                 else "video/mp4")
        h.answer(200, {"Content-Type": ctype, "Accept-Ranges": "bytes"}, data)

    def calls_to(self, endpoint, path=None):
        with self.lock:
            return [c for c in self.calls
                    if c[0] == endpoint and (path is None or (c[2] or {}).get("path") == path)]

    def file_requests(self, path):
        return self.o.requests_to(path)


@pytest.fixture(scope="module")
def alist():
    m = MockAlist()
    yield m
    m.o.close()


@pytest.fixture(scope="module")
def st(request, alist):
    cfg = make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                      providers={"alist": {"instances": {
                          "home": {"url": alist.url(""), "token": TOKEN}}}})
    yield from module_stack(request, cfg)


def register(st, source, **item):
    r = st.request("POST", "/api/media", headers=ADMIN,
                   body={"provider": "alist", "source": source, **item})
    assert r.status == 201, r
    return json.loads(r.body)["id"]


def source(st, mid, headers=None):
    return st.get(f"/api/media/{mid}/source", headers=headers)


# --- the happy path -------------------------------------------------------------------

def test_file_subtitles_and_qualities(st, alist):
    alist.files["/raw/a.mp4"] = MOVIE
    alist.files["/d/movies/a.srt"] = SRT
    alist.files["/d/movies/a.zh-CN.vtt"] = VTT
    alist.files["/hls/fhd.m3u8"] = HLS.encode()
    alist.files["/hls/seg0.ts"] = b"\x47" + b"\x00" * 187
    alist.o.route("/hls/", alist._file)
    alist.get["/movies/a.mp4"] = ok(file_data(
        "a.mp4", alist.url("/raw/a.mp4"), provider="Aliyundrive",
        thumb=alist.url("/thumb/a.jpg"),
        related=[
            {"name": "a.srt", "size": len(SRT), "is_dir": False, "sign": "sub-sign",
             "type": 4},
            {"name": "a.zh-CN.vtt", "size": len(VTT), "is_dir": False, "sign": "", "type": 4},
            {"name": "a.nfo", "size": 10, "is_dir": False, "sign": "x", "type": 4},
            {"name": "a.jpg", "size": 10, "is_dir": False, "sign": "x", "type": 5},
        ]))
    alist.other["/movies/a.mp4"] = ok({"video_preview_play_info": {
        "category": "live_transcoding", "meta": {"duration": 10.0},
        "live_transcoding_task_list": [
            {"template_id": "FHD", "template_name": "1080", "template_width": 1920,
             "template_height": 1080, "status": "finished", "stage": "stage_all",
             "url": alist.url("/hls/fhd.m3u8")},
            {"template_id": "HD", "template_width": 1280, "template_height": 720,
             "status": "finished", "url": alist.url("/hls/hd.m3u8")},
            {"template_id": "SD", "template_width": 848, "template_height": 480,
             "status": "running", "url": alist.url("/hls/sd.m3u8")},
            {"template_id": "LD", "status": "finished", "url": "ftp://x/ld.m3u8"},
        ]}})
    mid = register(st, {"instance": "home", "path": "/movies/a.mp4"})
    r = source(st, mid)
    assert r.status == 200, r
    ms = r.json
    assert ms["provider"] == "alist" and ms["mode"] == "proxy"
    assert ms["video_type"] == "mp4" and ms["title"] == "a.mp4"
    assert ms["url"] == st.url(f"/api/proxy/media/{mid}")
    assert ms["thumbnail"] == alist.url("/thumb/a.jpg")
    assert ms["more_sources"] == [
        {"name": "FHD", "url": st.url(f"/api/media/{mid}/index.m3u8?t=FHD"),
         "video_type": "hls"},
        {"name": "HD", "url": st.url(f"/api/media/{mid}/index.m3u8?t=HD"),
         "video_type": "hls"},
    ]
    assert ms["subtitles"] == {
        "und": {"url": st.url(f"/api/proxy/media/{mid}?t=sub%3Aund"), "type": "srt"},
        "zh-CN": {"url": st.url(f"/api/proxy/media/{mid}?t=sub%3Azh-CN"), "type": "vtt"},
    }

    # What Alist was asked: the raw token, a JSON body.
    (_, headers, body), = alist.calls_to("/api/fs/get", "/movies/a.mp4")
    assert headers["Authorization"] == TOKEN
    assert headers["Content-Type"] == "application/json"
    assert body == {"path": "/movies/a.mp4", "password": ""}
    (_, headers, body), = alist.calls_to("/api/fs/other", "/movies/a.mp4")
    assert headers["Authorization"] == TOKEN
    assert body == {"path": "/movies/a.mp4", "password": "", "method": "video_preview"}

    # The file through the relay, whole and in part.
    r = raw_get(st.port, path_of(ms["url"]))
    assert r.status == 200 and r.body == MOVIE, r
    r = raw_get(st.port, path_of(ms["url"]), headers={"Range": "bytes=1000-1099"})
    assert r.status == 206 and r.body == MOVIE[1000:1100], r
    assert r.headers["content-range"] == f"bytes 1000-1099/{len(MOVIE)}"
    # The token never goes to the storage.
    assert all("Authorization" not in s.headers for s in alist.file_requests("/raw/a.mp4"))

    # Subtitles: Alist's download route, with the related file's own sign.
    r = raw_get(st.port, path_of(ms["subtitles"]["und"]["url"]))
    assert r.status == 200 and r.body == SRT, r
    assert alist.file_requests("/d/movies/a.srt")[-1].query == "sign=sub-sign"
    r = raw_get(st.port, path_of(ms["subtitles"]["zh-CN"]["url"]))
    assert r.status == 200 and r.body == VTT, r
    assert alist.file_requests("/d/movies/a.zh-CN.vtt")[-1].query == ""

    # A transcoded quality: the playlist through the relay, rewritten.
    r = raw_get(st.port, path_of(ms["more_sources"][0]["url"]))
    assert r.status == 200, r
    assert r.body.startswith(b"#EXTM3U") and b"/api/seg/" in r.body, r.body
    assert b"seg0.ts\n" not in r.body


def test_given_title_and_password(st, alist):
    alist.files["/raw/p.mkv"] = MOVIE
    alist.get["/locked/p.mkv"] = ok(file_data("p.mkv", alist.url("/raw/p.mkv")))
    mid = register(st, {"instance": "home", "path": "/locked/p.mkv", "password": "s3cret"},
                   title="My film")
    r = source(st, mid)
    assert r.status == 200, r
    assert r.json["title"] == "My film" and r.json["video_type"] == "mkv"
    # Not a transcoding driver: /api/fs/other is not asked.
    assert r.json["more_sources"] == [] and r.json["subtitles"] == {}
    assert not alist.calls_to("/api/fs/other", "/locked/p.mkv")
    (_, _, body), = alist.calls_to("/api/fs/get", "/locked/p.mkv")
    assert body == {"path": "/locked/p.mkv", "password": "s3cret"}


def test_resolution_is_cached(st, alist):
    alist.files["/raw/c.mp4"] = MOVIE
    alist.get["/movies/c.mp4"] = ok(file_data("c.mp4", alist.url("/raw/c.mp4")))
    alist.delay["/movies/c.mp4"] = 0.5
    mid = register(st, {"instance": "home", "path": "/movies/c.mp4"})
    results = [None] * 10

    def one(i):
        results[i] = source(st, mid)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None and r.status == 200 for r in results), results
    assert len({r.json["url"] for r in results}) == 1
    assert len(alist.calls_to("/api/fs/get", "/movies/c.mp4")) == 1
    # And later ones, and the relay itself, use the cache too.
    assert source(st, mid).status == 200
    r = raw_get(st.port, f"/api/proxy/media/{mid}")
    assert r.status == 200 and r.body == MOVIE
    assert len(alist.calls_to("/api/fs/get", "/movies/c.mp4")) == 1


# --- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("answer,status,code", [
    ({"code": 403, "message": "password is incorrect or you have no permission",
      "data": None}, 403, "forbidden"),
    ({"code": 401, "message": "token is invalidated", "data": None}, 403, "forbidden"),
    ({"code": 500, "message": "object not found", "data": None}, 404, "not_found"),
    ({"code": 500, "message": "failed get storage: storage not found; please add a storage",
      "data": None}, 404, "not_found"),
    ({"code": 500, "message": "something broke", "data": None}, 502, "upstream_error"),
    (b"<html>502 Bad Gateway</html>", 502, "upstream_error"),
    ((502, b"<html>bad gateway</html>"), 502, "upstream_error"),
    ({"code": 200, "message": "success", "data": {"name": "x.mp4", "raw_url": ""}},
     502, "upstream_error"),
    ({"code": 200, "message": "success",
      "data": {"name": "x.mp4", "raw_url": "file:///etc/passwd"}}, 502, "upstream_error"),
], ids=["403", "401", "not-found", "no-storage", "500", "not-json", "http-502",
        "no-raw-url", "bad-raw-url"])
def test_alist_errors(st, alist, answer, status, code):
    path = f"/err/{code}-{status}-{len(alist.get)}.mp4"
    alist.get[path] = answer
    mid = register(st, {"instance": "home", "path": path})
    assert_json_error(source(st, mid), status, code)
    # The relay answers the same, without bytes.
    r = raw_get(st.port, f"/api/proxy/media/{mid}")
    assert r.status == status, r


def test_alist_message_is_logged(st, alist):
    path = "/err/logged.mp4"
    alist.get[path] = {"code": 403, "message": "password is incorrect\r\nor you have no "
                       "permission", "data": None}
    mid = register(st, {"instance": "home", "path": path})
    assert_json_error(source(st, mid), 403, "forbidden")
    log = st.log("resolve")
    assert "password is incorrect??or you have no permission" in log, log[-2000:]
    assert "\r\nor you" not in log


def test_alist_message_in_the_answer(st, alist):
    path = "/err/message.mp4"
    alist.get[path] = {"code": 403, "message": "password is incorrect or you have no "
                       "permission", "data": None}
    mid = register(st, {"instance": "home", "path": path})
    err = assert_json_error(source(st, mid), 403, "forbidden")
    assert "password is incorrect" in err["message"], err


def test_unknown_instance(st, alist):
    # validate() sees only the source object: the instance is checked on resolve.
    mid = register(st, {"instance": "elsewhere", "path": "/movies/a.mp4"})
    assert_json_error(source(st, mid), 400, "bad_request")
    assert 'unknown alist instance "elsewhere"' in st.log("resolve")


def test_unknown_instance_is_named(st, alist):
    mid = register(st, {"instance": "elsewhere2", "path": "/movies/a.mp4"})
    err = assert_json_error(source(st, mid), 400, "bad_request")
    assert "source.instance" in err["message"], err


@pytest.mark.parametrize("src,field", [
    ({"path": "/a.mp4"}, "source.instance"),
    ({"instance": 3, "path": "/a.mp4"}, "source.instance"),
    ({"instance": "bad id!", "path": "/a.mp4"}, "source.instance"),
    ({"instance": "home"}, "source.path"),
    ({"instance": "home", "path": "movies/a.mp4"}, "source.path"),
    ({"instance": "home", "path": "/movies/a\nb.mp4"}, "source.path"),
    ({"instance": "home", "path": "/movies/\x7f.mp4"}, "source.path"),
    ({"instance": "home", "path": "/movies/../../etc/x.mp4"}, "source.path"),
    ({"instance": "home", "path": "/" + "x" * 5000}, "source.path"),
    ({"instance": "home", "path": "/a.mp4", "password": 1}, "source.password"),
    ({"instance": "home", "path": "/a.mp4", "password": "p" * 300}, "source.password"),
    ({"instance": "home", "path": "/a.mp4", "url": "http://x/"}, "source.url"),
])
def test_bad_source_at_post(st, src, field):
    r = st.request("POST", "/api/media", headers=ADMIN, body={"provider": "alist", "source": src})
    err = assert_json_error(r, 400, "bad_request")
    assert field in err["message"], err


# --- drivers -----------------------------------------------------------------------------

def test_user_agent_bound_driver(st, alist):
    alist.files["/raw/baidu/b.mp4"] = MOVIE
    alist.get["/baidu/b.mp4"] = ok(file_data("b.mp4", alist.url("/raw/baidu/b.mp4"),
                                             provider="BaiduNetdisk"))
    alist.other["/baidu/b.mp4"] = {"code": 500, "message": "not implement", "data": None}
    mid = register(st, {"instance": "home", "path": "/baidu/b.mp4"})
    ua = "TestPlayer/1.0 (X11; bound)"
    r = source(st, mid, headers={"User-Agent": ua})
    assert r.status == 200, r
    assert r.json["mode"] == "proxy" and r.json["more_sources"] == []
    (_, headers, _), = alist.calls_to("/api/fs/get", "/baidu/b.mp4")
    assert headers["User-Agent"] == ua
    # Another player fetches: the storage still sees the UA the link is bound to.
    r = raw_get(st.port, f"/api/proxy/media/{mid}", headers={"User-Agent": "OtherPlayer/2"})
    assert r.status == 200 and r.body == MOVIE, r
    assert alist.file_requests("/raw/baidu/b.mp4")[-1].headers["User-Agent"] == ua


def test_not_bound_driver_gets_no_ua_policy(st, alist):
    """A driver that does not bind links: the relay's own UA goes to the storage, and
    with proxy.enable_alist=0 the item is offered in direct mode."""
    alist.files["/raw/free.mp4"] = MOVIE
    alist.get["/free.mp4"] = ok(file_data("free.mp4", alist.url("/raw/free.mp4"),
                                          provider="Local"))
    alist.files["/raw/bound.mp4"] = MOVIE
    alist.get["/bound.mp4"] = ok(file_data("bound.mp4", alist.url("/raw/bound.mp4"),
                                           provider="115 Cloud"))
    free = register(st, {"instance": "home", "path": "/free.mp4"})
    bound = register(st, {"instance": "home", "path": "/bound.mp4"})
    r = raw_get(st.port, f"/api/proxy/media/{free}", headers={"User-Agent": "Client/1"})
    assert r.status == 200 and r.body == MOVIE
    assert alist.file_requests("/raw/free.mp4")[-1].headers["User-Agent"] != "Client/1"
    st.redis_cli("HSET", "mr:settings", "proxy.enable_alist", "0")
    try:
        ms = source(st, free).json
        assert ms["mode"] == "direct" and ms["url"] == alist.url("/raw/free.mp4"), ms
        ms = source(st, bound, headers={"User-Agent": "Client/1"}).json
        assert ms["mode"] == "proxy", ms          # it needs a header a page cannot send
    finally:
        st.redis_cli("HDEL", "mr:settings", "proxy.enable_alist")


@pytest.mark.parametrize("other", [
    {"code": 500, "message": "failed to get video preview", "data": None},
    (500, b"oops"),
    b"not json",
    {"code": 200, "message": "success", "data": {"video_preview_play_info": "weird"}},
], ids=["code-500", "http-500", "not-json", "odd-shape"])
def test_failing_fs_other_is_not_an_error(st, alist, other):
    path = f"/aliyun/o{len(alist.get)}.mp4"
    alist.files["/raw" + path] = MOVIE
    alist.get[path] = ok(file_data(path.rsplit("/", 1)[1], alist.url("/raw" + path),
                                   provider="AliyundriveOpen"))
    alist.other[path] = other
    mid = register(st, {"instance": "home", "path": path})
    r = source(st, mid)
    assert r.status == 200, r
    assert r.json["more_sources"] == [] and r.json["video_type"] == "mp4"
    assert len(alist.calls_to("/api/fs/other", path)) == 1
    r = raw_get(st.port, f"/api/proxy/media/{mid}")
    assert r.status == 200 and r.body == MOVIE, r
