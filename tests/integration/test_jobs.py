"""Media jobs (issue 14) on the real stack: mediarelay-jobs behind nginx, two
mediarelay-worker daemons, Redis, the real yt-dlp and ffmpeg against an nginx
origin on 127.0.0.1 that can throttle (limit_rate), so a download lasts long
enough to watch.

What the issue asks, each a test below: analyze's fields and its single
flight; a download byte-identical to the origin's file (a direct MP4, an HLS
stream, a page with a <video>); process jobs checked with ffprobe (a trim
within a frame, a resize, fps, codecs, audio only, HLS, a thumbnail);
progress seen rising through polling and through Server-Sent Events; cancel
mid-download (the programs stop, the files go); SIGKILL of a worker
mid-job, a second worker finishing it (attempts counts, nothing of the dead
worker's left running); SIGTERM handing a job back; Redis restarted
mid-job; two workers taking each job exactly once; the user and admin
matrix; a table of bad inputs; failures said in one line; and the original
front-end's five calls in order."""

import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import (ADMIN_TOKEN, Stack, _failed, _finish, alive, binary, assert_json_error, deep_merge,
                      http_request, make_config, processes_mentioning, reap, wait_until)
from proxyutil import NginxOrigin

YTDLP = shutil.which("yt-dlp")
FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(not (YTDLP and FFMPEG and FFPROBE),
                                reason="needs yt-dlp and ffmpeg (Debian: yt-dlp ffmpeg)")

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CLAIM_IDLE_S = 3
FPS = 25

# The clip every test uses: 12 s of 640x360 test pattern and a tone.
CLIP_S = 12


def ffprobe(path):
    out = subprocess.run([FFPROBE, "-v", "error", "-print_format", "json", "-show_format",
                          "-show_streams", str(path)], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return json.loads(out)


def make_media(www):
    """www/clip.mp4 (H.264 + AAC, 25 fps), www/big.mp4 (the same, bigger, for
    throttled downloads), www/hls/index.m3u8 and its segments, www/page.html
    (a page with a <video> of the MP4), www/hlspage.html (one of the HLS stream),
    www/bighls/ (big.mp4 as HLS), www/audio.m4a."""
    www.mkdir(parents=True, exist_ok=True)
    base = [FFMPEG, "-loglevel", "error", "-y", "-f", "lavfi", "-i",
            f"testsrc=duration={CLIP_S}:size=640x360:rate={FPS}", "-f", "lavfi", "-i",
            f"sine=frequency=440:duration={CLIP_S}", "-shortest", "-c:v", "libx264",
            "-preset", "ultrafast", "-g", str(FPS), "-pix_fmt", "yuv420p", "-c:a", "aac"]
    subprocess.run(base + [str(www / "clip.mp4")], check=True, timeout=120)
    # High bitrate: about 3 MB, 6 s at 500 KB/s through /slow/.
    subprocess.run(base + ["-b:v", "2000k", "-maxrate", "2000k", "-bufsize", "1000k",
                           str(www / "big.mp4")], check=True, timeout=120)
    (www / "hls").mkdir(exist_ok=True)
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(www / "clip.mp4"), "-c", "copy",
                    "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
                    "-hls_segment_filename", str(www / "hls" / "s%03d.ts"),
                    str(www / "hls" / "index.m3u8")], check=True, timeout=120)
    (www / "bighls").mkdir(exist_ok=True)
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(www / "big.mp4"), "-c", "copy",
                    "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
                    "-hls_segment_filename", str(www / "bighls" / "s%03d.ts"),
                    str(www / "bighls" / "index.m3u8")], check=True, timeout=120)
    (www / "page.html").write_text(
        "<!doctype html><html><head><title>A page with a video</title></head><body>"
        "<video controls><source src=\"clip.mp4\" type=\"video/mp4\"></video>"
        "</body></html>")
    (www / "hlspage.html").write_text(
        "<!doctype html><html><head><title>A page with a stream</title></head><body>"
        "<video controls><source src=\"hls/index.m3u8\" type=\"application/x-mpegURL\">"
        "</video></body></html>")
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(www / "clip.mp4"), "-vn",
                    "-c:a", "copy", str(www / "audio.m4a")], check=True, timeout=60)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Jobs:
    """The stack, its origin and small helpers for the jobs API."""

    def __init__(self, stack, origin):
        self.stack = stack
        self.origin = origin
        self.redis_restarted = False

    def url(self, path):
        return self.origin.url(path)

    def post(self, path, body, headers=ADMIN, timeout=30):
        return self.stack.request("POST", path, headers=headers, body=body, timeout=timeout)

    def get(self, path, headers=ADMIN, timeout=30):
        return self.stack.request("GET", path, headers=headers, timeout=timeout)

    def delete(self, path, headers=ADMIN):
        return self.stack.request("DELETE", path, headers=headers)

    def download(self, url, headers=ADMIN, **fields):
        r = self.post("/api/download", {"url": url, **fields}, headers=headers)
        assert r.status == 202, r
        assert r.json["status"] == "pending" and len(r.json["task_id"]) == 24, r
        return r.json["task_id"]

    def process(self, input_file, operations, headers=ADMIN):
        r = self.post("/api/process", {"input_file": input_file, "operations": operations},
                      headers=headers)
        assert r.status == 202, r
        return r.json["task_id"]

    def task(self, tid, headers=ADMIN):
        r = self.get(f"/api/tasks/{tid}", headers=headers)
        assert r.status == 200, r
        return r.json

    def wait(self, tid, statuses=("completed", "failed", "canceled"), timeout=90,
             headers=ADMIN):
        seen = {}

        def done():
            r = self.get(f"/api/tasks/{tid}", headers=headers)
            if r.status == 503 and self.redis_restarted:
                return False    # a thread's connection is found broken once
            assert r.status == 200, r
            seen["t"] = r.json
            return seen["t"]["status"] in statuses
        assert wait_until(done, timeout=timeout, interval=0.2), seen.get("t")
        return seen["t"]

    def completed(self, tid, timeout=90, headers=ADMIN):
        t = self.wait(tid, timeout=timeout, headers=headers)
        assert t["status"] == "completed", t
        assert t["progress"] == 100, t
        return t

    def result(self, tid, headers=ADMIN, file=None, extra=None):
        path = f"/api/download-result/{tid}" + (f"?file={file}" if file else "")
        return self.stack.request("GET", path, headers={**headers, **(extra or {})}, timeout=60)

    def file(self, rel):
        """The path of a result ("<task>/<name>") in jobs.dir."""
        return self.stack.dir / "jobs" / rel

    def redis(self, *args):
        return self.stack.redis_cli(*args)

    def session(self, sid, user):
        self.redis("SET", f"mr:session:{sid}", user)
        return {"Cookie": f"session={sid}"}


def jobs_config(**over):
    cfg = make_config(jobs={"claim_idle_s": CLAIM_IDLE_S, "progress_interval_ms": 100,
                            "max_queued_per_user": 50},
                      server={"drain_timeout_s": 2}, log={"level": "debug"})
    return deep_merge(cfg, over)


_MEDIA = {}


def media_dir(tmp_path_factory):
    """The media of make_media, made once for the whole run (ffmpeg is slow)."""
    if "dir" not in _MEDIA:
        d = tmp_path_factory.mktemp("jobs-media")
        make_media(d)
        _MEDIA["dir"] = d
    return _MEDIA["dir"]


def start(request, tmp_path_factory, name, config, workers=2):
    tmp = tmp_path_factory.mktemp(name)
    origin = NginxOrigin(tmp / "origin")
    shutil.copytree(media_dir(tmp_path_factory), origin.dir / "www", dirs_exist_ok=True)
    extra = origin.nginx_conf(extra_locations=f"""
    location /slow/ {{ alias {origin.dir}/www/; limit_rate 500k; limit_rate_after 0; }}
    location /crawl/ {{ alias {origin.dir}/www/; limit_rate 60k; limit_rate_after 0; }}
    location /ref/ {{
        if ($http_referer != "https://ref.example/") {{ return 403; }}
        alias {origin.dir}/www/;
    }}
    """)
    st = Stack(config, extra_nginx=extra, workers=workers)
    try:
        st.start()
    except Exception:
        _finish(st, True)
        raise
    return Jobs(st, origin)


@pytest.fixture(scope="module")
def env(request, tmp_path_factory):
    j = start(request, tmp_path_factory, "jobs", jobs_config())
    failed_before = request.session.testsfailed
    yield j
    _finish(j.stack, request.session.testsfailed > failed_before)


@pytest.fixture
def fresh(request, tmp_path_factory):
    """A stack of the test's own (for the tests that kill things)."""
    made = []

    def make(config=None, workers=2):
        j = start(request, tmp_path_factory, "jobsx", config or jobs_config(), workers)
        made.append(j)
        return j
    yield make
    for j in made:
        _finish(j.stack, _failed(request))


# ---- analyze --------------------------------------------------------------------

def test_analyze_fields(env):
    r = env.post("/api/analyze", {"url": env.url("/page.html")}, timeout=90)
    assert r.status == 200, r
    a = r.json
    for k in ("title", "duration", "thumbnail", "uploader", "webpage_url", "formats",
              "subtitles"):
        assert k in a, (k, a)
    assert a["webpage_url"] == env.url("/page.html")
    assert a["formats"], a
    f = a["formats"][0]
    for k in ("format_id", "format_note", "width", "height", "fps", "ext", "filesize",
              "vcodec", "acodec", "tbr"):
        assert k in f, (k, f)
    assert isinstance(a["subtitles"], list)

    r = env.post("/api/analyze", {"url": env.url("/hls/index.m3u8")}, timeout=90)
    assert r.status == 200, r
    assert r.json["formats"] and r.json["formats"][0]["format_id"], r.json


def test_analyze_single_flight(env, tmp_path):
    """Ten callers of one URL at once: one yt-dlp run; the next caller gets
    the kept answer."""
    url = env.url(f"/clip.mp4?sf={time.time()}")
    results = []

    def one():
        results.append(env.post("/api/analyze", {"url": url}, timeout=90))
    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in results] == [200] * 10, results
    assert len({json.dumps(r.json, sort_keys=True) for r in results}) == 1
    # The single flight took one lock: the access log has ten POSTs, and the
    # origin saw yt-dlp once (a HEAD or GET of the URL per run).
    hits = [ln for ln in env.origin.log_lines() if f"sf={url.split('sf=')[1]}" in ln]
    assert 1 <= len(hits) <= 2, hits
    assert env.post("/api/analyze", {"url": url}).status == 200
    hits2 = [ln for ln in env.origin.log_lines() if f"sf={url.split('sf=')[1]}" in ln]
    assert hits2 == hits


def test_analyze_failure_is_one_line(env):
    r = env.post("/api/analyze", {"url": env.url("/nothing-here.mp4")}, timeout=90)
    err = assert_json_error(r, 502, "upstream_failed")
    assert "\n" not in err["message"] and len(err["message"]) <= 300, err
    assert "404" in err["message"], err


# ---- downloads ----------------------------------------------------------------

def test_download_direct_mp4_is_byte_identical(env):
    tid = env.download(env.url("/clip.mp4"))
    t = env.completed(tid)
    assert t["type"] == "download" and t["attempts"] == 1, t
    assert t["downloaded_files"] == [f"{tid}/clip.mp4"], t
    want = (env.origin.dir / "www" / "clip.mp4").read_bytes()
    r = env.result(tid)
    assert r.status == 200, r
    assert sha256(r.body) == sha256(want)
    assert r.header("Content-Type") == "video/mp4"
    assert r.header("Content-Disposition") == \
        "attachment; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4"
    assert t["bytes"] == len(want) == t["total_bytes"], t
    # Range, and HEAD.
    r = env.result(tid, extra={"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == want[100:200], r
    assert r.header("Content-Range") == f"bytes 100-199/{len(want)}"
    h = env.stack.request("HEAD", f"/api/download-result/{tid}", headers=ADMIN)
    assert h.status == 200 and h.body == b"" and h.header("Content-Length") == str(len(want))


def test_download_hls_stream(env):
    tid = env.download(env.url("/hls/index.m3u8"))
    t = env.completed(tid)
    (name,) = t["downloaded_files"]
    info = ffprobe(env.file(name))
    assert abs(float(info["format"]["duration"]) - CLIP_S) < 0.5, info["format"]
    kinds = sorted(s["codec_type"] for s in info["streams"])
    assert kinds == ["audio", "video"], kinds


def test_download_from_a_page(env):
    tid = env.download(env.url("/page.html"))
    t = env.completed(tid)
    assert t["title"], t
    (name,) = t["downloaded_files"]
    assert (env.file(name).read_bytes() ==
            (env.origin.dir / "www" / "clip.mp4").read_bytes())


def test_download_hls_from_a_page(env):
    """yt-dlp's generic extractor finds the HLS stream of a page's <video>."""
    tid = env.download(env.url("/hlspage.html"))
    t = env.completed(tid)
    (name,) = t["downloaded_files"]
    info = ffprobe(env.file(name))
    assert abs(float(info["format"]["duration"]) - CLIP_S) < 0.5, info["format"]
    assert sorted(x["codec_type"] for x in info["streams"]) == ["audio", "video"]


def test_download_failure_is_one_line(env):
    tid = env.download(env.url("/missing.mp4"))
    t = env.wait(tid)
    assert t["status"] == "failed", t
    assert "\n" not in t["error"] and 0 < len(t["error"]) <= 300, t
    assert "404" in t["error"], t
    assert not env.file(tid).exists()


def test_progress_rises_while_polled(env):
    tid = env.download(env.url("/slow/big.mp4"))
    seen = []
    deadline = time.time() + 90
    while time.time() < deadline:
        t = env.task(tid)
        seen.append(t["progress"])
        if t["status"] in ("completed", "failed", "canceled"):
            break
        time.sleep(0.2)
    assert t["status"] == "completed", t
    assert seen == sorted(seen), seen          # never backwards
    between = {p for p in seen if 0 < p < 100}
    assert len(between) >= 3, seen             # several values on the way
    assert seen[-1] == 100


def sse_events(stack, path, headers=ADMIN, timeout=90):
    """The events of a Server-Sent Events answer, until it ends."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=timeout)
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    assert r.status == 200, r.status
    assert r.getheader("Content-Type") == "text/event-stream"
    events, cur = [], {}
    try:
        for raw in r:
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in cur:
                    events.append(cur)
                cur = {}
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(": ")
            cur[k] = cur.get(k, "") + v
    finally:
        conn.close()
    return events


def test_progress_through_server_sent_events(env):
    tid = env.download(env.url("/slow/big.mp4"))
    events = sse_events(env.stack, f"/api/tasks/{tid}/events")
    tasks = [json.loads(e["data"]) for e in events]
    progress = [t["progress"] for t in tasks]
    assert tasks[-1]["status"] == "completed", tasks[-1]
    assert progress == sorted(progress), progress
    assert len({p for p in progress if 0 < p < 100}) >= 3, progress
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    # A client that comes back with Last-Event-ID gets only what is newer:
    # nothing, for a task that ended with that event; the stream just ends.
    assert sse_events(env.stack, f"/api/tasks/{tid}/events",
                      headers={**ADMIN, "Last-Event-ID": str(ids[-1])}, timeout=10) == []
    # Without it, the final state at once.
    (last,) = sse_events(env.stack, f"/api/tasks/{tid}/events", timeout=10)
    assert json.loads(last["data"])["status"] == "completed"


# ---- processing ---------------------------------------------------------------

@pytest.fixture(scope="module")
def source(env):
    """A downloaded clip to process."""
    tid = env.download(env.url("/clip.mp4"))
    env.completed(tid)
    return f"{tid}/clip.mp4"


def streams(info, kind):
    return [s for s in info["streams"] if s["codec_type"] == kind]


def test_process_trim_is_within_a_frame(env, source):
    tid = env.process(source, {"trim": {"start": "00:00:02.000", "duration": 3.4}})
    t = env.completed(tid)
    info = ffprobe(env.file(t["output_file"]))
    (v,) = streams(info, "video")
    assert abs(float(v["duration"]) - 3.4) <= 1.0 / FPS + 1e-6, v["duration"]
    assert int(v["nb_frames"]) in (84, 85, 86), v["nb_frames"]


def test_process_trim_by_end(env, source):
    tid = env.process(source, {"trim": {"start": 1, "end": "00:05"}})
    t = env.completed(tid)
    (v,) = streams(ffprobe(env.file(t["output_file"])), "video")
    assert abs(float(v["duration"]) - 4.0) <= 1.0 / FPS + 1e-6, v["duration"]


def test_process_resize_fps_quality(env, source):
    tid = env.process(source, {"resize": {"width": 320}, "fps": 10, "quality": 30})
    t = env.completed(tid)
    info = ffprobe(env.file(t["output_file"]))
    (v,) = streams(info, "video")
    assert (v["width"], v["height"]) == (320, 180), v
    assert v["avg_frame_rate"] in ("10/1", "10"), v
    assert v["codec_name"] == "h264"
    assert streams(info, "audio")


def test_process_webm(env, source):
    tid = env.process(source, {"format": "webm", "trim": {"start": 0, "duration": 2}})
    t = env.completed(tid)
    assert t["output_file"].endswith(".webm"), t
    info = ffprobe(env.file(t["output_file"]))
    assert streams(info, "video")[0]["codec_name"] == "vp9"
    assert streams(info, "audio")[0]["codec_name"] == "opus"


def test_process_remux_copies(env, source):
    """A change of container alone copies the streams (no re-encode): the
    frames are the source's, bit for bit."""
    tid = env.process(source, {"format": "mkv"})
    t = env.completed(tid)
    info = ffprobe(env.file(t["output_file"]))
    assert streams(info, "video")[0]["codec_name"] == "h264"

    def frames_md5(path):
        return subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(path), "-map", "0:v",
                               "-c", "copy", "-f", "md5", "-"], capture_output=True, text=True,
                              check=True).stdout
    assert frames_md5(env.file(t["output_file"])) == frames_md5(env.file(source))


def test_process_audio_only(env, source):
    tid = env.process(source, {"format": "mp3"})
    t = env.completed(tid)
    info = ffprobe(env.file(t["output_file"]))
    assert not streams(info, "video")
    assert streams(info, "audio")[0]["codec_name"] == "mp3"
    r = env.result(tid)
    assert r.status == 200 and r.header("Content-Type") == "audio/mpeg"


def test_process_hls(env, source):
    tid = env.process(source, {"format": "hls"})
    t = env.completed(tid)
    assert t["output_file"] == f"{tid}/index.m3u8", t
    text = env.file(t["output_file"]).read_text()
    assert "#EXT-X-ENDLIST" in text and ".ts" in text
    info = ffprobe(env.file(t["output_file"]))
    assert abs(float(info["format"]["duration"]) - CLIP_S) < 0.5


def test_process_thumbnail(env, source):
    tid = env.process(source, {"thumbnail": {"at": 3}, "resize": {"height": 180}})
    t = env.completed(tid)
    assert t["thumbnail_file"] and t["thumbnail_file"].endswith(".jpg"), t
    (v,) = streams(ffprobe(env.file(t["thumbnail_file"])), "video")
    assert v["codec_name"] == "mjpeg" and v["height"] == 180
    r = env.result(tid, file=t["thumbnail_file"].split("/", 1)[1])
    assert r.status == 200 and r.header("Content-Type") == "image/jpeg"

    only = env.process(source, {"thumbnail": True})
    t = env.completed(only)
    assert t["output_file"].endswith(".jpg"), t


def test_process_input_by_task(env, source):
    r = env.post("/api/process", {"input": {"task": source.split("/")[0]},
                                  "operations": {"trim": {"start": 0, "duration": 1}}})
    assert r.status == 202, r
    t = env.completed(r.json["task_id"])
    assert t["input_file"] == source, t


def test_process_failure_says_why(env, source):
    tid = env.process(source, {"trim": {"start": 60, "duration": 1}})
    t = env.wait(tid)
    assert t["status"] == "failed", t
    assert "start" in t["error"] and "\n" not in t["error"], t


# ---- cancel ----------------------------------------------------------------------

def test_cancel_mid_download(env):
    tid = env.download(env.url("/crawl/big.mp4"))
    env.wait(tid, statuses=("downloading",))
    assert wait_until(lambda: env.task(tid)["progress"] > 0, timeout=30)
    assert processes_mentioning(f"{env.origin.host}/crawl/big.mp4")
    r = env.delete(f"/api/tasks/{tid}")
    assert r.status == 200 and r.json["status"] == "canceled", r
    # The worker stops yt-dlp within a second or so, and removes the files.
    assert wait_until(lambda: not processes_mentioning(f"{env.origin.host}/crawl/big.mp4"),
                      timeout=10)
    assert wait_until(lambda: not env.file(tid).exists(), timeout=10)
    t = env.task(tid)
    assert t["status"] == "canceled" and t["error"] == "canceled", t
    assert env.result(tid).status == 409
    # Deleting it again removes the record.
    r = env.delete(f"/api/tasks/{tid}")
    assert r.status == 200 and r.json == {"task_id": tid, "deleted": True}, r
    assert env.get(f"/api/tasks/{tid}").status == 404


def test_cancel_pending(fresh):
    j = fresh(workers=0)
    tid = j.download(j.url("/clip.mp4"))
    r = j.delete(f"/api/tasks/{tid}")
    assert r.status == 200 and r.json["status"] == "canceled"
    assert j.task(tid)["status"] == "canceled"


def test_delete_completed_removes_files(env):
    tid = env.download(env.url("/clip.mp4"))
    t = env.completed(tid)
    assert env.file(t["downloaded_files"][0]).exists()
    assert env.delete(f"/api/tasks/{tid}").status == 200
    assert not env.file(tid).exists()
    assert env.get(f"/api/tasks/{tid}").status == 404
    assert env.result(tid).status == 404


# ---- workers and faults ------------------------------------------------------------

def worker_of(j, tid):
    return j.redis("HGET", f"mr:task:{tid}", "worker")


def test_two_workers_take_each_job_once(fresh):
    j = fresh(workers=2)
    tids = [j.download(j.url(f"/clip.mp4?n={i}")) for i in range(8)]
    for tid in tids:
        t = j.completed(tid)
        assert t["attempts"] == 1, t
    logs = j.stack.log("worker-1") + j.stack.log("worker-2")
    for tid in tids:
        assert logs.count(f"job {tid} (download, attempt") == 1, tid
    assert "job" in j.stack.log("worker-1") and "job" in j.stack.log("worker-2")


def test_sigkill_of_a_worker_mid_job(fresh):
    j = fresh(workers=2)
    url = j.url("/slow/big.mp4")
    tid = j.download(url)
    j.wait(tid, statuses=("downloading",))
    assert wait_until(lambda: j.task(tid)["progress"] > 0, timeout=30)
    victim = worker_of(j, tid)
    pid = j.stack.pid(victim)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), timeout=5)
    reap(pid)
    # Its guardian kills its yt-dlp: nothing of the dead worker runs on.
    assert wait_until(lambda: len(processes_mentioning(url)) == 0, timeout=5), \
        processes_mentioning(url)
    # The other worker takes it over after jobs.claim_idle_s and runs it again.
    t = j.completed(tid, timeout=120)
    assert t["attempts"] == 2, t
    assert worker_of(j, tid) != victim
    data = j.result(tid).body
    assert sha256(data) == sha256((j.origin.dir / "www" / "big.mp4").read_bytes())


def test_attempts_run_out(fresh):
    j = fresh(jobs_config(jobs={"max_attempts": 1}), workers=2)
    url = j.url("/slow/big.mp4")
    tid = j.download(url)
    j.wait(tid, statuses=("downloading",))
    pid = j.stack.pid(worker_of(j, tid))
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), timeout=5)
    reap(pid)
    t = j.wait(tid, timeout=60)
    assert t["status"] == "failed" and "jobs.max_attempts" in t["error"], t


def test_sigterm_hands_the_job_back(fresh):
    j = fresh(workers=2)
    tid = j.download(j.url("/slow/big.mp4"))
    j.wait(tid, statuses=("downloading",))
    first = worker_of(j, tid)
    pid = j.stack.pid(first)
    os.kill(pid, signal.SIGTERM)
    # server.drain_timeout_s is 2: then it hands the job back and exits 0.
    assert wait_until(lambda: not alive(pid), timeout=15)
    assert reap(pid) in (0, None)
    assert f"job {tid} handed back" in j.stack.log(first)
    t = j.completed(tid, timeout=120)
    assert t["attempts"] == 1, t               # a hand-back is not an attempt
    assert worker_of(j, tid) != first


def test_redis_restart_mid_job(fresh):
    j = fresh(workers=1)
    tid = j.download(j.url("/slow/big.mp4"))
    j.wait(tid, statuses=("downloading",))
    # A snapshot, then Redis dies and comes back from it (as one with
    # persistence would after a crash).
    j.redis("SAVE")
    j.stack.kill_redis()
    time.sleep(1.5)
    j.stack.start_redis()
    # The executables and the worker find Redis again by themselves: each
    # thread's connection fails once, then is made again after
    # store.retry_ms; until then the API says 503.
    j.redis_restarted = True
    t = j.completed(tid, timeout=120)
    assert t["attempts"] == 1, t
    assert sha256(j.result(tid).body) == \
        sha256((j.origin.dir / "www" / "big.mp4").read_bytes())


def test_limits_time_and_size(fresh):
    j = fresh(jobs_config(jobs={"timeout_s": 10, "max_bytes": 1 << 20}), workers=1)
    # bigger than jobs.max_bytes, its size known beforehand: not downloaded
    t = j.wait(j.download(j.url("/big.mp4")))
    assert t["status"] == "failed" and "jobs.max_bytes" in t["error"], t
    # slower than jobs.timeout_s: an HLS stream (whose size nobody knows
    # beforehand) of 3 MB at 60 KB/s
    url = j.url("/crawl/bighls/index.m3u8")
    tid = j.download(url)
    t = j.wait(tid, timeout=60)
    assert t["status"] == "failed" and "jobs.timeout_s" in t["error"], t
    assert not processes_mentioning(url)
    assert not j.file(tid).exists()


def test_records_expire_and_folders_are_swept(fresh):
    j = fresh(jobs_config(jobs={"keep_s": 120}), workers=1)
    tid = j.download(j.url("/clip.mp4"))
    j.completed(tid)
    ttl = int(j.redis("TTL", f"mr:task:{tid}"))
    assert 100 <= ttl <= 120, ttl
    mid = j.post(f"/api/tasks/{tid}/media", None).json["id"]
    assert 100 <= int(j.redis("PTTL", f"mr:media:{mid}")) / 1000 <= 120
    # A folder whose record is gone (it expired), older than the sweep's
    # grace: removed by a worker.  One whose record is there: kept.
    stale = j.stack.dir / "jobs" / ("ab" * 12)
    stale.mkdir()
    (stale / "x.mp4").write_bytes(b"x")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(j.file(tid), (old, old))
    # A worker sweeps a few seconds after it starts, then every minute: a
    # new one (its pid file in the stack's folder, so the stack stops it).
    with open(j.stack.dir / "worker-9.log", "ab") as log:
        w = subprocess.Popen([str(binary("worker")), "--config",
                              str(j.stack.dir / "mediarelay.json"), "--id", "worker-9"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    (j.stack.dir / "worker-9.pid").write_text(f"{w.pid}\n")
    assert wait_until(lambda: not stale.exists(), timeout=30)
    assert j.file(tid).exists()


def test_results_sent_by_nginx(fresh):
    """stream.offload "nginx": mediarelay-jobs checks the request and nginx
    sends the file (X-Accel-Redirect to jobs.accel_prefix), Range and all,
    for a download and for a registered result's player URL."""
    j = fresh(jobs_config(stream={"offload": "nginx"}), workers=1)
    tid = j.download(j.url("/clip.mp4"))
    j.completed(tid)
    want = (j.origin.dir / "www" / "clip.mp4").read_bytes()
    r = j.result(tid)
    assert r.status == 200 and r.body == want, r
    assert r.header("Content-Disposition").startswith("attachment;"), r
    assert r.header("X-Accel-Redirect") is None
    part = j.result(tid, extra={"Range": "bytes=10-19"})
    assert part.status == 206 and part.body == want[10:20], part
    assert j.result(tid, headers={"Cookie": "session=nobody"}).status == 401
    ms = j.post(f"/api/tasks/{tid}/media", None).json
    got = http_request("GET", ms["url"], headers={"Range": "bytes=0-99"})
    assert got.status == 206 and got.body == want[:100], got
    # the internal location is not for clients
    assert http_request("GET", j.stack.base_url + f"/_mr_jobs/{tid}/clip.mp4").status == 404


# ---- who may -------------------------------------------------------------------------

def test_users_see_only_their_own(env):
    alice = env.session("sid-alice-1", "alice")
    bob = env.session("sid-bob-1", "bob")
    tid = env.download(env.url("/clip.mp4?u=alice"), headers=alice)
    env.completed(tid, headers=alice)
    # bob: as if it did not exist
    for method, path in (("GET", f"/api/tasks/{tid}"), ("DELETE", f"/api/tasks/{tid}"),
                         ("GET", f"/api/download-result/{tid}"),
                         ("GET", f"/api/tasks/{tid}/events")):
        assert_json_error(env.stack.request(method, path, headers=bob), 404, "not_found")
    assert tid not in [t["task_id"] for t in env.get("/api/tasks", headers=bob).json["tasks"]]
    mine = env.get("/api/tasks", headers=alice).json
    assert [t["task_id"] for t in mine["tasks"]] == [tid] and mine["total"] == 1
    # bob cannot process alice's result either
    r = env.post("/api/process", {"input_file": f"{tid}/clip.mp4",
                                  "operations": {"format": "mkv"}}, headers=bob)
    assert_json_error(r, 400, "bad_request")
    # the admin sees and reads everyone's
    assert tid in [t["task_id"] for t in env.get("/api/tasks?limit=200").json["tasks"]]
    assert env.result(tid).status == 200
    assert env.result(tid, headers=alice).status == 200
    # no credentials, a wrong token, an unknown session
    for h in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "session=nobody"}):
        assert_json_error(env.stack.request("GET", "/api/tasks", headers=h), 401,
                          "unauthorized")
        assert_json_error(env.post("/api/download", {"url": env.url("/clip.mp4")}, headers=h),
                          401, "unauthorized")


def test_queue_cap_per_user(fresh):
    j = fresh(jobs_config(jobs={"max_queued_per_user": 2}), workers=0)
    carol = j.session("sid-carol", "carol")
    j.download(j.url("/clip.mp4?1"), headers=carol)
    second = j.download(j.url("/clip.mp4?2"), headers=carol)
    r = j.post("/api/download", {"url": j.url("/clip.mp4?3")}, headers=carol)
    assert_json_error(r, 429, "too_many_requests")
    assert r.header("Retry-After")
    # another user is not held up; a canceled task frees a place
    dave = j.session("sid-dave", "dave")
    j.download(j.url("/clip.mp4?4"), headers=dave)
    assert j.delete(f"/api/tasks/{second}", headers=carol).status == 200
    j.download(j.url("/clip.mp4?5"), headers=carol)


def test_list_filter_and_paging(env):
    erin = env.session("sid-erin", "erin")
    tids = [env.download(env.url(f"/clip.mp4?e={i}"), headers=erin) for i in range(3)]
    for tid in tids:
        env.completed(tid, headers=erin)
    r = env.get("/api/tasks?limit=2&offset=0", headers=erin).json
    assert [t["task_id"] for t in r["tasks"]] == tids[::-1][:2] and r["total"] == 3
    r = env.get("/api/tasks?limit=2&offset=2", headers=erin).json
    assert [t["task_id"] for t in r["tasks"]] == [tids[0]]
    assert env.get("/api/tasks?status=failed", headers=erin).json["total"] == 0
    assert env.get("/api/tasks?status=completed", headers=erin).json["total"] == 3
    assert_json_error(env.get("/api/tasks?status=bogus", headers=erin), 400, "bad_request")
    assert_json_error(env.get("/api/tasks?limit=0", headers=erin), 400, "bad_request")


# ---- hostile input -----------------------------------------------------------------

BAD_DOWNLOADS = [
    ({}, "url"),
    ({"url": 5}, "url"),
    ({"url": "ftp://127.0.0.1/x.mp4"}, "url"),
    ({"url": "file:///etc/passwd"}, "url"),
    ({"url": "http://"}, "url"),
    ({"url": "http://127.0.0.1/a b"}, "url"),
    ({"url": "http://no-such-host.invalid/x"}, "url"),
    ({"url": "@URL@", "format_id": "-o/tmp/x"}, "format_id"),
    ({"url": "@URL@", "format_id": "best; rm -rf /"}, "format_id"),
    ({"url": "@URL@", "format_id": "x" * 200}, "format_id"),
    ({"url": "@URL@", "include_subtitles": "yes"}, "include_subtitles"),
    ({"url": "@URL@", "subtitle_langs": "en"}, "subtitle_langs"),
    ({"url": "@URL@", "subtitle_langs": ["en", "--exec"]}, "subtitle_langs[1]"),
    ({"url": "@URL@", "subtitle_langs": ["en"] * 30}, "subtitle_langs"),
    ({"url": "@URL@", "output": "/etc/passwd"}, "output"),
]


@pytest.mark.parametrize("body,field", BAD_DOWNLOADS)
def test_bad_downloads(env, body, field):
    body = {k: (env.url("/clip.mp4") if v == "@URL@" else v) for k, v in body.items()}
    err = assert_json_error(env.post("/api/download", body), 400, "bad_request")
    assert err["message"].startswith(field), err


BAD_PROCESS = [
    ({"operations": {"format": "mkv"}}, "input_file"),
    ({"input_file": "../../etc/passwd", "operations": {"format": "mkv"}}, "input_file"),
    ({"input_file": "@TASK@/../../../etc/passwd", "operations": {"format": "mkv"}},
     "input_file"),
    ({"input_file": "@TASK@/other.mp4", "operations": {"format": "mkv"}}, "input_file"),
    ({"input_file": "0123456789abcdef01234567/clip.mp4", "operations": {"format": "mkv"}},
     "input_file"),
    ({"input": {"task": "nope"}, "operations": {"format": "mkv"}}, "input.task"),
    ({"input": {"path": "/etc/passwd"}, "operations": {"format": "mkv"}}, "input"),
    ({"input_file": "@FILE@"}, "operations"),
    ({"input_file": "@FILE@", "operations": {}}, "operations"),
    ({"input_file": "@FILE@", "operations": {"crop": 1}}, "operations.crop"),
    ({"input_file": "@FILE@", "operations": {"quality": 52}}, "operations.quality"),
    ({"input_file": "@FILE@", "operations": {"quality": "best"}}, "operations.quality"),
    ({"input_file": "@FILE@", "operations": {"fps": 0}}, "operations.fps"),
    ({"input_file": "@FILE@", "operations": {"fps": 1000}}, "operations.fps"),
    ({"input_file": "@FILE@", "operations": {"format": "exe"}}, "operations.format"),
    ({"input_file": "@FILE@", "operations": {"resize": {"width": 8}}},
     "operations.resize.width"),
    ({"input_file": "@FILE@", "operations": {"resize": {"height": 99999}}},
     "operations.resize.height"),
    ({"input_file": "@FILE@", "operations": {"trim": {"start": -1, "duration": 2}}},
     "operations.trim.start"),
    ({"input_file": "@FILE@", "operations": {"trim": {"start": "1:2:3:4", "duration": 2}}},
     "operations.trim.start"),
    ({"input_file": "@FILE@", "operations": {"trim": {"start": 5, "end": 2}}},
     "operations.trim.end"),
    ({"input_file": "@FILE@", "operations": {"trim": {"start": 1, "duration": 0}}},
     "operations.trim.duration"),
    ({"input_file": "@FILE@", "operations": {"audio_only": True, "resize": {"width": 320}}},
     "operations"),
    ({"input_file": "@FILE@", "operations": {"thumbnail": {"at": "x"}}},
     "operations.thumbnail"),
]


@pytest.mark.parametrize("body,field", BAD_PROCESS)
def test_bad_process(env, source, body, field):
    task = source.split("/")[0]
    body = json.loads(json.dumps(body).replace("@FILE@", source).replace("@TASK@", task))
    err = assert_json_error(env.post("/api/process", body), 400, "bad_request")
    assert err["message"].startswith(field), err


def test_bad_bodies(env):
    for body in (b"", b"not json", b"[1,2]", b'{"url": "x"' , b"{}" + b" " * 70000):
        r = env.stack.request("POST", "/api/download", headers=ADMIN, body=body)
        assert r.status in (400, 413), r
        assert_json_error(r, r.status, "bad_request" if r.status == 400 else "payload_too_large")
    assert_json_error(env.get("/api/tasks/zzz"), 404, "not_found")
    assert_json_error(env.get("/api/tasks/" + "0" * 24), 404, "not_found")
    assert_json_error(env.get("/api/download-result/" + "0" * 24), 404, "not_found")


def test_private_address_refused(fresh):
    j = fresh(jobs_config(upstream={"allow_private_networks": False,
                                    "allow_networks": ["127.0.0.0/8"]}), workers=0)
    for path in ("/api/download", "/api/analyze"):
        err = assert_json_error(j.post(path, {"url": "http://10.1.2.3/x.mp4"}), 403,
                                "upstream_blocked")
        assert err["message"].startswith("url"), err


def test_shell_metacharacters_reach_ytdlp_as_one_argument(env, tmp_path):
    marker = tmp_path / "pwned"
    url = env.url(f"/clip.mp4?a=$(touch%20{marker})&b=`touch%20{marker}`;touch%20{marker}")
    tid = env.download(url)
    env.wait(tid)
    assert not marker.exists()


# ---- a result as a media item --------------------------------------------------

def play(url, seconds=None):
    """ffmpeg reads url to the end (or `seconds` of it); its stderr when it fails."""
    args = [FFMPEG, "-v", "error", "-i", url] + (["-t", str(seconds)] if seconds else []) + \
        ["-f", "null", "-"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r


def test_result_as_media_item(env, source):
    tid = source.split("/")[0]
    r = env.post(f"/api/tasks/{tid}/media", None)
    assert r.status == 201, r
    ms = r.json
    assert ms["provider"] == "job" and ms["video_type"] == "mp4", ms
    assert ms["url"].startswith(env.stack.base_url + "/api/results/"), ms
    assert ms["url"].endswith("/clip.mp4") and ms["expire_at"], ms
    mid = ms["id"]
    assert r.header("Location") == f"/api/media/{mid}/source"
    want = env.file(source).read_bytes()
    # The URL needs no credential but itself: a player's.
    got = http_request("GET", ms["url"])
    assert got.status == 200 and sha256(got.body) == sha256(want), got
    assert got.header("Content-Type") == "video/mp4" and not got.header("Content-Disposition")
    part = http_request("GET", ms["url"], headers={"Range": "bytes=1000-1999"})
    assert part.status == 206 and part.body == want[1000:2000]
    play(ms["url"])
    # It is a media item like the others: its source through resolve, and
    # the relay path of the item leads to the same file.
    src = env.stack.get(f"/api/media/{mid}/source")
    assert src.status == 200 and src.json["url"] == ms["url"], src
    moved = env.stack.get(f"/api/proxy/media/{mid}")
    assert moved.status == 302 and moved.header("Location") == ms["url"], moved
    # A link whose token was changed, or names another file, is refused.
    token = ms["url"].split("/api/results/")[1].split("/")[0]
    bad = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert_json_error(http_request("GET", ms["url"].replace(token, bad)), 403, "forbidden")
    for name in ("..%2F..%2Fetc%2Fpasswd", ".hidden", "nope.mp4", "%00"):
        r = http_request("GET", ms["url"].rsplit("/", 1)[0] + "/" + name)
        assert r.status in (400, 403, 404), (name, r)   # nginx refuses %00 itself


def test_hls_result_plays_as_media_item(env, source):
    tid = env.process(source, {"format": "hls"})
    env.completed(tid)
    r = env.post(f"/api/tasks/{tid}/media", {"title": "my clip"})
    assert r.status == 201, r
    ms = r.json
    assert ms["video_type"] == "hls" and ms["url"].endswith("/index.m3u8"), ms
    assert ms["title"] == "my clip"
    pl = http_request("GET", ms["url"])
    assert pl.status == 200 and pl.header("Content-Type") == "application/vnd.apple.mpegurl"
    # Its segments are named relative to the playlist: the same token.
    play(ms["url"])
    info = json.loads(subprocess.run([FFPROBE, "-v", "error", "-print_format", "json",
                                      "-show_format", ms["url"]], capture_output=True,
                                     text=True, timeout=60, check=True).stdout)
    assert abs(float(info["format"]["duration"]) - CLIP_S) < 0.5
    moved = env.stack.get(f"/api/media/{ms['id']}/index.m3u8")
    assert moved.status == 302 and moved.header("Location") == ms["url"], moved


def test_register_needs_the_owner_and_a_finished_task(env, source):
    tid = source.split("/")[0]
    frank = env.session("sid-frank", "frank")
    assert_json_error(env.post(f"/api/tasks/{tid}/media", None, headers=frank), 404,
                      "not_found")
    assert_json_error(env.post(f"/api/tasks/{tid}/media", {"file": "other.mp4"}), 400,
                      "bad_request")
    assert_json_error(env.post(f"/api/tasks/{tid}/media", {"nope": 1}), 400, "bad_request")
    # a room: the admin may name any; a user only one they are in
    gina = env.session("sid-gina", "gina")
    own = env.download(env.url("/clip.mp4?gina"), headers=gina)
    env.completed(own, headers=gina)
    assert_json_error(env.post(f"/api/tasks/{own}/media", {"room": "r1"}, headers=gina), 403,
                      "forbidden")
    env.redis("SADD", "mr:room:r1:members", "gina")
    r = env.post(f"/api/tasks/{own}/media", {"room": "r1"}, headers=gina)
    assert r.status == 201, r
    # the room holds: without a session of a member, the source is refused
    assert env.stack.get(f"/api/media/{r.json['id']}/source", headers={}).status == 401
    ok = env.stack.get(f"/api/media/{r.json['id']}/source", headers=gina)
    assert ok.status == 200, ok
    # a task that has not ended has no result to register
    slow = env.download(env.url("/crawl/big.mp4"))
    env.wait(slow, statuses=("downloading",))
    assert env.post(f"/api/tasks/{slow}/media", None).status == 409
    env.delete(f"/api/tasks/{slow}")


def test_process_a_media_item(env):
    """A registered item as the input: resolved by mediarelay-jobs, fetched by
    the worker with the headers its source needs, then processed; the
    task says which item, never its upstream."""
    r = env.post("/api/media", {"id": "refclip", "provider": "direct", "title": "Ref clip",
                                "source": {"url": env.url("/ref/clip.mp4"),
                                           "headers": {"Referer": "https://ref.example/"}}})
    assert r.status == 201, r
    assert http_request("GET", env.url("/ref/clip.mp4")).status == 403   # needs it
    r = env.post("/api/process", {"input": {"media": "refclip"},
                                  "operations": {"trim": {"start": 1, "duration": 2}}})
    assert r.status == 202, r
    t = env.completed(r.json["task_id"])
    assert t["input_media"] == "refclip" and "input_url" not in t and \
        "input_headers" not in t, t
    assert t["output_file"].endswith("/Ref clip.mp4"), t
    (v,) = streams(ffprobe(env.file(t["output_file"])), "video")
    assert abs(float(v["duration"]) - 2.0) <= 1.0 / FPS + 1e-6
    assert not [p for p in env.file(t["task_id"]).iterdir() if p.name.startswith(".")]
    for body, status in (({"input": {"media": "nope"}}, 400),
                         ({"input": {"media": "refclip", "task": "x"}}, 400)):
        body["operations"] = {"format": "mkv"}
        assert env.post("/api/process", body).status == status


def test_process_a_registered_result(env, source):
    tid = env.process(source, {"format": "hls"})
    env.completed(tid)
    mid = env.post(f"/api/tasks/{tid}/media", None).json["id"]
    hank = env.session("sid-hank", "hank")
    r = env.post("/api/process", {"input": {"media": mid}, "operations": {"format": "mp4"}},
                 headers=hank)
    assert r.status == 202, r
    t = env.completed(r.json["task_id"], headers=hank)
    assert t["input_task"] == tid, t
    info = ffprobe(env.file(t["output_file"]))
    assert abs(float(info["format"]["duration"]) - CLIP_S) < 0.5


# ---- the original front-end, call by call ------------------------------------------

def test_mediapro_five_calls(env):
    url = env.url("/page.html")
    a = env.post("/api/analyze", {"url": url}, timeout=90)
    assert a.status == 200 and a.json["formats"], a
    fmt = a.json["formats"][-1]["format_id"]
    d = env.post("/api/download", {"url": url, "format_id": fmt})
    assert d.status == 202, d
    tid = d.json["task_id"]
    t = env.completed(tid)
    files = t["downloaded_files"]
    p = env.post("/api/process", {"input_file": files[0],
                                  "operations": {"trim": {"start": 0, "duration": 2},
                                                 "resize": {"width": 320, "height": 180}}})
    assert p.status == 202, p
    t = env.completed(p.json["task_id"])
    r = env.result(p.json["task_id"])
    assert r.status == 200 and r.header("Content-Disposition").startswith("attachment;")
    out = env.stack.dir / "out.mp4"
    out.write_bytes(r.body)
    (v,) = streams(ffprobe(out), "video")
    assert (v["width"], v["height"]) == (320, 180)
