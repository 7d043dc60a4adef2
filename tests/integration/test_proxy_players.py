"""Real players through mediarelay-proxy: ffmpeg reads and seeks MP4 files
(moov first, and moov last, which a player can only reach with Range), in
internal and offload mode, through /api/proxy/media/{id} and a signed /stream."""

import shutil
import subprocess

import pytest

from conftest import make_config
from proxyutil import NginxOrigin, module_stack, path_of, q, sign

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")


def make_mp4(path, faststart):
    """A 12 s H.264 + AAC file made here (testsrc2 + sine)."""
    args = ["ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
            "-c:a", "aac", "-b:a", "64k"]
    if faststart:
        args += ["-movflags", "+faststart"]
    subprocess.run(args + [str(path)], check=True, timeout=120)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("players-origin"))
    make_mp4(o.path("fast.mp4"), faststart=True)
    make_mp4(o.path("slow.mp4"), faststart=False)
    return o


@pytest.fixture(scope="module", params=["off", "nginx"])
def st(request, origin):
    cfg = make_config(
        upstream={"allow_networks": ["127.0.0.1/32"]},
        stream={"offload": request.param},
        media={"fast": {"provider": "direct", "source": {"url": origin.url("/fast.mp4")}},
               "slow": {"provider": "direct", "source": {"url": origin.url("/slow.mp4")}}})
    yield from module_stack(request, cfg, extra_nginx=origin.nginx_conf())


def play(url, seek=None):
    """ffmpeg reads every packet of url (from seek seconds on); its stderr."""
    args = ["ffmpeg", "-v", "error", "-nostdin"]
    if seek is not None:
        args += ["-ss", str(seek)]
    args += ["-i", url, "-map", "0", "-c", "copy", "-f", "null", "-"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr.lower(), r.stderr
    return r.stderr


def duration(url):
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                        "-of", "default=nw=1:nk=1", url],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return float(r.stdout.strip())


@pytest.mark.parametrize("item", ["fast", "slow"])
def test_ffmpeg_plays_and_seeks_media(st, item):
    url = st.url(f"/api/proxy/media/{item}")
    assert abs(duration(url) - 12.0) < 0.5
    play(url)
    play(url, seek=9)


def test_moov_at_end_needs_ranges(st, origin):
    """The moov-last file is only playable with Range requests reaching the origin."""
    before = len(origin.log_lines())
    play(st.url("/api/proxy/media/slow"), seek=6)
    ranges = [l for l in origin.log_lines()[before:] if "/slow.mp4" in l and '"bytes=' in l]
    assert ranges, origin.log_lines()[before:]


def test_ffmpeg_plays_signed_stream_link(st, origin):
    resp = sign(st, origin.url("/fast.mp4"))
    assert resp.status == 200, resp
    link = st.url(path_of(resp.json["url"]))
    play(link, seek=3)
    assert st.get(f"/stream?url={q(origin.url('/fast.mp4'))}").status == 403
