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
        self.minters = {}       # page name -> a route answering /mint/ for it
        self.crlf = False       # playlists with CRLF line ends
        self.dead = False       # media playlists list s99.ts, 404 whatever the signature
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
        if kind in self.minters:
            return self.minters[kind](h, seen)
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
        text = ("#EXTM3U\n#EXT-X-VERSION:3\n"
                f"#EXT-X-STREAM-INF:BANDWIDTH=800000\nv0/index.m3u8{suffix}\n"
                f"#EXT-X-STREAM-INF:BANDWIDTH=400000\nv1/index.m3u8{suffix}\n")
        return text.replace("\n", "\r\n") if self.crlf else text

    def media(self, suffix):
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2",
                 "#EXT-X-MEDIA-SEQUENCE:100"]
        for i in range(len(self.segments)):
            lines += ["#EXTINF:1.0,", f"s{i}.ts{suffix}"]
        if self.dead:
            lines += ["#EXTINF:1.0,", f"s99.ts{suffix}"]
        text = "\n".join(lines + ["#EXT-X-ENDLIST", ""])
        return text.replace("\n", "\r\n") if self.crlf else text

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


def make_env(request, tmp_path_factory, offload=None, **config):
    """A stack whose ytdlp provider mints links at a SigningOrigin; yields it."""
    if not FFMPEG or not shutil.which("curl"):
        pytest.skip("ffmpeg and curl are needed")
    tmp = tmp_path_factory.mktemp("expiry")
    segs, mp4 = make_media(tmp)
    origin = SigningOrigin(segs, mp4)
    wrapper = tmp / "fake-yt-dlp"
    wrapper.write_text(WRAPPER.replace("@MINT@", origin.url("/mint/")))
    wrapper.chmod(0o755)
    cfg = make_config(providers={"ytdlp": {"path": str(wrapper), "timeout_s": 8}}, **config)
    gen = module_stack(request, cfg, mode=offload)
    st = next(gen)
    st.origin = origin
    yield st
    origin.o.close()
    try:
        next(gen)
    except StopIteration:
        pass


@pytest.fixture(scope="module")
def env(request, tmp_path_factory):
    # Links are revoked moments after they were minted: resolving again is
    # allowed at once (resolve.again_min_s 0); no playlist cache, so a
    # revoked variant playlist is fetched again.
    yield from make_env(request, tmp_path_factory, resolve={"again_min_s": 0},
                        hls={"vod_playlist_cache_s": 0})


@pytest.fixture(scope="module")
def env_default(request, tmp_path_factory):
    """resolve.again_min_s and the playlist cache as by default."""
    yield from make_env(request, tmp_path_factory)


@pytest.fixture(scope="module")
def env_offload(request, tmp_path_factory):
    yield from make_env(request, tmp_path_factory, offload="nginx",
                        resolve={"again_min_s": 0})


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


def test_made_up_hints_find_nothing_for_the_others(env):
    """A request for segment 3 with a made-up ?n=105 does not decide what
    the honest requests for segment 3 get."""
    mid = register(env, "p")
    _, segs = playlists(env, mid)
    env.origin.revoke()
    evil = re.sub(r"\?n=\d+", "?n=105", segs[3])
    assert raw_get(env.port, evil).status == 200
    r = raw_get(env.port, segs[3])
    assert r.status == 200 and r.body == env.origin.segments[3]


MAX_VARIANTS = 64      # MR_M3U8_MAX_VARIANTS (common/core/limits.h)
MAX_MSN = 999999999999999 + (64 << 20) // 2     # MR_M3U8_MAX_MSN
JUNK_HINTS = ["", "-1", "-0", "+3", "%203", "3%20", "0x3", "3e0", "3.0", "abc", "%EF%BC%93",
              "99999999999999999999", str(MAX_MSN + 1)]


def key_count(st, pattern):
    out = st.redis_cli("--scan", "--pattern", pattern)
    return len(out.split()) if out else 0


def get_all(st, paths, threads=4):
    """raw_get of every path, a few at a time; the statuses, in order."""
    statuses = [None] * len(paths)

    def run(k):
        for i in range(k, len(paths), threads):
            statuses[i] = raw_get(st.port, paths[i], timeout=30).status

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    return statuses


def test_made_up_hints_add_no_relocation_keys(env):
    """A dead segment asked for 1,000 times with distinct hints that no
    playlist can hold (?v= past MR_M3U8_MAX_VARIANTS, ?n= malformed or past
    the media sequence range): they count as no hint, so one search, one
    reloc: key, and the others are answered from it. Hints in range but
    made up add no key either (the hints are not in the key). The honest
    hints then still find the segment."""
    mid = register(env, "p")
    _, segs = playlists(env, mid)
    env.origin.revoke()
    base = segs[3].split("?")[0]
    pattern = f"mr:reloc:{mid}:*"
    before = int(env.redis_cli("DBSIZE"))
    assert key_count(env, pattern) == 0
    made_up = [f"{base}?n={MAX_MSN + 1 + i}&v={MAX_VARIANTS + i}"
               for i in range(900)]
    made_up += [f"{base}?n={j}&v={j}" for j in JUNK_HINTS]
    made_up += [f"{base}?v={MAX_VARIANTS}&n={j}" for j in JUNK_HINTS]
    made_up += [f"{base}?n={j}" for j in JUNK_HINTS]
    made_up += [f"{base}?v=x{i}&n=-{i}" for i in range(1000 - len(made_up))]
    assert len(set(made_up)) == 1000
    mints = env.origin.mints("p")
    # The first searches (and resolves again, once); the rest, at once,
    # are answered from what it found: nothing.
    assert raw_get(env.port, made_up[0], timeout=30).status == 403
    statuses = get_all(env, made_up[1:])
    assert set(statuses) == {403}, statuses
    assert env.origin.mints("p") == mints + 1
    assert key_count(env, pattern) == 1
    assert int(env.redis_cli("DBSIZE")) - before <= 2
    # In range but made up: each searches for itself, and still one key.
    for n in range(40, 60):
        assert raw_get(env.port, f"{base}?n={n}&v=1").status == 403
    assert key_count(env, pattern) == 1
    # The honest hints find it, by position, in the fresh playlist.
    r = raw_get(env.port, segs[3])
    assert r.status == 200 and r.body == env.origin.segments[3], r
    assert key_count(env, pattern) == 1


def test_made_up_variant_hints_add_few_playlist_keys(env_default):
    """A nested playlist asked for with 1,000 distinct ?v=: the ones no
    master can hold (past MR_M3U8_MAX_VARIANTS, malformed) are served as
    without a hint, from one cached copy; in all, at most one pl: key per
    variant a master may have."""
    env = env_default
    mid = register(env, "p")
    master = env.get(f"/api/media/{mid}/index.m3u8")
    variant = path_of(uris(master.body.decode())[0])
    assert variant.endswith("?v=0")
    base = variant.split("?")[0]
    before = key_count(env, "mr:pl:*")

    def fetches():
        with env.origin.o.lock:
            return sum(1 for s in env.origin.o.seen if s.path.endswith("/v0/index.m3u8"))

    fetched = fetches()
    paths = [f"{base}?v={MAX_VARIANTS + i}" for i in range(900)]
    paths += [f"{base}?v={j}" for j in JUNK_HINTS]
    paths += [f"{base}?v=0{j}" for j in JUNK_HINTS if j]
    paths += [f"{base}?v=y{i}" for i in range(1000 - len(paths))]
    assert len(set(paths)) == 1000
    assert set(get_all(env, paths)) == {200}
    assert key_count(env, "mr:pl:*") - before <= 1
    assert fetches() - fetched <= 1
    # Served as without a hint: the segments carry their position only.
    r = env.get(f"{base}?v={MAX_VARIANTS}")
    segs = uris(r.body.decode())
    assert segs[0].endswith("?n=100"), segs[0]
    assert r.header("X-Cache") == "HIT"
    # In range, each value is its own copy (the hint is in what is served):
    # at most MR_M3U8_MAX_VARIANTS of them, plus the one without.
    get_all(env, [f"{base}?v={v}" for v in range(MAX_VARIANTS)])
    assert key_count(env, "mr:pl:*") - before <= MAX_VARIANTS + 1
    assert uris(env.get(variant).body.decode())[0].endswith("?n=100&v=0")


def test_a_dead_segment_is_not_searched_for_again(env):
    """s99 is listed but 404 with any signature: after the first request,
    the next ones cost no resolution and one upstream request at most."""
    env.origin.dead = True
    try:
        mid = register(env, "q")
        _, segs = playlists(env, mid)
        dead = segs[-1]
        assert raw_get(env.port, dead).status == 404
        mints, seen = env.origin.mints("q"), len(env.origin.o.seen)
        for _ in range(3):
            assert raw_get(env.port, dead).status == 404
        assert env.origin.mints("q") == mints
        assert len(env.origin.o.seen) - seen <= 3
    finally:
        env.origin.dead = False


@pytest.mark.parametrize("kind", ["p", "q"])
def test_crlf_playlists(env, kind):
    env.origin.crlf = True
    try:
        mid = register(env, kind)
        _, segs = playlists(env, mid)
        env.origin.revoke()
        r = raw_get(env.port, segs[2])
        assert r.status == 200 and r.body == env.origin.segments[2], r
    finally:
        env.origin.crlf = False


def test_another_source_is_found_in_its_own_playlist(env):
    """?t= plays another format (more_sources): its dead segment is found in
    that format's fresh playlist, not the main one's."""
    o = env.origin

    def mint(h, seen):
        with o.lock:
            sig = f"f{len(o.minted)}"
            o.minted.append(sig)
            o.minted_kinds.append(("fmt", sig))

        def fmt(v, height):
            return {"format_id": f"hls-{height}", "protocol": "m3u8_native", "ext": "mp4",
                    "vcodec": "avc1", "acodec": "mp4a", "height": height,
                    "url": o.url(f"/p/{sig}/v{v}/index.m3u8")}
        h.answer(200, {"Content-Type": "application/json"},
                 json.dumps({"title": "formats", "formats": [fmt(0, 720), fmt(1, 360)]}))

    def serve_v1(h, seen):
        parts = seen.path.split("/", 3)       # "", p2, SIG, rest
        m = re.fullmatch(r"v1/s(\d+)\.ts", parts[3] if len(parts) == 4 else "")
        if not m or not o.valid(parts[2], True):
            return o.path_signed(h, seen)
        h.answer(200, {"Content-Type": "video/mp2t"}, b"V1-" + o.segments[int(m.group(1))])

    o.minters["fmt"] = mint
    o.o.route("/p/", serve_v1)
    try:
        mid = register(env, "fmt")
        names = [m["name"] for m in env.get(f"/api/media/{mid}/source").json["more_sources"]]
        low = next(n for n in names if "360" in n)
        r = env.get(f"/api/media/{mid}/index.m3u8?t={urllib.parse.quote(low)}")
        assert r.status == 200, r
        segs = [path_of(u) for u in uris(r.body.decode())]
        assert raw_get(env.port, segs[2]).body.startswith(b"V1-")
        o.revoke()
        r = raw_get(env.port, segs[3])
        assert r.status == 200 and r.body == b"V1-" + o.segments[3], r
    finally:
        o.minters.pop("fmt", None)
        o.o.route("/p/", o.path_signed)


def test_file_is_resolved_again_with_nginx_offload(env_offload):
    """stream.offload "nginx": a provider's link is relayed here, not handed
    to nginx, so a dead one is found again."""
    env = env_offload
    mid = register(env, "f")
    r = raw_get(env.port, f"/api/proxy/media/{mid}", {"Range": "bytes=0-99"})
    assert r.status == 206 and r.body == env.origin.mp4[:100], r
    env.origin.revoke()
    r = raw_get(env.port, f"/api/proxy/media/{mid}", {"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == env.origin.mp4[100:200], r


def test_the_variant_hint_is_in_the_playlist_cache_key(env_default):
    env = env_default
    mid = register(env, "p")
    master = env.get(f"/api/media/{mid}/index.m3u8")
    variant = path_of(uris(master.body.decode())[0])
    assert variant.endswith("?v=0")
    assert env.get(variant.replace("?v=0", "?v=1")).status == 200
    segs = uris(env.get(variant).body.decode())
    assert segs[0].endswith("&v=0"), segs[0]


def test_a_young_resolution_is_not_made_again(env_default):
    """A link that fails moments after it was resolved (resolve.again_min_s,
    15 s) does not make the relay ask the provider again, whatever the
    client asks for: the upstream's answer is passed on."""
    env = env_default
    mid = register(env, "p")
    _, segs = playlists(env, mid)
    mints = env.origin.mints("p")
    env.origin.revoke()
    for i in (2, 3, 4):
        assert raw_get(env.port, segs[i]).status == 403
    assert raw_get(env.port, re.sub(r"\?n=\d+", "?n=1", segs[5])).status == 403
    assert env.origin.mints("p") == mints


MPD = """<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT8S"
     minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
 <Period><AdaptationSet mimeType="video/mp4"><Representation id="v" bandwidth="1000"
   codecs="avc1.4d401e" width="160" height="120">
  <SegmentTemplate media="seg-$Number$.m4s" initialization="init.mp4" duration="1" startNumber="1"/>
 </Representation></AdaptationSet></Period></MPD>
"""


def test_made_up_dash_names_cost_no_resolution(env_default):
    """What follows a DASH directory token is the client's: names that are
    not there are the upstream's 404, and no reason to ask the provider."""
    env = env_default
    o = env.origin

    def mint(h, seen):
        with o.lock:
            o.minted.append("d")
            o.minted_kinds.append(("dash", "d"))
        h.answer(200, {"Content-Type": "application/json"}, json.dumps({
            "title": "dash", "formats": [{
                "format_id": "d", "protocol": "http_dash_segments", "vcodec": "avc1",
                "acodec": "mp4a", "height": 120, "manifest_url": o.url("/dash/m.mpd"),
                "url": o.url("/dash/m.mpd")}]}))

    def dash(h, seen):
        if seen.path == "/dash/m.mpd":
            return h.answer(200, {"Content-Type": "application/dash+xml"}, MPD)
        if re.fullmatch(r"/dash/seg-[1-8]\.m4s|/dash/init\.mp4", seen.path):
            return h.answer(200, {"Content-Type": "video/mp4"}, b"x" * 100)
        h.answer(404, {}, b"")

    o.minters["dash"] = mint
    o.o.route("/dash/", dash)
    try:
        mid = register(env, "dash")
        r = env.get(f"/api/media/{mid}/manifest.mpd")
        assert r.status == 200, r
        base = path_of(re.search(r"<BaseURL>([^<]*)</BaseURL>", r.body.decode()).group(1))
        assert raw_get(env.port, base + "seg-1.m4s").status == 200
        mints = o.mints("dash")
        for i in range(5):
            assert raw_get(env.port, base + f"nothing-{i}.m4s").status == 404
        assert o.mints("dash") == mints
    finally:
        o.minters.pop("dash", None)
        o.o.routes.pop("/dash/", None)


def test_a_bad_source_name_is_refused(env):
    mid = register(env, "p")
    for t in ("%0Aevil", "x" * 201):
        r = env.get(f"/api/media/{mid}/index.m3u8?t={t}")
        assert r.status == 400 and r.json["error"]["code"] == "bad_request", r
    r = env.get(f"/api/media/{mid}/index.m3u8?t=nope")
    assert r.status == 404 and "nope" in r.json["error"]["message"], r
