"""gridline-bench, the load generator of the performance targets, against the real daemon.

The figures it prints are what README.md quotes, so its own arithmetic is checked here
against the daemon: the cases it says were acknowledged are in the store, the rate it
offers is the rate it says, its reads are real reads, its dispatch sample waits for the
router. Short runs: this checks the program, not the machine's speed.
"""

import os
import re
import subprocess

import pytest

from gridline_harness import Daemon, build_dir, running_daemon

LINE = re.compile(r"^bench: (.*)$")


def bench(daemon, *args, seconds=1):
    r = subprocess.run([os.path.join(build_dir(), "gridline-bench"), "--endpoint",
                        daemon.endpoint, "--seconds", str(seconds), *args],
                       capture_output=True, text=True, timeout=120)
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    m = LINE.match(last)
    assert m, (r.returncode, r.stdout, r.stderr)
    fields = dict(kv.split("=", 1) for kv in m.group(1).split())
    return r.returncode, fields, r.stdout


@pytest.fixture(scope="module")
def routed():
    with running_daemon(["--routers", "1", "--escalators", "0"]) as d:
        yield d


def test_the_creates_it_counts_are_in_the_store(routed):
    c = routed.client()
    before = c.ok("stats.query", {"group_by": "district"})
    before_n = sum(r["received"] for r in before["rows"]) if before["rows"] else 0
    rc, f, out = bench(routed, "--clients", "2", "--inflight", "4")
    assert rc == 0, out
    creates = int(f["creates"])
    assert creates > 100 and f["errors"] == "0", out
    # the rate is the count over the time (printed to the millisecond)
    assert float(f["rate"].rstrip("/s")) == pytest.approx(creates / float(f["seconds"]),
                                                          rel=0.002), out
    after = c.ok("stats.query", {"group_by": "district"})
    assert sum(r["received"] for r in after["rows"]) - before_n == creates
    # every sampled case reached `dispatched`, and the times are the daemon's own
    assert f["undispatched"] == "0" and float(f["dispatch_p99_ms"]) >= 0, out
    assert 0 < float(f["p50_ms"]) <= float(f["p99_ms"]) <= float(f["max_ms"]), out


def test_an_offered_rate_is_kept_and_reads_are_reads(routed):
    rc, f, out = bench(routed, "--clients", "2", "--inflight", "8", "--rate", "400",
                       "--mix-reads", "50", "--dispatch-sample", "0", seconds=2)
    assert rc == 0, out
    total = int(f["creates"]) + int(f["reads"])
    # 400 a second for 2 s, creates and reads together, about half each
    assert 700 <= total <= 900, out
    assert int(f["reads"]) > total // 4 and int(f["creates"]) > total // 4, out
    assert f["errors"] == "0", out


def bench_cases(daemon, *args, limit=200):
    """Runs the bench (no dispatch sample) and returns its output and the first `limit`
    cases it created, oldest first."""
    c = daemon.client()
    rows = c.ok("stats.query", {"group_by": "district"})["rows"]
    before_n = sum(r["received"] for r in rows)   # ids are dense from 1
    rc, f, out = bench(daemon, *args, "--dispatch-sample", "0")
    assert rc == 0 and f["errors"] == "0" and int(f["creates"]) > limit, out
    return out, c.ok("case.list", {"after": before_n, "limit": limit})["cases"]


def test_random_ids_are_unique_and_out_of_order(routed):
    _, cases = bench_cases(routed, "--clients", "2", "--inflight", "4", "--random-ids")
    rids = [x["request_id"] for x in cases]
    assert all(re.fullmatch(r"[0-9a-f]{16}-bench-[0-9a-f]{16}", r) for r in rids), rids[:5]
    assert len(set(rids)) == len(rids)
    # what a counter would give is in order; these are not, nor near it
    ahead = sum(a < b for a, b in zip(rids, rids[1:]))
    assert 0.3 < ahead / (len(rids) - 1) < 0.7, rids[:10]


def test_default_ids_are_uuid7s_that_start_with_the_time_they_were_made(routed):
    out, cases = bench_cases(routed, "--clients", "3", "--inflight", "4", limit=300)
    assert "request_ids uuid7" in out, out
    rids = [x["request_id"] for x in cases]
    assert all(re.fullmatch(r"[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}", r) for r in rids), \
        rids[:5]
    assert len(set(rids)) == len(rids)
    # made by the bench before the daemon stamped the case (5 s: slow sanitizer builds)
    for case, rid in zip(cases, rids):
        made = int(rid[:12], 16)
        assert case["created_at"] - 5000 <= made <= case["created_at"], (case, rid)
    # three connections, one run: the same run bits (rand_a, and the top of rand_b)
    assert len({(r[13:16], r[16:19]) for r in rids}) == 1


def test_counter_ids_are_each_connections_own_sequence(routed):
    _, cases = bench_cases(routed, "--clients", "2", "--inflight", "4", "--ids", "counter")
    rids = [x["request_id"] for x in cases]
    seqs = {}
    for r in rids:
        m = re.fullmatch(r"bench-[0-9a-f]{16}-([01])-([0-9]+)", r)
        assert m, r
        seqs.setdefault(m.group(1), []).append(int(m.group(2)))
    assert sorted(seqs) == ["0", "1"]
    for conn, ns in seqs.items():
        assert sorted(ns) == list(range(len(ns))), (conn, ns[:10])


def test_a_bad_ids_kind_is_refused_with_exit_2(routed):
    r = subprocess.run([os.path.join(build_dir(), "gridline-bench"), "--endpoint",
                        routed.endpoint, "--ids", "uuid4"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "--ids wants uuid7, counter or random" in r.stderr, r


def test_no_daemon_exits_1_and_says_why():
    d = Daemon()   # never started: nothing listens on its port
    try:
        r = subprocess.run([os.path.join(build_dir(), "gridline-bench"), "--endpoint",
                            d.endpoint, "--seconds", "1", "--timeout", "300"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert r.stderr.strip(), "no message on stderr"
    finally:
        d.cleanup()
