"""Each executable writes one access line per request to stderr (DIR/<exe>.log)."""

import re

import pytest

from conftest import wait_until


def access_line(log, method, path, status):
    pat = re.compile(rf"\b{method}\b.*\s{re.escape(path)}(\s|$).*\b{status}\b")
    return next((line for line in log.splitlines() if pat.search(line)), None)


@pytest.mark.parametrize("exe,path,status", [
    ("resolve", "/api/health", 200),
    ("resolve", "/api/nope-logged", 404),
    ("segment", "/api/seg/logged.ts", 403),
    ("proxy", "/api/health/proxy", 200),
])
def test_access_line(shared_stack, exe, path, status):
    assert shared_stack.get(path).status == status
    line = wait_until(lambda: access_line(shared_stack.log(exe), "GET", path, status), timeout=3)
    assert line, f"no access line for GET {path} {status} in {exe}.log:\n{shared_stack.log(exe)[-3000:]}"

