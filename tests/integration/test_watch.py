"""`gridline watch` (the feed through libgridline's gl_feed) and the hotline tools
`gridline calls` and `gridline callback`.

A watcher with --position saves the last event it showed, durably, after each batch: a
watcher stopped mid-stream and started again misses nothing and repeats nothing it had
acknowledged, across its own restarts and the daemon's. What it shows is compared with
feed.pull through the harness's own client."""

import json
import os
import signal
import subprocess
import time

import pytest

from gridline_harness import build_dir, running_daemon, unique_request_id

LOC = {"district": "D02", "street": "D02-S01", "community": "D02-S01-C01"}
RUN_TIMEOUT = 30


def gridline_binary():
    return os.path.join(build_dir(), "gridline")


def argv_for(endpoint, *args, json_out=False):
    argv = [gridline_binary(), "--endpoint", endpoint, "--timeout", "2000"]
    if json_out:
        argv.append("--json")
    return argv + list(args)


def run(endpoint, *args, json_out=False, timeout=RUN_TIMEOUT):
    env = dict(os.environ)
    env.pop("GRIDLINE_ENDPOINT", None)
    return subprocess.run(argv_for(endpoint, *args, json_out=json_out),
                          stdin=subprocess.DEVNULL, capture_output=True, env=env,
                          timeout=timeout)


def watch_seqs(endpoint, *args):
    """Runs `gridline --json watch ARGS`; returns the seqs it printed."""
    p = run(endpoint, "watch", *args, json_out=True)
    assert p.returncode == 0, p.stderr.decode()
    return [json.loads(line)["seq"] for line in p.stdout.decode().splitlines()]


def create(c, district="D02", phone=None):
    loc = dict(LOC) if district == "D02" else {"district": district}
    body = {"request_id": unique_request_id(), "channel": "hotline", "category": "roads",
            "description": "watch test", "location": loc}
    if phone is not None:
        body["reporter"] = {"name": "Caller", "phone": phone}
    return c.ok("case.create", body)["case"]


def feed_seqs(c, after=0, **extra):
    seqs = []
    while True:
        body = {"after": after, "limit": 1000}
        body.update(extra)
        r = c.ok("feed.pull", body)
        seqs += [e["seq"] for e in r["events"]]
        if r["next"] == after or r["next"] == r["last"]:
            return seqs
        after = r["next"]


def read_position(path):
    with open(path) as f:
        return int(f.read().strip())


def test_watch_stopped_after_count_resumes_without_gaps_or_repeats(daemon, tmp_path):
    c = daemon.client()
    pos = str(tmp_path / "feed.pos")
    for _ in range(10):
        create(c)
    first = watch_seqs(daemon.endpoint, "--position", pos, "--count", "4", "--wait-ms", "500")
    assert first == [1, 2, 3, 4]
    assert read_position(pos) == 4
    assert not os.path.exists(pos + ".tmp")
    for _ in range(5):
        create(c)
    second = watch_seqs(daemon.endpoint, "--position", pos, "--count", "3", "--wait-ms", "500")
    third = watch_seqs(daemon.endpoint, "--position", pos, "--count", "8", "--wait-ms", "500")
    assert first + second + third == feed_seqs(c) == list(range(1, 16))
    assert read_position(pos) == 15


def test_watch_killed_while_waiting_resumes_after_what_it_showed(daemon, tmp_path):
    c = daemon.client()
    pos = str(tmp_path / "feed.pos")
    for _ in range(3):
        create(c)
    p = subprocess.Popen(argv_for(daemon.endpoint, "watch", "--position", pos, "--count", "100",
                                  "--wait-ms", "30000", json_out=True),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        seen = [json.loads(p.stdout.readline())["seq"] for _ in range(3)]
        # acknowledged after the batch was written; it is now in the long poll
        deadline = time.monotonic() + 5
        while (not os.path.exists(pos) or read_position(pos) != 3) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        p.stdout.close()
        p.stderr.close()
    assert seen == [1, 2, 3]
    assert read_position(pos) == 3
    for _ in range(2):
        create(c)
    seen += watch_seqs(daemon.endpoint, "--position", pos, "--count", "2", "--wait-ms", "500")
    assert seen == feed_seqs(c) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_watch_across_a_daemon_restart(daemon, tmp_path, how):
    c = daemon.client()
    pos = str(tmp_path / "feed.pos")
    for _ in range(6):
        create(c)
    seen = watch_seqs(daemon.endpoint, "--position", pos, "--count", "3", "--wait-ms", "500")
    if how == "sigterm":
        daemon.stop()
    else:
        daemon.kill9()
    daemon.start()
    c = daemon.client()
    for _ in range(3):
        create(c)
    seen += watch_seqs(daemon.endpoint, "--position", pos, "--count", "6", "--wait-ms", "500")
    assert seen == feed_seqs(c) == list(range(1, 10))


def test_a_running_watch_rides_out_a_daemon_restart(daemon, tmp_path):
    c = daemon.client()
    pos = str(tmp_path / "feed.pos")
    for _ in range(3):
        create(c)
    p = subprocess.Popen(argv_for(daemon.endpoint, "watch", "--position", pos, "--count", "6",
                                  "--wait-ms", "300", json_out=True),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        seen = [json.loads(p.stdout.readline())["seq"] for _ in range(3)]
        daemon.kill9()
        time.sleep(0.5)
        daemon.start()
        c = daemon.client()
        for _ in range(3):
            create(c)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err.decode()
    seen += [json.loads(line)["seq"] for line in out.decode().splitlines()]
    assert seen == feed_seqs(c) == list(range(1, 7))
    assert read_position(pos) == 6


def test_watch_filter_and_after(daemon, tmp_path):
    c = daemon.client()
    for i in range(6):
        create(c, district="D02" if i % 2 == 0 else "D01")
    want = feed_seqs(c, filter={"district": "D01"})
    assert len(want) == 3
    got = watch_seqs(daemon.endpoint, "--district", "D01", "--count", "3", "--wait-ms", "500")
    assert got == want
    pos = str(tmp_path / "p")
    got = watch_seqs(daemon.endpoint, "--after", "4", "--position", pos, "--count", "2",
                     "--wait-ms", "500")
    assert got == [5, 6] and read_position(pos) == 6


def test_watch_lines_and_usage(daemon):
    c = daemon.client()
    kase = create(c)
    p = run(daemon.endpoint, "watch", "--count", "1", "--wait-ms", "500")
    assert p.returncode == 0, p.stderr.decode()
    fields = p.stdout.decode().split()
    assert fields[0] == "1" and fields[2] == "created" and fields[3] == kase["code"]
    assert fields[4] == "registered" and fields[6] == "dev"
    assert run(daemon.endpoint, "watch", "--count", "0").returncode == 2
    assert run(daemon.endpoint, "watch", "--wait-ms", "x").returncode == 2
    assert run(daemon.endpoint, "watch", "extra").returncode == 2
    # a position beyond the daemon's log is refused, not waited on for ever
    p = run(daemon.endpoint, "watch", "--after", "99", "--count", "1", "--wait-ms", "100")
    assert p.returncode == 1 and b"invalid_argument" in p.stderr


def test_watch_refuses_a_position_file_that_holds_no_position(daemon, tmp_path):
    pos = tmp_path / "bad.pos"
    pos.write_text("not a number\n")
    p = run(daemon.endpoint, "watch", "--position", str(pos), "--count", "1")
    assert p.returncode == 1 and b"does not hold a feed position" in p.stderr


@pytest.fixture
def daemon_with_router():
    with running_daemon(["--routers", "1", "--escalators", "0"]) as d:
        yield d


def wait_state(c, case_id, state, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        k = c.ok("case.get", {"id": case_id})["case"]
        if k["state"] == state or time.monotonic() > deadline:
            return k
        time.sleep(0.05)


def test_calls_and_callback(daemon_with_router):
    d = daemon_with_router
    c = d.client()
    mine = [create(c, phone="+86 138 0013 8000") for _ in range(3)]
    create(c, phone="13900139000")
    p = run(d.endpoint, "calls", "+86 138 0013 8000")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    for k in mine:
        assert k["code"] in out
    assert "3 cases" in out
    p = run(d.endpoint, "calls", "+86 138 0013 8000", json_out=True)
    assert [k["id"] for k in json.loads(p.stdout)["cases"]] == [k["id"] for k in mine]
    p = run(d.endpoint, "calls", "000-000")
    assert p.returncode == 0 and "no cases" in p.stdout.decode()
    assert run(d.endpoint, "calls").returncode == 2

    # a callback needs a resolved case
    k = wait_state(c, mine[0]["id"], "dispatched")
    assert k["state"] == "dispatched"
    p = run(d.endpoint, "callback", str(k["id"]), "--satisfaction", "satisfied")
    assert p.returncode == 1 and b"conflict" in p.stderr
    c.ok("case.act", {"id": k["id"], "action": "accept"})
    c.ok("case.act", {"id": k["id"], "action": "resolve", "reply": "fixed"})
    p = run(d.endpoint, "callback", str(k["id"]), "--satisfaction", "satisfied",
            "--note", "caller is happy", json_out=True)
    assert p.returncode == 0, p.stderr.decode()
    after = json.loads(p.stdout)["case"]
    assert after["state"] == "closed" and after["satisfaction"] == "satisfied"
    hist = c.ok("case.get", {"id": k["id"], "history": True})["history"]
    assert hist[-1]["type"] in ("callback", "closed") and hist[-1]["note"] == "caller is happy"
    assert run(d.endpoint, "callback", str(k["id"])).returncode == 2
    assert run(d.endpoint, "callback", "x", "--satisfaction", "satisfied").returncode == 2
