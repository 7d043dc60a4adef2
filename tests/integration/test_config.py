"""Bad configs are refused at start: exit 1 and a message naming the key."""

import json
import re

import pytest

from conftest import (EXES, MINIMAL_CONFIG, SECRET, binary, make_config, processes_mentioning,
                      run_binary)


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
