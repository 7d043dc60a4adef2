"""Apache's mod_fcgid runs the executables (issue 13): it starts them with
the listening socket on fd 0, sends each one request at a time, replaces a
process after FcgidMaxRequestsPerProcess requests and stops the idle ones.
Each of those stops is SIGTERM, and the executable drains and exits cleanly
(with an ASan build, LeakSanitizer checks that exit).  The limits are
lowered here (the shipped file's are 10,000 requests and 300 s idle) so the
test sees them happen."""

import re
import subprocess

from conftest import wait_until

OVERRIDES = """
# test_fcgid.py: limits low enough to see them happen
FcgidMaxRequestsPerProcess 3
FcgidIdleTimeout 3
FcgidIdleScanInterval 1
FcgidMinProcessesPerClass 0
"""


def proxy_pids(st):
    """The pids of mediarelay-proxy that served a request, in order (their
    access lines are in Apache's error log: their stderr)."""
    pids = []
    for pid in re.findall(r"mediarelay-proxy\[(\d+)\] info: GET /api/health/proxy 200",
                          st.log("apache-error")):
        if int(pid) not in pids:
            pids.append(int(pid))
    return pids


def running(name):
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(l.split()[0]) for l in out.splitlines() if f"mediarelay-{name} --threads 1" in l]


def test_processes_are_recycled_and_stopped_when_idle(stack):
    st = stack(front="apache-fcgid")
    with open(st.dir / "apache-mediarelay.conf", "a") as f:
        f.write(OVERRIDES)
    subprocess.run(["apache2", "-d", str(st.dir), "-f", str(st.dir / "apache.conf"),
                    "-k", "graceful"], check=True, capture_output=True, timeout=20)
    assert wait_until(lambda: st.get("/api/health/proxy").status == 200, timeout=20)
    before = set(proxy_pids(st))
    # One at a time: the same process serves until it has served three.
    for _ in range(7):
        r = st.get("/api/health/proxy")
        assert r.status == 200 and r.json["executable"] == "proxy", r
    assert wait_until(lambda: len([p for p in proxy_pids(st) if p not in before]) >= 2,
                      timeout=10), st.log("apache-error")[-3000:]
    served = [p for p in proxy_pids(st) if p not in before]
    log = st.log("apache-error")
    counts = {p: len(re.findall(rf"mediarelay-proxy\[{p}\] info: GET /api/health/proxy 200", log))
              for p in served}
    assert all(n <= 3 for n in counts.values()), counts
    # Idle: mod_fcgid stops them all, and each drains and exits 0.
    assert wait_until(lambda: not running("proxy"), timeout=30), \
        f"mediarelay-proxy still running: {running('proxy')}"
    log = st.log("apache-error")
    for p in served:
        assert re.search(rf"mediarelay-proxy\[{p}\] info: drained, exiting", log), (p, log[-3000:])
    assert "drain timeout" not in log
    # A request after that starts a new one.
    r = st.get("/api/health/proxy")
    assert r.status == 200, r
