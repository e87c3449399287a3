"""gridline-gateway: JSON lines in, each case registered exactly once, through daemon
outages (SIGTERM and kill -9) and a kill -9 of the gateway itself mid-replay; bad lines
end up in the rejects file and are never retried."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from gridline_harness import Daemon, build_dir, case_body, fetch_catalog, list_all

DAEMON_ARGS = ["--routers", "0", "--escalators", "0"]
PROGRESS = re.compile(r"spooled (\d+), sent (\d+), replayed (\d+), rejected (\d+), pending (\d+)")


def gateway_binary():
    return os.path.join(build_dir(), "gridline-gateway")


@pytest.fixture
def env():
    if not os.access(gateway_binary(), os.X_OK):
        pytest.fail(f"no gateway at {gateway_binary()} (set GRIDLINE_BUILD)")
    tmp = tempfile.mkdtemp(prefix="gridline-gw-")
    d = Daemon(workdir=os.path.join(tmp, "d"), extra_args=DAEMON_ARGS)
    os.makedirs(d.workdir, exist_ok=True)
    d.start()
    c = d.client()
    cat = fetch_catalog(c)
    e = type("Env", (), {})()
    e.tmp, e.daemon, e.cat = tmp, d, cat
    e.spool = os.path.join(tmp, "spool")
    e.procs = []
    try:
        yield e
    finally:
        for p in e.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        d.cleanup()
        if not os.environ.get("GRIDLINE_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


def unique_phone():
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


def lines(cat, n, phone, tag, with_rid_every=2):
    """n valid case.create lines; every other one without request_id (derived)."""
    out = []
    for i in range(n):
        b = case_body(cat, description=f"gateway {tag} line {i}",
                      reporter={"name": "Grid", "phone": phone}, channel="grid")
        if i % with_rid_every:
            del b["request_id"]
        out.append(json.dumps(b))
    return out


def start_gateway(e, *args, stdin=subprocess.PIPE, name="gw"):
    log = open(os.path.join(e.tmp, f"{name}.stderr"), "ab")
    cmd = [gateway_binary(), "--endpoint", e.daemon.endpoint, "--spool", e.spool,
           "--timeout", "500", "--retry-ms", "100"] + list(args)
    p = subprocess.Popen(cmd, stdin=stdin, stdout=log, stderr=log)
    p.log_path = log.name
    log.close()
    e.procs.append(p)
    return p


def gw_log(p):
    with open(p.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def last_progress(p):
    m = PROGRESS.findall(gw_log(p))
    if not m:
        return None
    return dict(zip(["spooled", "sent", "replayed", "rejected", "pending"],
                    map(int, m[-1])))


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cases_by_phone(e, phone):
    c = e.daemon.client()
    try:
        return list_all(c, {"reporter_phone": phone}, limit=500)
    finally:
        c.close()


def assert_once(cases, n, tag):
    descs = [c["description"] for c in cases]
    assert len(descs) == len(set(descs)), "a line registered twice"
    want = {f"gateway {tag} line {i}" for i in range(n)}
    assert set(descs) == want, f"missing {sorted(want - set(descs))[:5]}"


def rejects(e):
    path = os.path.join(e.spool, "rejects.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def test_lines_with_daemon_up(env):
    phone = unique_phone()
    data = "\n".join(lines(env.cat, 200, phone, "a")) + "\n"
    p = start_gateway(env, "--once")
    p.communicate(data.encode(), timeout=120)
    assert p.returncode == 0, gw_log(p)
    prog = last_progress(p)
    assert prog == {"spooled": 200, "sent": 200, "replayed": 0, "rejected": 0,
                    "pending": 0}, gw_log(p)
    assert_once(cases_by_phone(env, phone), 200, "a")
    # The same lines again (derived and explicit request ids alike): all replayed.
    p = start_gateway(env, "--once", name="gw2")
    p.communicate(data.encode(), timeout=120)
    assert p.returncode == 0, gw_log(p)
    assert last_progress(p)["replayed"] == 200, gw_log(p)
    assert_once(cases_by_phone(env, phone), 200, "a")
    assert os.path.getsize(os.path.join(env.spool, "spool.jsonl")) == 0


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_outage_spools_and_replays(env, how):
    phone = unique_phone()
    if how == "sigterm":
        env.daemon.stop()
    else:
        env.daemon.kill9()
    p = start_gateway(env, "--input", "-")
    for ln in lines(env.cat, 100, phone, "b"):
        p.stdin.write((ln + "\n").encode())
    p.stdin.flush()
    prog = wait_for(lambda: (lambda r: r if r and r["spooled"] == 100 and r["pending"] == 100
                             and "daemon unreachable" in gw_log(p) else None)(last_progress(p)),
                    20, "100 pending, daemon unreachable")
    assert prog["sent"] == 0
    env.daemon.start()
    wait_for(lambda: (lambda r: r and r["pending"] == 0)(last_progress(p)), 60,
             "the spool to drain")
    p.stdin.close()
    assert p.wait(30) == 0, gw_log(p)
    prog = last_progress(p)
    assert prog["sent"] + prog["replayed"] == 100 and prog["rejected"] == 0, gw_log(p)
    assert_once(cases_by_phone(env, phone), 100, "b")


def test_gateway_killed_mid_replay(env):
    phone = unique_phone()
    n = 400
    env.daemon.stop()
    p = start_gateway(env, "--once", "--max-retries", "0", name="spool")
    p.communicate(("\n".join(lines(env.cat, n, phone, "c")) + "\n").encode(), timeout=60)
    assert p.returncode == 1, gw_log(p)
    assert "pending" in gw_log(p) and last_progress(p)["pending"] == n, gw_log(p)
    env.daemon.start()

    p = start_gateway(env, "--once", stdin=subprocess.DEVNULL, name="replay1")
    wait_for(lambda: len(cases_by_phone(env, phone)) >= 40, 60, "the replay to start")
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    got = len(cases_by_phone(env, phone))
    assert got < n, "the replay finished before the kill; the test proves nothing"

    p = start_gateway(env, "--once", stdin=subprocess.DEVNULL, name="replay2")
    assert p.wait(120) == 0, gw_log(p)
    prog = last_progress(p)
    assert prog["pending"] == 0 and prog["rejected"] == 0, gw_log(p)
    assert_once(cases_by_phone(env, phone), n, "c")


def test_bad_lines_rejected_not_retried(env):
    phone = unique_phone()
    good = lines(env.cat, 2, phone, "d")
    bad_field = case_body(env.cat, reporter={"phone": phone}, urgency="whenever")
    unknown = case_body(env.cat, reporter={"phone": phone}, colour="red")
    conflict = json.loads(good[0])
    conflict["description"] = "the same request_id, another body"
    data = "\n".join([
        good[0],
        "{not json",
        "[1, 2, 3]",
        json.dumps(bad_field),
        json.dumps(unknown),
        json.dumps(conflict),
        good[1],
    ]) + "\n"
    p = start_gateway(env, "--once")
    p.communicate(data.encode(), timeout=60)
    assert p.returncode == 0, gw_log(p)
    prog = last_progress(p)
    assert prog["rejected"] == 5 and prog["sent"] == 2 and prog["pending"] == 0, gw_log(p)
    r = rejects(env)
    assert len(r) == 5
    codes = [x["error"]["code"] for x in r]
    assert codes == ["bad_json", "bad_json", "invalid_argument", "invalid_argument",
                     "conflict"], r
    assert r[0]["line"] == "{not json" and r[0]["error"]["message"]
    assert r[2]["error"]["field"] == "urgency", r[2]
    assert r[3]["error"]["field"] == "colour", r[3]
    # Not retried: another run on the same spool sends nothing and rejects nothing more.
    p = start_gateway(env, "--once", stdin=subprocess.DEVNULL, name="again")
    assert p.wait(30) == 0, gw_log(p)
    assert len(rejects(env)) == 5
    assert_once(cases_by_phone(env, phone), 2, "d")


def test_watch_dir(env):
    phone = unique_phone()
    watch = os.path.join(env.tmp, "watch")
    os.makedirs(watch)
    p = start_gateway(env, "--watch-dir", watch, stdin=subprocess.DEVNULL)
    tmp = os.path.join(watch, ".batch1.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines(env.cat, 30, phone, "e")) + "\n")
    os.rename(tmp, os.path.join(watch, "batch1.jsonl"))
    wait_for(lambda: len(cases_by_phone(env, phone)) == 30, 30, "30 cases")
    assert os.path.exists(os.path.join(watch, "batch1.jsonl.spooled"))
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0, gw_log(p)
    assert_once(cases_by_phone(env, phone), 30, "e")


def test_torn_spool_and_lost_offset(env):
    """A crash mid-append leaves a torn last record: it is cut, nothing else is lost.
    The same lines spooled again (spool.done gone too) are replayed, not registered
    again."""
    phone = unique_phone()
    data = ("\n".join(lines(env.cat, 20, phone, "f")) + "\n").encode()
    env.daemon.stop()
    p = start_gateway(env, "--once", "--max-retries", "0", name="spool")
    p.communicate(data, timeout=60)
    assert p.returncode == 1, gw_log(p)
    with open(os.path.join(env.spool, "spool.jsonl"), "ab") as f:
        f.write(b'{"description": "torn')
    env.daemon.start()
    p = start_gateway(env, "--once", stdin=subprocess.DEVNULL, name="drain1")
    assert p.wait(60) == 0, gw_log(p)
    assert "torn record" in gw_log(p)
    assert last_progress(p)["sent"] == 20, gw_log(p)
    # The same lines again, spooled while the daemon is down, spool.done removed.
    env.daemon.stop()
    p = start_gateway(env, "--once", "--max-retries", "0", name="spool2")
    p.communicate(data, timeout=60)
    os.unlink(os.path.join(env.spool, "spool.done"))
    env.daemon.start()
    p = start_gateway(env, "--once", stdin=subprocess.DEVNULL, name="drain2")
    assert p.wait(60) == 0, gw_log(p)
    assert last_progress(p)["replayed"] == 20, gw_log(p)
    assert_once(cases_by_phone(env, phone), 20, "f")
