"""Expiry the player never sees (issue 6): a provider-bound media item whose
links die while it plays -- an HLS stream with the signature in the path
(found again by position: the variant and media sequence number the relay
URL's hints carry), one with the signature in the query (found again by
path), an MP4 file -- keeps playing through the relay, and ffmpeg plays a
whole stream across several expiries without one failed request.

The provider is ytdlp behind a stand-in script that asks the origin for a
fresh link (/mint): each resolution is a new signature, and the origin
refuses signatures that were revoked, or that used up their budget."""

import json
import re
import shutil
import subprocess
import threading
import urllib.parse

import pytest

from conftest import ADMIN_TOKEN, make_config
from proxyutil import ScriptedOrigin, module_stack, path_of, raw_get

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FFMPEG = shutil.which("ffmpeg")
NSEG = 8

WRAPPER = """#!/bin/sh
# A stand-in for yt-dlp: the last argument is the page URL; the origin mints
# a fresh link for it.
for a in "$@"; do url=$a; done
exec curl -sf "@MINT@?u=$url"
"""


class SigningOrigin:
    """Media under signed links: /p/SIG/... (path-signed HLS), /q/...?sig=SIG
    (query-signed HLS), /f/a.mp4?sig=SIG (a file).  revoke() kills every
    signature minted so far; with a budget, a signature dies after that many
    segment requests."""

    def __init__(self, segments, mp4):
        self.segments, self.mp4 = segments, mp4
        self.lock = threading.Lock()
        self.minted, self.minted_kinds, self.revoked, self.uses = [], [], set(), {}
        self.budget = None
        self.refused = 0
        self.o = ScriptedOrigin()
        self.o.route("/mint/", self.mint)
        self.o.route("/p/", self.path_signed)
        self.o.route("/q/", self.query_signed)
        self.o.route("/f/", self.file)

    def url(self, path):
        return self.o.url(path)

    def revoke(self):
        with self.lock:
            self.revoked |= set(self.minted)

    def mints(self, kind):
        with self.lock:
            return sum(1 for k, _ in self.minted_kinds if k == kind)

    def mint(self, h, seen):
        u = urllib.parse.parse_qs(seen.query).get("u", [""])[0]
        kind = u.rstrip("/").rsplit("/", 1)[-1]
        with self.lock:
            sig = f"s{len(self.minted)}x{id(self) % 1000}"
            self.minted.append(sig)
            self.minted_kinds.append((kind, sig))
        if kind == "p":
            body = {"title": "path-signed", "ext": "mp4", "protocol": "m3u8_native",
                    "url": self.url(f"/p/{sig}/master.m3u8")}
        elif kind == "q":
            body = {"title": "query-signed", "ext": "mp4", "protocol": "m3u8_native",
                    "url": self.url(f"/q/master.m3u8?sig={sig}")}
        else:
            body = {"title": "file", "ext": "mp4", "protocol": "http",
                    "url": self.url(f"/f/a.mp4?sig={sig}")}
        h.answer(200, {"Content-Type": "application/json"}, json.dumps(body))

    def valid(self, sig, segment):
        with self.lock:
            if sig not in self.minted or sig in self.revoked:
                self.refused += 1
                return False
            if segment and self.budget is not None:
                self.uses[sig] = self.uses.get(sig, 0) + 1
                if self.uses[sig] > self.budget:
                    self.revoked.add(sig)
                    self.refused += 1
                    return False
            return True

    def master(self, suffix):
        return ("#EXTM3U\n#EXT-X-VERSION:3\n"
                f"#EXT-X-STREAM-INF:BANDWIDTH=800000\nv0/index.m3u8{suffix}\n"
                f"#EXT-X-STREAM-INF:BANDWIDTH=400000\nv1/index.m3u8{suffix}\n")

    def media(self, suffix):
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2",
                 "#EXT-X-MEDIA-SEQUENCE:100"]
        for i in range(len(self.segments)):
            lines += ["#EXTINF:1.0,", f"s{i}.ts{suffix}"]
        return "\n".join(lines + ["#EXT-X-ENDLIST", ""])

    def serve(self, h, rest, suffix, sig):
        pl = {"Content-Type": "application/vnd.apple.mpegurl"}
        if rest == "master.m3u8":
            return h.answer(200, pl, self.master(suffix))
        m = re.fullmatch(r"v([01])/(index\.m3u8|s(\d+)\.ts)", rest)
        if not m:
            return h.answer(404, {}, b"")
        if m.group(3) is None:
            return h.answer(200, pl, self.media(suffix))
        i = int(m.group(3))
        if i >= len(self.segments):
            return h.answer(404, {}, b"")
        if not self.valid(sig, True):
            return h.answer(403, {}, b"expired\n")
        h.answer(200, {"Content-Type": "video/mp2t"}, self.segments[i])

    def path_signed(self, h, seen):
        parts = seen.path.split("/", 3)   # "", p, SIG, rest
        if len(parts) < 4 or not self.valid(parts[2], False):
            return h.answer(403, {}, b"expired\n")
        self.serve(h, parts[3], "", parts[2])

    def query_signed(self, h, seen):
        sig = urllib.parse.parse_qs(seen.query).get("sig", [""])[0]
        if not self.valid(sig, False):
            return h.answer(403, {}, b"expired\n")
        self.serve(h, seen.path[len("/q/"):], f"?sig={sig}", sig)

    def file(self, h, seen):
        sig = urllib.parse.parse_qs(seen.query).get("sig", [""])[0]
        if not self.valid(sig, True):
            return h.answer(403, {}, b"expired\n")
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", seen.headers.get("Range") or "")
        if not rng:
            return h.answer(200, {"Content-Type": "video/mp4", "Accept-Ranges": "bytes"},
                            self.mp4)
        start = int(rng.group(1))
        end = int(rng.group(2)) if rng.group(2) else len(self.mp4) - 1
        h.answer(206, {"Content-Type": "video/mp4", "Accept-Ranges": "bytes",
                       "Content-Range": f"bytes {start}-{end}/{len(self.mp4)}"},
                 self.mp4[start:end + 1])


def make_media(tmp):
    """NSEG one-second TS segments and an MP4, made with ffmpeg."""
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(NSEG),
                    "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
                    "-hls_segment_filename", str(tmp / "s%d.ts"), str(tmp / "index.m3u8")],
                   check=True, timeout=120, stdin=subprocess.DEVNULL)
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                    str(tmp / "a.mp4")], check=True, timeout=120, stdin=subprocess.DEVNULL)
    segs = []
    for i in range(NSEG):
        p = tmp / f"s{i}.ts"
        if p.exists():
            segs.append(p.read_bytes())
    return segs, (tmp / "a.mp4").read_bytes()


@pytest.fixture(scope="module")
def env(request, tmp_path_factory):
    if not FFMPEG or not shutil.which("curl"):
        pytest.skip("ffmpeg and curl are needed")
    tmp = tmp_path_factory.mktemp("expiry")
    segs, mp4 = make_media(tmp)
    origin = SigningOrigin(segs, mp4)
    wrapper = tmp / "fake-yt-dlp"
    wrapper.write_text(WRAPPER.replace("@MINT@", origin.url("/mint/")))
    wrapper.chmod(0o755)
    # No playlist cache: a revoked variant playlist must be fetched again.
    cfg = make_config(providers={"ytdlp": {"path": str(wrapper), "timeout_s": 8}},
                      hls={"vod_playlist_cache_s": 0})
    gen = module_stack(request, cfg)
    st = next(gen)
    st.origin = origin
    yield st
    origin.o.close()
    try:
        next(gen)
    except StopIteration:
        pass


def register(st, kind):
    r = st.request("POST", "/api/media", headers=ADMIN,
                   body={"provider": "ytdlp", "source": {"url": st.origin.url(f"/{kind}")}})
    assert r.status == 201, r
    return r.json["id"]


def uris(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def playlists(st, mid):
    """The relay's master and its first variant (paths)."""
    master = st.get(f"/api/media/{mid}/index.m3u8")
    assert master.status == 200, master
    variant = path_of(uris(master.body.decode())[0])
    r = st.get(variant)
    assert r.status == 200, r
    return variant, [path_of(u) for u in uris(r.body.decode())]


def test_hints_only_for_provider_bound_media(env):
    mid = register(env, "p")
    variant, segs = playlists(env, mid)
    assert variant.endswith(".m3u8?v=0"), variant
    assert segs[0].endswith("?n=100&v=0") and segs[3].endswith("?n=103&v=0"), segs[:4]


def test_path_signed_segment_is_found_by_position(env):
    mid = register(env, "p")
    _, segs = playlists(env, mid)
    assert raw_get(env.port, segs[0]).status == 200
    before = env.origin.mints("p")
    env.origin.revoke()
    r = raw_get(env.port, segs[3])
    assert r.status == 200, r
    assert r.body == env.origin.segments[3]
    assert env.origin.mints("p") == before + 1
    # The fresh link is cached: the next segment costs no resolution.
    r = raw_get(env.port, segs[4])
    assert r.status == 200 and r.body == env.origin.segments[4]
    assert env.origin.mints("p") == before + 1


def test_path_signed_variant_playlist_is_found_by_position(env):
    mid = register(env, "p")
    variant, _ = playlists(env, mid)
    before = env.origin.mints("p")
    env.origin.revoke()
    r = env.get(variant)
    assert r.status == 200, r
    assert env.origin.mints("p") == before + 1
    segs = [path_of(u) for u in uris(r.body.decode())]
    assert len(segs) == len(env.origin.segments)
    r = raw_get(env.port, segs[1])
    assert r.status == 200 and r.body == env.origin.segments[1]


def test_many_viewers_one_resolution(env):
    """Eight requests for eight dead links at once: one fresh resolution."""
    mid = register(env, "p")
    _, segs = playlists(env, mid)
    before = env.origin.mints("p")
    env.origin.revoke()
    results = [None] * len(segs)

    def get(i):
        results[i] = raw_get(env.port, segs[i], timeout=30)

    threads = [threading.Thread(target=get, args=(i,)) for i in range(len(segs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        assert r.status == 200 and r.body == env.origin.segments[i], (i, r)
    assert env.origin.mints("p") == before + 1


def test_query_signed_segment_is_found_by_path(env):
    mid = register(env, "q")
    _, segs = playlists(env, mid)
    env.origin.revoke()
    # A URL without its hints: the path alone finds it.
    r = raw_get(env.port, segs[2].split("?")[0])
    assert r.status == 200, r
    assert r.body == env.origin.segments[2]


def test_a_segment_that_is_gone_stays_an_error(env):
    """What the fresh source does not have is the upstream's answer, passed on."""
    mid = register(env, "p")
    _, segs = playlists(env, mid)
    env.origin.revoke()
    bogus = re.sub(r"\?n=\d+", "?n=999", segs[2])
    r = raw_get(env.port, bogus)
    assert r.status == 403, r
    # Asked again, it is not searched for again (no fresh resolution).
    mints = env.origin.mints("p")
    env.origin.revoke()
    assert raw_get(env.port, bogus).status == 403
    assert env.origin.mints("p") == mints


def test_file_is_resolved_again(env):
    mid = register(env, "f")
    r = raw_get(env.port, f"/api/proxy/media/{mid}", {"Range": "bytes=0-99"})
    assert r.status == 206 and r.body == env.origin.mp4[:100]
    env.origin.revoke()
    r = raw_get(env.port, f"/api/proxy/media/{mid}", {"Range": "bytes=100-199"})
    assert r.status == 206, r
    assert r.body == env.origin.mp4[100:200]


@pytest.mark.parametrize("kind", ["p", "q"])
def test_ffmpeg_plays_across_expiries(env, kind):
    """Every signature dies after 3 segments: ffmpeg plays all NSEG segments
    of the relay's stream, and no request through nginx fails."""
    mid = register(env, kind)
    env.origin.budget = 3
    mark = len(env.log("nginx-access"))
    refused = env.origin.refused
    try:
        p = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin",
                            "-i", env.url(f"/api/media/{mid}/index.m3u8"),
                            "-map", "0:v:0", "-c", "copy", "-f", "mpegts", "-"],
                           capture_output=True, timeout=120)
    finally:
        env.origin.budget = None
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    assert not p.stderr.strip(), p.stderr.decode(errors="replace")[-2000:]
    # Links did die under it, and were found again.
    assert env.origin.refused > refused
    lines = env.log("nginx-access")[mark:].splitlines()
    seg_lines = [line for line in lines if "/api/seg/" in line]
    assert len(seg_lines) >= NSEG, lines
    failed = [line for line in lines if re.search(r'" [45]\d\d ', line)]
    assert not failed, failed
