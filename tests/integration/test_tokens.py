"""Relay tokens are opaque (issue 11, docs/security.md): a viewer who reads a
rewritten playlist or MPD learns nothing of the upstream (host, path, query
signatures), the operator's tool reads them, and rotating `secret` with
`previous_secrets` keeps the relay URLs and /stream links made before."""

import json
import re
import time

import pytest

from conftest import (BUILDDIR, SECRET, Stack, _finish, assert_json_error, make_config,
                      run_binary)
from proxyutil import NginxOrigin, path_of, sign
from test_hls_play import make_hls
import tokens

TOOL = BUILDDIR / "tools" / "mediarelay-sign"
NEW_SECRET = "fedcba9876543210" * 4
SIG = "SECRETSIG-4711"           # a CDN signature in the upstream URLs


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    o = NginxOrigin(tmp_path_factory.mktemp("tok-origin"))
    www = o.path("")
    make_hls(www, "vod")
    # every URI absolute, with a signed query, as a CDN would hand them out
    text = (www / "vod" / "index.m3u8").read_text()
    text = re.sub(r"^(seg\d+\.ts)$", lambda m: o.url(f"/vod/{m.group(1)}?sig={SIG}"),
                  text, flags=re.M)
    (www / "vod" / "signed.m3u8").write_text(text)
    (www / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n"
        f"{o.url('/vod/signed.m3u8?sig=' + SIG)}\n")
    (www / "dash").mkdir()
    (www / "dash" / "manifest.mpd").write_text(
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'mediaPresentationDuration="PT8S" minBufferTime="PT2S" '
        'profiles="urn:mpeg:dash:profile:isoff-live:2011"><Period><AdaptationSet '
        'mimeType="video/mp4"><SegmentTemplate media="seg-$Number$.m4s?sig=' + SIG + '" '
        'initialization="init.mp4?sig=' + SIG + '" startNumber="1" duration="2" timescale="1"/>'
        '<Representation id="v" bandwidth="100000"/></AdaptationSet></Period></MPD>\n')
    (www / "dash" / "init.mp4").write_bytes(b"init-bytes")
    (www / "dash" / "seg-1.m4s").write_bytes(b"segment-1")
    return o


def config(origin, secret=SECRET, previous=None):
    cfg = make_config(
        secret=secret,
        upstream={"allow_networks": ["127.0.0.1/32"]},
        stream={"sign_max_ttl_s": 3600},
        media={"master": {"provider": "direct", "source": {"url": origin.url("/master.m3u8")}},
               "dash": {"provider": "direct",
                        "source": {"url": origin.url("/dash/manifest.mpd?sig=" + SIG)}}})
    if previous is not None:
        cfg["previous_secrets"] = previous
    return cfg


def start(origin, cfg, check=True):
    s = Stack(cfg, extra_nginx=origin.nginx_conf())
    try:
        s.start(check=check)
    except Exception:
        _finish(s, True)
        raise
    return s


@pytest.fixture(scope="module")
def stack(origin):
    s = start(origin, config(origin))
    yield s
    _finish(s, False)


def relay_uris(text):
    return re.findall(r"/api/(?:seg|m3u8)/[^\s\"'<]+", text)


def test_a_viewer_learns_nothing_of_the_upstream(stack, origin):
    master = stack.get("/api/media/master/index.m3u8").body.decode()
    variant_uri = [l for l in master.splitlines() if l.startswith("/api/m3u8/")][0]
    variant = stack.get(variant_uri).body.decode()
    mpd = stack.get("/api/media/dash/manifest.mpd").body.decode()
    # (a DASH template's name after its directory is the player's to fill
    # in: that much of an MPD stays readable, docs/security.md)
    secrets = [SIG, "sig=", origin.host, "127.0.0.1", "vod/", "dash/", "signed", "manifest"]
    for text in (master, variant, mpd):
        for s in secrets:
            assert s not in text, (s, text)
    assert "seg00" not in variant
    # the tokens say it all to the secret's holder
    kind, scope, url = tokens.url_of(variant_uri)
    assert (kind, scope, url) == ("p", "m:master", origin.url("/vod/signed.m3u8?sig=" + SIG))
    segs = relay_uris(variant)
    assert tokens.url_of(segs[0])[2] == origin.url(f"/vod/seg00.ts?sig={SIG}")
    dash_uris = relay_uris(mpd)
    assert dash_uris and all("/api/seg/" in u for u in dash_uris), mpd
    # a segment under the MPD's token: the query is the token's
    seg1 = dash_uris[0].split("/api/seg/", 1)[1].split("/", 1)[0]
    before = len(origin.log_lines())
    r = stack.get(f"/api/seg/{seg1}/init.mp4?sig=forged&x=1")
    assert r.status == 200 and r.body == b"init-bytes", r
    fetched = origin.log_lines()[before:]
    assert any(f"/dash/init.mp4?sig={SIG} " in l for l in fetched), fetched
    assert not any("forged" in l for l in fetched), fetched


def test_client_query_costs_one_fetch(stack, origin):
    """2,000 requests for one DASH segment with distinct ?x=: one origin fetch,
    one Redis object."""
    mpd = stack.get("/api/media/dash/manifest.mpd").body.decode()
    tok = relay_uris(mpd)[0].split("/api/seg/", 1)[1].split("/", 1)[0]
    before = len(origin.log_lines())
    keys_before = set(stack.redis_cli("KEYS", "*").split())
    for i in range(2000):
        r = stack.get(f"/api/seg/{tok}/seg-1.m4s?x={i}")
        assert r.status == 200 and r.body == b"segment-1", r
    fetched = [l for l in origin.log_lines()[before:] if "/dash/seg-1.m4s" in l]
    assert len(fetched) == 1, fetched
    new = {k.split(":")[2] for k in set(stack.redis_cli("KEYS", "*").split()) - keys_before
           if ":seg:" in k}
    assert len(new) <= 1, new           # one object (its body and its meta)


def test_tool_opens_relay_urls(stack, origin):
    variant_uri = [l for l in stack.get("/api/media/master/index.m3u8").body.decode()
                   .splitlines() if l.startswith("/api/m3u8/")][0]
    r = run_binary([TOOL, "token", "--config", stack.dir / "mediarelay.json",
                    stack.url(variant_uri)])
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["kind"] == "playlist" and got["scope"] == "m:master", got
    assert got["url"] == origin.url("/vod/signed.m3u8?sig=" + SIG), got
    assert got["expired"] is False and got["expire_at"] > time.time(), got
    # a token of another secret, and garbage
    other = tokens.mint(b"pm:master\nhttp://x.example/a.m3u8", int(time.time()) + 60,
                        secret="z" * 40)
    for arg in (other, "garbage", ""):
        r = run_binary([TOOL, "token", "--config", stack.dir / "mediarelay.json", arg])
        assert r.returncode != 0, (arg, r.stdout)


def test_rotation(tmp_path):
    """Old secret -> new secret with the old one as previous: relay URLs and
    /stream links made before still work, new ones are made with the new
    secret; without the old one in previous_secrets, they are refused."""
    o = NginxOrigin(tmp_path, files={
        "p.m3u8": b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ns.ts\n#EXTINF:2,\nt.ts\n"
                  b"#EXT-X-ENDLIST\n",
        "s.ts": b"\x47" * 188, "t.ts": b"\x47" * 376, "f.mp4": b"file"})
    cfg = make_config(upstream={"allow_networks": ["127.0.0.1/32"]},
                      stream={"sign_max_ttl_s": 3600},
                      media={"m": {"provider": "direct", "source": {"url": o.url("/p.m3u8")}}})
    s = start(o, cfg)
    failed = True
    try:
        old_seg, old_seg2 = relay_uris(s.get("/api/media/m/index.m3u8").body.decode())
        link = sign(s, o.url("/f.mp4"), ttl_s=600).json["url"]
        assert s.get(old_seg).status == 200
        assert s.get(path_of(link)).status == 200
        # rotate
        s.stop()
        s.config = dict(cfg, secret=NEW_SECRET, previous_secrets=[SECRET])
        s.start()
        assert s.get(old_seg).status == 200
        assert s.get(path_of(link)).status == 200
        new_seg = relay_uris(s.get("/api/media/m/index.m3u8").body.decode())[0]
        assert new_seg != old_seg
        with pytest.raises(ValueError):
            tokens.data_of(new_seg)                         # not the old secret's
        kid = tokens.unb64(new_seg.split("/api/seg/")[1].split(".")[0])[1]
        assert kid == tokens.keys(NEW_SECRET)[2]
        assert s.get(new_seg).status == 200
        # the old secret dropped: its URLs are refused (one not fetched yet:
        # nginx's edge cache keeps what it has until the token's expiry)
        s.stop()
        s.config = dict(cfg, secret=NEW_SECRET)
        s.start()
        assert_json_error(s.get(old_seg2), 403, "forbidden")
        assert_json_error(s.get(path_of(link)), 403, "forbidden")
        assert s.get(new_seg).status == 200
        failed = False
    finally:
        _finish(s, failed)


@pytest.mark.parametrize("previous, why", [
    (["short"], "previous_secrets"),
    ([SECRET] * 16, "previous_secrets"),
    (7, "previous_secrets"),
])
def test_bad_previous_secrets_refuse_to_start(origin, previous, why):
    s = Stack(config(origin, previous=previous))
    s.start(check=False)
    try:
        assert s.last_run.returncode != 0
        assert why in s.last_run.stdout + s.last_run.stderr + s.logs()
    finally:
        _finish(s, False)
