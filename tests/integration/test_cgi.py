"""The executables as plain CGI programs (RFC 3875), run directly as a web
server runs them: the request in the environment, its body on stdin, the
answer on stdout, one request and the process ends.  (Behind a real Apache
with mod_cgid: test_fronts.py, front apache-cgi.)"""

import json

import pytest

from conftest import ADMIN_TOKEN, EXES, SECRET, binary, project_version, run_binary


def cgi_env(tmp_path, config, method="GET", uri="/api/health", **extra):
    conf = tmp_path / "mediarelay.json"
    conf.write_text(json.dumps(config))
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": uri,
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
           "HTTP_HOST": "relay.example", "MEDIARELAY_CONFIG": str(conf), "PATH": "/usr/bin:/bin"}
    env.update(extra)
    return env


def parse(stdout):
    """(status, headers, body) of a CGI answer (run_binary's text mode has
    turned its CRLFs into newlines)."""
    head, _, body = stdout.partition("\n\n")
    lines = head.split("\n")
    assert lines[0].startswith("Status: "), stdout[:300]
    status = int(lines[0].split()[1])
    headers = {k.lower(): v for k, _, v in (l.partition(": ") for l in lines[1:])}
    return status, headers, body


CONFIG = {"secret": SECRET, "admin_token": ADMIN_TOKEN, "redis": "",
          "media": {"intro": {"provider": "direct",
                              "source": {"url": "https://cdn.example/intro.mp4"}}}}


@pytest.mark.parametrize("exe", EXES)
def test_health_as_cgi(tmp_path, exe):
    r = run_binary([binary(exe)], env=cgi_env(tmp_path, CONFIG, uri=f"/api/health/{exe}"))
    assert r.returncode == 0, r
    status, headers, body = parse(r.stdout)
    assert status == 200 and headers["content-type"] == "application/json", r.stdout
    assert json.loads(body) == {"status": "ok", "redis": "down", "version": project_version(),
                                "executable": exe}
    assert "GET /api/health/" + exe in r.stderr     # the access line: the web server's log


def test_isindex_words_are_not_options(tmp_path):
    """A query without "=" becomes the program's arguments (RFC 3875 4.4):
    they are the client's, never options."""
    env = cgi_env(tmp_path, CONFIG, uri="/api/health?--check+--config+/etc/passwd",
                  QUERY_STRING="--check+--config+/etc/passwd")
    r = run_binary([binary("resolve"), "--check", "--config", "/etc/passwd"], env=env)
    assert r.returncode == 0, r
    assert parse(r.stdout)[0] == 200, r.stdout


def test_media_from_the_configuration_without_redis(tmp_path):
    r = run_binary([binary("resolve")],
                   env=cgi_env(tmp_path, CONFIG, uri="/api/media/intro/source"))
    status, _, body = parse(r.stdout)
    assert status == 200, r.stdout
    assert json.loads(body)["url"] == "http://relay.example/api/proxy/media/intro"


def test_body_is_content_length_bytes_of_stdin(tmp_path):
    """POST /api/proxy/sign reads CONTENT_LENGTH bytes of stdin and no more
    (stdin may go on: the web server need not close it)."""
    body = json.dumps({"url": "https://cdn.example/a.mp4", "ttl_s": 60})
    env = cgi_env(tmp_path, CONFIG, method="POST", uri="/api/proxy/sign",
                  CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)),
                  HTTP_AUTHORIZATION=f"Bearer {ADMIN_TOKEN}")
    r = run_binary([binary("proxy")], env=env, input=body + "trailing bytes that are not the body")
    status, _, out = parse(r.stdout)
    assert status == 200, r.stdout
    assert json.loads(out)["url"].startswith("http://relay.example/stream?")


def test_bad_request_is_a_json_error(tmp_path):
    env = cgi_env(tmp_path, CONFIG, uri="no-slash")
    r = run_binary([binary("segment")], env=env)
    status, headers, body = parse(r.stdout)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request", r.stdout


def test_a_configuration_with_errors_answers_500(tmp_path):
    """The client gets the project's error shape and no detail; the web
    server's error log (stderr) says what is wrong."""
    env = cgi_env(tmp_path, {"secret": SECRET, "no_such_key": 1})
    r = run_binary([binary("m3u8")], env=env)
    assert r.returncode == 1
    status, headers, body = parse(r.stdout)
    assert status == 500 and headers["content-type"] == "application/json", r.stdout
    assert json.loads(body)["error"]["code"] == "internal"
    assert "no_such_key" not in r.stdout and "no_such_key" in r.stderr, r


def test_not_started_by_a_web_server(tmp_path):
    """Neither a FastCGI socket on fd 0 nor GATEWAY_INTERFACE: say how to run it."""
    env = cgi_env(tmp_path, CONFIG)
    del env["GATEWAY_INTERFACE"]
    r = run_binary([binary("proxy")], env=env)
    assert r.returncode == 1 and r.stdout == ""
    assert "spawn-fcgi" in r.stderr and "CGI" in r.stderr, r.stderr
