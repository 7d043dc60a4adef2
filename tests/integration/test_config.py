"""Bad configs are refused at start: exit 1 and a message naming the key."""

import json
import re
import signal
import socket
import subprocess

import pytest

from conftest import (EXES, MINIMAL_CONFIG, SECRET, _read_reports, binary,
                      fail_on_sanitizer_reports, make_config, processes_mentioning, run_binary,
                      sanitizer_env, wait_until)


def run_exe(tmp_path, config, name="resolve"):
    path = tmp_path / "bad.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
    r = run_binary([binary(name), "--config", path])
    return r, path


@pytest.mark.parametrize("name", EXES)
def test_unknown_key(tmp_path, name):
    r, _ = run_exe(tmp_path, {**MINIMAL_CONFIG, "upstrem": {}}, name)
    assert r.returncode == 1, r
    assert "upstrem" in r.stderr, r


def test_unknown_nested_key(tmp_path):
    r, _ = run_exe(tmp_path, make_config(store={"timeout_msec": 5}))
    assert r.returncode == 1, r
    assert "store.timeout_msec" in r.stderr, r


@pytest.mark.parametrize("override,key", [
    ({"upstream": {"connect_timeout_ms": "5"}}, "upstream.connect_timeout_ms"),
    ({"store": {"timeout_ms": 1.5}}, "store.timeout_ms"),
    ({"upstream": {"allow_private_networks": "yes"}}, "upstream.allow_private_networks"),
    ({"log": {"level": 3}}, "log.level"),
    ({"media": {"intro": {"provider": "direct", "source": "http://x/"}}}, "media.intro.source"),
])
def test_wrong_type(tmp_path, override, key):
    r, _ = run_exe(tmp_path, make_config(**override))
    assert r.returncode == 1, r
    assert key in r.stderr, r


def test_bad_enum_value(tmp_path):
    r, _ = run_exe(tmp_path, make_config(log={"level": "chatty"}))
    assert r.returncode == 1, r
    assert "log.level" in r.stderr, r


def test_invalid_json(tmp_path):
    text = '{\n  "secret": "%s",\n  "admin_token": "x",,\n  "upstream": {}\n}\n' % SECRET
    r, path = run_exe(tmp_path, text)
    assert r.returncode == 1, r
    assert str(path) in r.stderr or path.name in r.stderr, r
    rest = r.stderr.replace(str(path), "")
    assert re.search(r"(?i)(line\D{0,3}3\b|:3\b)", rest), f"no line number 3 in: {r.stderr!r}"


@pytest.mark.parametrize("secret", [None, "", "abcd", "0123456789abcdef"])
def test_missing_or_short_secret(tmp_path, secret):
    conf = {k: v for k, v in MINIMAL_CONFIG.items() if k != "secret"}
    if secret is not None:
        conf["secret"] = secret
    r, _ = run_exe(tmp_path, conf)
    assert r.returncode == 1, r
    assert "secret" in r.stderr, r


@pytest.mark.parametrize("key,value", [("admin_token", "test-admin-token"),
                                       ("admin_token", "x" * 31),
                                       ("metrics_token", "prometheus"),
                                       ("metrics_token", "x" * 31)])
@pytest.mark.parametrize("name", ["resolve", "proxy"])
def test_short_bearer_token(tmp_path, key, value, name):
    r, _ = run_exe(tmp_path, make_config(**{key: value}), name)
    assert r.returncode == 1, r
    assert f"{key}: must be at least 32 characters" in r.stderr, r


@pytest.mark.parametrize("override", [{"admin_token": ""}, {"metrics_token": "m" * 32},
                                      {"admin_token": "", "metrics_token": "m" * 40}])
def test_empty_or_long_enough_tokens_pass_check(tmp_path, override):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(make_config(**override)))
    r = run_binary([binary("resolve"), "--config", str(path), "--check"])
    assert r.returncode == 0, r


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.json"
    r = run_binary([binary("proxy"), "--config", missing])
    assert r.returncode == 1, r
    assert str(missing) in r.stderr, r


def test_stack_refuses_bad_config(stack):
    s = stack({**MINIMAL_CONFIG, "upstrem": {}}, start=False)
    r = s.start(check=False)
    assert r.returncode != 0, r
    assert "upstrem" in r.stdout + r.stderr, r
    s.reap_all()
    assert processes_mentioning(str(s.dir)) == [], "stack start left processes running"
    assert list(s.dir.glob("*.pid")) == []


def test_stack_refuses_bad_config_without_redis(stack):
    s = stack(make_config(upstream={"connect_timeout_ms": "5"}), no_redis=True, start=False)
    r = s.start(check=False)
    assert r.returncode != 0, r
    assert "upstream.connect_timeout_ms" in r.stdout + r.stderr, r
    assert processes_mentioning(str(s.dir)) == []


@pytest.mark.parametrize("args,status,says", [
    (["--threads", "0"], 2, "--threads takes a number from 1 to 1024"),
    (["--threads", "1025"], 2, "--threads takes a number from 1 to 1024"),
    (["--threads", "8x"], 2, "--threads takes a number from 1 to 1024"),
    (["--threads"], 2, "unknown argument \"--threads\""),
    (["--bogus"], 2, "unknown argument \"--bogus\""),
    (["--listen", "/nonexistent-dir/x.sock"], 1,
     "cannot listen on /nonexistent-dir/x.sock: No such file or directory"),
    (["--listen", "127.0.0.1:99999"], 1, "cannot listen on 127.0.0.1:99999: \"99999\" is not a port"),
    (["--listen", "127.0.0.1:"], 1, "is not a port"),
    (["--listen", "no-such-host.invalid:9000"], 1, "cannot listen on no-such-host.invalid:9000: "),
    (["--listen", "/tmp/" + "x" * 120], 1, "a unix socket path is at most 107 bytes"),
])
def test_bad_arguments(tmp_path, args, status, says):
    """Command-line arguments are checked too: a wrong one is said, with the
    usage, and nothing starts."""
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(MINIMAL_CONFIG))
    r = run_binary([binary("proxy"), "--config", path, *args])
    assert r.returncode == status, r
    assert says in r.stderr, r


def test_listen_on_a_port_in_use_is_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        path = tmp_path / "ok.json"
        path.write_text(json.dumps(MINIMAL_CONFIG))
        r = run_binary([binary("proxy"), "--config", path, "--listen", f"127.0.0.1:{port}"])
    assert r.returncode == 1, r
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr, r


def test_listen_on_a_unix_socket_replaces_a_stale_one_only(tmp_path):
    """A socket file left by an earlier run is replaced; a plain file is not."""
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(MINIMAL_CONFIG))
    plain = tmp_path / "plain"
    plain.write_text("mine")
    r = run_binary([binary("proxy"), "--config", path, "--listen", plain])
    assert r.returncode == 1 and "Address already in use" in r.stderr, r
    assert plain.read_text() == "mine"
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))           # closed without unlink: a stale socket file
    log, san = tmp_path / "proxy.log", tmp_path / "san"
    san.mkdir()
    with open(log, "wb") as out:
        p = subprocess.Popen([str(binary("proxy")), "--config", str(path), "--listen", str(stale)],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=sanitizer_env(san))
    try:
        assert wait_until(lambda: "serving with" in log.read_text(), timeout=10), log.read_text()
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(str(stale))    # the executable's socket now
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0, log.read_text()
    fail_on_sanitizer_reports(_read_reports(san, [log]), "mediarelay-proxy --listen")
