"""Sessions and rooms: a media item with a "room" plays only for a request
whose session cookie names a user in room:{room}:members — on every path to
it, the relay URLs made for it included (nested playlists, HLS and DASH
segments), and never out of the edge cache for anyone else.  The session
matrix: no cookie, an unknown sid -> 401; a user not in the room -> 403; a
member -> 200/206; a media item without a room needs nothing; Redis down ->
503.  And mediarelay-sign session writes a session that then works.

Playlists, MPDs and segments are written here by hand (no ffmpeg needed):
what is checked is who gets an answer, not what plays."""

import json
import re
import urllib.parse

import pytest

from conftest import (ADMIN_TOKEN, BUILDDIR, KEY_PREFIX, Origin, Stack, _finish,
                      assert_json_error, make_config, run_binary)
from proxyutil import module_stack

SEG0 = b"\x47" + bytes(range(256)) * 40           # a TS-looking segment
SEG1 = b"\x47" + bytes(reversed(range(256))) * 40
INIT = b"\x00\x00\x00\x18ftypiso6" + b"\x00" * 12
CHUNK = b"\x00\x00\x00\x10moof" + b"\x11" * 8 + b"dash-chunk" * 50
FILE = b"\x00\x00\x00\x20ftypisom" + b"movie-bytes-" * 400

MASTER = ("#EXTM3U\n#EXT-X-VERSION:3\n"
          "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x180\nv/index.m3u8\n")
VARIANT = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
           "#EXTINF:2.0,\nseg0.ts\n#EXTINF:2.0,\nseg1.ts\n#EXT-X-ENDLIST\n")
MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011"
     type="static" mediaPresentationDuration="PT4S" minBufferTime="PT2S">
  <Location>manifest.mpd</Location>
  <Period id="0" start="PT0S">
    <AdaptationSet mimeType="video/mp4" segmentAlignment="true">
      <SegmentTemplate timescale="1000" duration="2000" startNumber="1"
                       initialization="init.mp4" media="chunk-$Number$.m4s"/>
      <Representation id="v" codecs="avc1.42c00c" bandwidth="500000" width="320" height="180"/>
    </AdaptationSet>
  </Period>
</MPD>
"""

ROOM = "r1"
# sid -> user; who is in ROOM
SESSIONS = {"sid-alice": "alice", "sid-bob": "bob"}
MEMBERS = ["alice", "carol"]
MEMBER = {"Cookie": "session=sid-alice"}
CASES = [  # (what, headers, status, code)
    ("no cookie", {}, 401, "unauthorized"),
    ("another cookie", {"Cookie": "other=sid-alice"}, 401, "unauthorized"),
    ("unknown sid", {"Cookie": "session=sid-nobody"}, 401, "unauthorized"),
    ("not a member", {"Cookie": "session=sid-bob"}, 403, "forbidden"),
]


def serve_files(o):
    o.add("/hls/master.m3u8", MASTER, content_type="application/vnd.apple.mpegurl")
    o.add("/hls/v/index.m3u8", VARIANT, content_type="application/vnd.apple.mpegurl")
    o.add("/hls/v/seg0.ts", SEG0, content_type="video/mp2t")
    o.add("/hls/v/seg1.ts", SEG1, content_type="video/mp2t")
    o.add("/dash/manifest.mpd", MPD, content_type="application/dash+xml")
    o.add("/dash/init.mp4", INIT, content_type="video/mp4")
    o.add("/dash/chunk-1.m4s", CHUNK, content_type="video/iso.segment")
    o.add("/file.mp4", FILE, content_type="video/mp4",
          headers={"Cache-Control": "public, max-age=3600"})


def media(o, room=ROOM):
    extra = {"room": room} if room else {}
    return {"film": {"provider": "direct", "source": {"url": o.url("/hls/master.m3u8")}, **extra},
            "dfilm": {"provider": "direct", "source": {"url": o.url("/dash/manifest.mpd")},
                      **extra},
            "mfile": {"provider": "direct", "source": {"url": o.url("/file.mp4")}, **extra}}


def write_sessions(st, prefix=KEY_PREFIX, sessions=SESSIONS, members=MEMBERS, room=ROOM):
    for sid, user in sessions.items():
        st.redis_cli("SET", f"{prefix}session:{sid}", user)
    st.redis_cli("SADD", f"{prefix}room:{room}:members", *members)


@pytest.fixture(scope="module")
def origin():
    o = Origin()
    serve_files(o)
    yield o
    o.close()


@pytest.fixture(scope="module")
def st(request, origin):
    # The open twins ("open-*") are the same sources without a room.
    items = media(origin)
    items.update({f"open-{k}": v for k, v in media(origin, room=None).items()})
    # hls.edge_cache_s is left at its default: the edge cache is on.
    cfg = make_config(upstream={"allow_networks": ["127.0.0.1/32"]}, media=items)
    gen = module_stack(request, cfg)
    s = next(gen)
    write_sessions(s)
    yield s
    next(gen, None)


def relay_lines(body):
    return [l for l in body.decode().splitlines() if l and not l.startswith("#")]


def path_of(url):
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def tag(text, name):
    m = re.search(rf"<{name}[^>]*>([^<]*)</{name}>", text)
    assert m, (name, text)
    return path_of(m.group(1))


def paths_for(st, item="film", ditem="dfilm", fitem="mfile", headers=MEMBER):
    """Every path to the three items, the relay URLs as a member's player gets
    them from the rewritten manifests: {what: path}."""
    out = {"item": f"/api/media/{item}",
           "source": f"/api/media/{item}/source",
           "playlist": f"/api/media/{item}/index.m3u8",
           "mpd": f"/api/media/{ditem}/manifest.mpd",
           "proxy": f"/api/proxy/media/{fitem}"}
    master = st.get(out["playlist"], headers=headers)
    assert master.status == 200, master
    out["variant"] = relay_lines(master.body)[0]
    variant = st.get(out["variant"], headers=headers)
    assert variant.status == 200, variant
    segs = relay_lines(variant.body)
    assert len(segs) == 2 and all(s.startswith("/api/seg/") for s in segs), segs
    out["segment"] = segs[0]
    mpd = st.get(out["mpd"], headers=headers)
    assert mpd.status == 200, mpd
    text = mpd.body.decode()
    base = tag(text, "BaseURL")
    assert base.startswith("/api/seg/") and base.endswith("/"), base
    out["dash-init"] = base + "init.mp4"
    out["dash-segment"] = base + "chunk-1.m4s"
    out["nested-mpd"] = tag(text, "Location")
    assert out["nested-mpd"].startswith("/api/m3u8/") and out["nested-mpd"].endswith(".mpd")
    return out


BODIES = {"segment": SEG0, "dash-init": INIT, "dash-segment": CHUNK, "proxy": FILE}


def test_session_matrix(st):
    paths = paths_for(st)
    for what, path in paths.items():
        ok = st.get(path, headers=MEMBER)
        assert ok.status == 200, (what, ok)
        if what in BODIES:
            assert ok.body == BODIES[what], what
        for case, headers, status, code in CASES:
            r = st.get(path, headers=headers)
            assert r.status == status, (what, case, r)
            assert_json_error(r, status, code)
            assert r.header("Cache-Control") == "no-store", (what, case, r)
    # A range, for a member: 206 on the file, a segment and a DASH segment.
    for what in ("proxy", "segment", "dash-segment"):
        r = st.get(paths[what], headers={"Range": "bytes=1-100", **MEMBER})
        assert r.status == 206 and r.body == BODIES[what][1:101], (what, r)
        assert_json_error(st.get(paths[what], headers={"Range": "bytes=1-100"}),
                          401, "unauthorized")
    # HEAD is checked like GET (no body to tell: the status says it).
    for what in ("segment", "dash-segment", "proxy"):
        assert st.request("HEAD", paths[what]).status == 401, what
        assert st.request("HEAD", paths[what], headers=MEMBER).status == 200, what


def test_the_room_is_the_items_not_the_token(st):
    """Tokens minted for a room's item carry its scope: a member of another
    room, or a cookie with a valid session for nobody in it, gets nothing."""
    st.redis_cli("SET", f"{KEY_PREFIX}session:sid-dora", "dora")
    st.redis_cli("SADD", f"{KEY_PREFIX}room:r2:members", "dora")
    paths = paths_for(st)
    for what, path in paths.items():
        assert_json_error(st.get(path, headers={"Cookie": "session=sid-dora"}), 403, "forbidden")
    # The same session, once dora joins, plays: membership is read each time.
    st.redis_cli("SADD", f"{KEY_PREFIX}room:{ROOM}:members", "dora")
    try:
        for what, path in paths.items():
            assert st.get(path, headers={"Cookie": "session=sid-dora"}).status == 200, what
        # And once she leaves, no longer (nothing kept her answer).
        st.redis_cli("SREM", f"{KEY_PREFIX}room:{ROOM}:members", "dora")
        for what, path in paths.items():
            assert st.get(path, headers={"Cookie": "session=sid-dora"}).status == 403, what
    finally:
        st.redis_cli("SREM", f"{KEY_PREFIX}room:{ROOM}:members", "dora")


def test_open_media_need_nothing(st):
    paths = paths_for(st, "open-film", "open-dfilm", "open-mfile", headers={})
    for what, path in paths.items():
        for _case, headers, _status, _code in CASES:
            r = st.get(path, headers=headers)
            assert r.status == 200, (what, r)
            if what in BODIES:
                assert r.body == BODIES[what], what


def test_room_segments_never_come_from_the_edge_cache(st):
    """contrib/nginx keeps whole segments and serves them itself; a room's
    segments must each reach the relay's check, so the edge never keeps them
    (X-Accel-Expires: 0), and their answers say Cache-Control: private."""
    room = paths_for(st)
    open_ = paths_for(st, "open-film", "open-dfilm", "open-mfile", headers={})
    for what in ("segment", "dash-segment", "dash-init"):
        # The open twin: kept at the edge, then a hit (the edge is on here).
        st.get(open_[what])
        hit = st.get(open_[what])
        assert hit.status == 200 and hit.header("X-Cache-Edge") == "HIT", (what, hit)
        # The room's: a member's answers are private and never an edge hit...
        for _ in range(3):
            r = st.get(room[what], headers=MEMBER)
            assert r.status == 200 and r.body == BODIES[what], (what, r)
            assert r.header("X-Cache-Edge") != "HIT", (what, r)
            assert r.header("Cache-Control") == "private", (what, r)
        # ... so right after them, the others are still refused.
        for case, headers, status, code in CASES:
            assert_json_error(st.get(room[what], headers=headers), status, code)
    # The file's upstream says "public, max-age=3600": not for a room's item.
    r = st.get(room["proxy"], headers=MEMBER)
    assert r.status == 200 and r.header("Cache-Control") == "private", r
    r = st.get(open_["proxy"])
    assert r.status == 200 and r.header("Cache-Control") == "public, max-age=3600", r


def test_registered_media_and_admin(st, origin):
    """A media item registered through the API with a room is gated the same;
    the admin token deletes it without a session of its own."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = st.request("POST", "/api/media", headers=admin,
                   body={"id": "reg1", "provider": "direct", "room": ROOM,
                         "source": {"url": origin.url("/hls/master.m3u8")}})
    assert r.status == 201 and r.json["room"] == ROOM, r
    assert_json_error(st.get("/api/media/reg1"), 401, "unauthorized")
    assert st.get("/api/media/reg1", headers=MEMBER).status == 200
    master = st.get("/api/media/reg1/index.m3u8", headers=MEMBER)
    variant = relay_lines(master.body)[0]
    seg = relay_lines(st.get(variant, headers=MEMBER).body)[0]
    assert st.get(seg, headers=MEMBER).body == SEG0
    assert_json_error(st.get(seg, headers={"Cookie": "session=sid-bob"}), 403, "forbidden")
    assert_json_error(st.get(variant), 401, "unauthorized")
    # Deleting is the admin's; no session is asked of it.
    assert_json_error(st.request("DELETE", "/api/media/reg1", headers=MEMBER), 401,
                      "unauthorized")
    r = st.request("DELETE", "/api/media/reg1", headers=admin)
    assert r.status in (200, 204), r
    assert_json_error(st.get("/api/media/reg1", headers=MEMBER), 404, "not_found")
    assert_json_error(st.get(seg, headers=MEMBER), 404, "not_found")


# --- the operator tool ---------------------------------------------------------------

TOOL = BUILDDIR / "tools" / "mediarelay-sign"


def sign_session(conf, *args):
    return run_binary([TOOL, "session", "--config", conf, *args])


def test_tool_session(st):
    conf = st.dir / "mediarelay.json"
    r = sign_session(conf, "--user", "carol", "--room", ROOM)
    assert r.returncode == 0, r.stderr
    cookie = r.stdout.strip()
    name, sid = cookie.split("=", 1)
    assert name == "session" and re.fullmatch(r"[0-9a-f]{32}", sid), cookie
    assert st.redis_cli("GET", f"{KEY_PREFIX}session:{sid}") == "carol"
    ttl = int(st.redis_cli("TTL", f"{KEY_PREFIX}session:{sid}"))
    assert 0 < ttl <= 86400
    paths = paths_for(st, headers={"Cookie": cookie})
    for what, path in paths.items():
        assert st.get(path, headers={"Cookie": cookie}).status == 200, what

    # --sid, --ttl 0 (no expiry), more than one room; a new user joins them.
    r = sign_session(conf, "--user", "erin", "--room", "r9", "--room", ROOM,
                     "--sid", "erin-test-1", "--ttl", "0")
    assert r.returncode == 0 and r.stdout == "session=erin-test-1\n", r
    assert st.redis_cli("TTL", f"{KEY_PREFIX}session:erin-test-1") == "-1"
    assert st.redis_cli("SISMEMBER", f"{KEY_PREFIX}room:r9:members", "erin") == "1"
    assert st.get(paths["segment"], headers={"Cookie": "session=erin-test-1"}).status == 200
    # A session for a room that is not the item's: a 403, as for any outsider.
    r = sign_session(conf, "--user", "frank", "--room", "r9")
    assert r.returncode == 0, r.stderr
    assert_json_error(st.get(paths["segment"], headers={"Cookie": r.stdout.strip()}), 403,
                      "forbidden")


@pytest.mark.parametrize("args", [
    [],                                              # no --user, no --room
    ["--user", "u"],                                 # no --room
    ["--room", "r"],                                 # no --user
    ["--user", "u", "--room", "r", "--sid", "a b"],  # not a cookie value
    ["--user", "u", "--room", "r", "--sid", "a;b"],
    ["--user", "u", "--room", "r", "--sid", ""],
    ["--user", "", "--room", "r"],
    ["--user", "u\x01", "--room", "r"],
    ["--user", "u", "--room", "r", "--ttl", "-1"],
    ["--user", "u", "--room", "r", "--bogus"],
])
def test_tool_session_usage(tmp_path, args):
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps(make_config()))
    r = sign_session(conf, *args)
    assert r.returncode == 2 and r.stderr and not r.stdout, r


def test_tool_session_needs_redis(tmp_path):
    none = tmp_path / "none.json"
    none.write_text(json.dumps(make_config(redis="")))
    r = sign_session(none, "--user", "u", "--room", "r")
    assert r.returncode == 1 and "redis" in r.stderr.lower() and not r.stdout, r
    gone = tmp_path / "gone.json"
    gone.write_text(json.dumps(make_config(redis=f"unix:{tmp_path}/nothing.sock")))
    r = sign_session(gone, "--user", "u", "--room", "r")
    assert r.returncode == 1 and "redis" in r.stderr.lower() and not r.stdout, r
    h = run_binary([TOOL, "--help"])
    assert h.returncode == 0 and "session --user USER --room ROOM" in h.stdout


# --- the configuration's names, and Redis down ---------------------------------------

def test_conf_names_and_redis_down(stack, origin):
    """auth.cookie and key_prefix are the configuration's, for the relay and the
    tool alike; with Redis down a room cannot be checked: 503, whoever asks,
    while media without a room play on."""
    items = media(origin)
    items.update({f"open-{k}": v for k, v in media(origin, room=None).items()})
    st = stack(make_config(upstream={"allow_networks": ["127.0.0.1/32"]}, media=items,
                           key_prefix="app7:", auth={"cookie": "mr_sid"}))
    r = sign_session(st.dir / "mediarelay.json", "--user", "gina", "--room", ROOM)
    assert r.returncode == 0 and r.stdout.startswith("mr_sid="), r
    cookie = {"Cookie": r.stdout.strip()}
    sid = r.stdout.strip().split("=", 1)[1]
    assert st.redis_cli("GET", f"app7:session:{sid}") == "gina"
    assert st.redis_cli("EXISTS", f"mr:session:{sid}") == "0"
    paths = paths_for(st, headers=cookie)
    open_ = paths_for(st, "open-film", "open-dfilm", "open-mfile", headers={})
    for what, path in paths.items():
        assert st.get(path, headers=cookie).status == 200, what
        # The default cookie name means nothing here.
        assert_json_error(st.get(path, headers={"Cookie": f"session={sid}"}), 401,
                          "unauthorized")

    st.kill_redis()
    for what, path in paths.items():
        for headers in (cookie, {"Cookie": "mr_sid=unknown"}):
            assert_json_error(st.get(path, headers=headers), 503, "unavailable")
        # Without a cookie there is nothing to check: 401 as ever.
        assert_json_error(st.get(path), 401, "unauthorized")
    for what, path in open_.items():
        assert st.get(path).status == 200, (what, path)
    r = sign_session(st.dir / "mediarelay.json", "--user", "gina", "--room", ROOM)
    assert r.returncode == 1 and not r.stdout, r
