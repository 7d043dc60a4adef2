"""Many hosts (issue 13): an executable on TCP (--listen HOST:PORT), two
instances of mediarelay-segment behind one nginx upstream, as two hosts
would run them.  Both serve; a segment one filled is a cache hit on the
other (they share Redis and the secret); and SIGTERM to one while it serves
a segment loses nothing: that segment finishes, and the requests made while
it drains go to the other (its listening socket is shut at once, so nginx
sees a refused connect and moves on)."""

import re
import signal
import subprocess
import threading

import pytest

from conftest import (_read_reports, binary, fail_on_sanitizer_reports, free_port, make_config,
                      sanitizer_env, wait_until)
from proxyutil import ScriptedOrigin, held
from test_hls_play import relay_lines

SEG = b"G" * 188 * 100
PLAYLIST = ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
            + "".join(f"#EXTINF:2,\nseg{i}.ts\n" for i in range(8)) + "#EXT-X-ENDLIST\n")


@pytest.fixture
def origin():
    o = ScriptedOrigin()
    o.release = threading.Event()
    o.route("/v/index.m3u8", lambda h, seen: h.answer(
        200, {"Content-Type": "application/vnd.apple.mpegurl"}, PLAYLIST))
    o.route("/v/seg7.ts", lambda h, seen: held(h, seen, SEG[:188], 100, 1, o.release))
    o.route("/v/", lambda h, seen: h.answer(200, {"Content-Type": "video/mp2t"}, SEG))
    yield o
    o.release.set()
    o.close()


class Instance:
    """mediarelay-segment --listen 127.0.0.1:PORT with the stack's config."""

    def __init__(self, st, name):
        self.port = free_port()
        self.log_path = st.dir / f"{name}.log"
        self.san_dir = st.dir / f"san-{name}"
        self.san_dir.mkdir()
        self.proc = subprocess.Popen(
            [str(binary("segment")), "--listen", f"127.0.0.1:{self.port}",
             "--config", str(st.dir / "mediarelay.json")],
            stdin=subprocess.DEVNULL, stdout=open(self.log_path, "ab"),
            stderr=subprocess.STDOUT, env=sanitizer_env(self.san_dir))
        assert wait_until(lambda: "serving with" in self.log(), timeout=10), self.log()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def served(self, path):
        return len(re.findall(rf"GET {re.escape(path)} 200 ", self.log()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=40)


def route_segment_to(st, instances):
    """Point contrib/nginx's upstream mediarelay_segment at the instances and
    reload nginx, as a site with segment hosts would write it."""
    conf = st.dir / "nginx-mediarelay.conf"
    text = conf.read_text()
    servers = "".join(f"    server 127.0.0.1:{i.port} max_fails=1 fail_timeout=10s;\n"
                      for i in instances)
    new = re.sub(r"upstream mediarelay_segment \{\n.*?\}",
                 "upstream mediarelay_segment {\n" + servers + "}", text, flags=re.S)
    assert new != text
    conf.write_text(new)
    subprocess.run(["nginx", "-p", f"{st.dir}/", "-c", str(st.dir / "nginx.conf"), "-s", "reload"],
                   check=True, capture_output=True, timeout=10)
    # The new workers take over when they are ready: until the instances see
    # requests, the old ones still serve.
    assert wait_until(lambda: st.get("/api/health/segment").status == 200 and
                      all(i.served("/api/health/segment") for i in instances), timeout=10), \
        "nginx never sent /api/health/segment to both instances"


def test_two_segment_hosts_share_the_work(stack, origin):
    # No edge cache: every request reaches an instance, so the test sees them.
    st = stack(make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                           hls={"edge_cache_s": 0},
                           media={"v": {"provider": "direct",
                                        "source": {"url": origin.url("/v/index.m3u8")}}}))
    a, b = Instance(st, "segment-a"), Instance(st, "segment-b")
    try:
        route_segment_to(st, [a, b])
        playlist = st.get("/api/media/v/index.m3u8")
        assert playlist.status == 200, playlist
        segs = relay_lines(playlist.body.decode())
        paths = [s.split("?")[0] for s in segs]

        # Both serve, and a segment filled by one is a hit on the other.
        for i in range(2, 7):
            first = st.get(segs[i])
            assert first.status == 200 and first.body == SEG, first
            second = st.get(segs[i])
            assert second.status == 200 and second.body == SEG, second
            # From the cache: a HIT, or (the fill's end not yet recorded) the
            # fill itself (WAIT); either way not a second origin fetch.
            assert second.header("X-Cache") in ("HIT", "WAIT"), second
            assert len(origin.requests_to(f"/v/seg{i}.ts")) == 1
        assert wait_until(lambda: sum(a.served(p) for p in paths) >= 2 and
                          sum(b.served(p) for p in paths) >= 2, timeout=5), (a.log(), b.log())
        crossed = [p for p in paths[2:7] if a.served(p) == 1 and b.served(p) == 1]
        assert crossed, "no segment was served by both instances"

        # SIGTERM to the instance serving a segment mid-way.
        result = {}

        def slow():
            result["resp"] = st.get(segs[7], timeout=30)

        t = threading.Thread(target=slow)
        t.start()
        assert wait_until(lambda: origin.requests_to("/v/seg7.ts"), timeout=10)
        busy = a if instance_with_upstream(a, origin) else b
        idle = b if busy is a else a
        assert instance_with_upstream(busy, origin), "no instance holds the segment's upstream"
        busy.proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: "received: finishing requests in flight" in busy.log(),
                          timeout=10), busy.log()
        # While it drains, every request goes to the other one.
        for i in (0, 1, 0, 1):
            r = st.get(segs[i])
            assert r.status == 200 and r.body == SEG, r
        assert t.is_alive(), "the held segment ended before its origin sent it"
        origin.release.set()
        t.join(30)
        resp = result["resp"]
        assert resp.status == 200 and resp.body == SEG[:188] * 100, resp
        assert busy.proc.wait(timeout=20) == 0, busy.log()
        assert "drained, exiting" in busy.log(), busy.log()
        assert wait_until(lambda: idle.served(paths[0]) + idle.served(paths[1]) == 4,
                          timeout=5), idle.log()
        assert busy.served(paths[0]) + busy.served(paths[1]) == 0, busy.log()
        # The survivor goes on alone.
        r = st.get(segs[3])
        assert r.status == 200 and r.body == SEG, r
    finally:
        origin.release.set()
        codes = [i.stop() for i in (a, b)]
        reports = []
        for i in (a, b):
            reports += _read_reports(i.san_dir, [i.log_path])
        fail_on_sanitizer_reports(reports, "the TCP instances of mediarelay-segment")
    assert codes == [0, 0], codes


def instance_with_upstream(inst, origin):
    """Whether the instance's process holds a TCP connection to the origin."""
    out = subprocess.run(["ss", "-Htnp", "dst", f"127.0.0.1:{origin.port}"],
                         capture_output=True, text=True, check=True).stdout
    return f"pid={inst.proc.pid}," in out
