"""Fault tests (issue 6, item 6): the real gridlined with its real worker processes, on
a real LMDB directory, over real sockets, under the faults a deployment meets.

What is pinned:
- kill -9 of workers under load: routers and the escalator are killed again and again
  while creates flood in and deadlines fall due; the supervisor logs each death and
  starts a new process; every acknowledged case is stored once and reaches `dispatched`
  (one dispatch each), and the escalator's deadlines go on acting, each at most once.
- kill -9 of the daemon under load with its workers: test_crash's checks (every
  acknowledged create found after the restart with its id and fields, no request_id
  registered twice, the unacknowledged stored wholly or not at all), and besides: the
  dead daemon's workers exit by themselves, new ones start, routing resumes, and no case
  is dispatched twice.
- the LMDB map full: below --map-max it doubles and the write goes through, many times
  over under pipelined load, nothing refused, every case intact (also after a restart
  with the small --map-size again). At --map-max: writes refused with `unavailable`, one
  reply each, saying what to do; case.get, case.list and feed.pull go on; SIGTERM exits
  0; restarted with a higher --map-max, writes resume, the refused request_ids were
  stored nowhere, every acknowledged case is intact and the event log dense.
- the disk full (a small tmpfs on the data folder, filled by a file of ours): the same
  refusals and reads; once the file is deleted, writes resume in the same process.
- a stuck LMDB reader (a process killed -9 inside a read transaction): its slot is
  cleared when the daemon starts, and within seconds while it runs; a live reader's slot
  is left alone.
- clients that vanish mid-request (creates and long-poll feed.pull, sockets closed
  before the replies): the daemon answers a fresh client promptly throughout, its heap
  (RssAnon) stays bounded, and each vanished create is stored wholly or not at all: sent
  again with its request_id it is either replayed (the whole case, indexed, with its
  event) or created fresh, never twice.

Loads scale down in a sanitizer build (gridline_harness.sanitized_build).
"""

import collections
import errno
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import zmq

from gridline_harness import (MDPC, Client, CrashLedger, all_events, crash_body, crash_rid_of,
                              daemon_binary, fetch_catalog, flood, flood_and_kill, list_all,
                              pack, pid_alive, same_fields, sanitized_build, unpack,
                              wait_until, worker_children, workers_of_data_dir)

SANITIZED = sanitized_build()
ROUTER, ESCALATOR = "gridline-router", "gridline-escalator"

# A city whose emergency class counts seconds (warning at 0.5 s, accept 1 s, resolve 2 s)
# so that the escalator is busy during a flood; every other class an hour, so that the
# rest of the cases stay quiet. Routing, places and units are the default city's.
SHORT_SLA_CITY = """
sla = (
  { code = "emergency"; accept_within = "1s"; resolve_within = "2s"; clock = "wall"; warn_ratio = 0.25; },
  { code = "utility";   accept_within = "1h"; resolve_within = "2h"; clock = "wall"; warn_ratio = 0.8; },
  { code = "standard";  accept_within = "1h"; resolve_within = "2h"; clock = "wall"; warn_ratio = 0.8; },
  { code = "complex";   accept_within = "1h"; resolve_within = "2h"; clock = "wall"; warn_ratio = 0.8; }
);
"""

# The escalator's event types and the deadline each answers.
KIND_OF = {"warned": "warn", "urged": "accept", "escalated": "resolve", "supervised": "resolve"}

# How long the vanished clients' long polls wait.
VANISH_WAIT_MS = 3000

DIED_RE = re.compile(r"worker ((?:router|escalator)-\d+) \(pid (\d+)\) was killed by signal 9")


# --------------------------------------------------------------------------------------
# helpers


def registered_left(c):
    return list_all(c, {"state": "registered"}, limit=500)


def histories(c, ids):
    """{id: (case, history)} for every id, pipelined."""
    ids = list(ids)
    reps = c.pipeline([("case.get", {"id": i, "history": True}) for i in ids], window=128,
                      timeout=60)
    out = {}
    for i, r in zip(ids, reps):
        assert r.ok, f"case.get {i} -> {r.describe()}"
        out[i] = (r.body["case"], r.body["history"])
    return out


def types(history):
    return [e["type"] for e in history]


def check_one_dispatch_and_deadlines_once(cid, history):
    """One `dispatched` event (by the router); within each set of deadlines (from the
    dispatch, or from an escalation) each deadline acted on at most once, by the
    escalator."""
    fired = None
    for e in history:
        t = e["type"]
        if t == "dispatched":
            assert fired is None, f"case {cid} dispatched twice: {types(history)}"
            assert e["actor"] == "router", (cid, e)
            fired = set()
        elif t in KIND_OF:
            assert e["actor"] == "escalator", (cid, e)
            assert fired is not None, f"case {cid}: {t} before its dispatch: {types(history)}"
            kind = KIND_OF[t]
            assert kind not in fired, (f"case {cid}: the {kind} deadline acted twice in one "
                                       f"period: {types(history)}")
            fired.add(kind)
            if t == "escalated":
                fired = set()
        else:
            assert t == "created", f"case {cid}: unexpected {t}: {types(history)}"


def check_feed_dense(c, case_ids):
    """The event log: sequence numbers 1..last without a gap, one `created` per case."""
    evs = all_events(c)
    seqs = [e["seq"] for e in evs]
    assert seqs == list(range(1, len(seqs) + 1)), f"feed not dense: {seqs[:5]}...{seqs[-5:]}"
    created = sorted(e["case_id"] for e in evs if e["type"] == "created")
    assert created == sorted(case_ids), (f"{len(created)} created events for "
                                         f"{len(case_ids)} cases")
    return evs


def fault_body(cat, tag, n, description=None):
    """A create whose request_id, title and phone name the test (tag) and n."""
    paths = cat.full_paths()
    d, s, m, g = paths[n % len(paths)]
    rid = f"{tag}-{os.getpid()}-{n:07d}"
    return {
        "request_id": rid,
        "channel": "hotline",
        "category": cat.categories[n % len(cat.categories)],
        "urgency": ("normal", "urgent")[n % 2],
        "title": f"T {rid}",
        "description": description or f"fault test case {rid}",
        "location": {"district": d, "street": s, "community": m, "grid": g},
        "reporter": {"name": "Fault", "phone": "13900000000"},
    }


def check_refusal(r, what):
    """A store-full refusal: well framed, `unavailable`, a message that says so."""
    assert r.well_formed and r.is_map(), f"{what}: {r.describe()}"
    assert r.error_code == "unavailable", f"{what}: expected unavailable, got {r.describe()}"
    msg = r.body["error"].get("message")
    assert isinstance(msg, str) and "retry" in msg and "nothing was stored" in msg, \
        f"{what}: message {msg!r}"


def fill_until_refused(c, make_body, acked, consecutive=5, limit=20000):
    """case.create in pipelined rounds of 32 until one is refused, then one at a time
    until `consecutive` in a row are refused (room freed inside the file takes a few
    more small writes). Every refusal must be `unavailable`. acked (request_id -> (body,
    case)) gains the acknowledged. Returns [(body, reply)] of the refused."""
    refused = []
    n = itertools.count()
    while not refused:
        bodies = [make_body(next(n)) for _ in range(32)]
        for b, r in zip(bodies, c.pipeline([("case.create", b) for b in bodies], window=32,
                                           timeout=30)):
            if r.ok:
                acked[b["request_id"]] = (b, r.body["case"])
            else:
                check_refusal(r, f"create {b['request_id']}")
                refused.append((b, r))
        assert len(acked) < limit, f"{len(acked)} creates and the store is not full yet"
    in_a_row = 0
    while in_a_row < consecutive:
        b = make_body(next(n))
        r = c.call("case.create", b, timeout=15)
        if r.ok:
            acked[b["request_id"]] = (b, r.body["case"])
            in_a_row = 0
        else:
            check_refusal(r, f"create {b['request_id']}")
            refused.append((b, r))
            in_a_row += 1
        assert len(acked) < limit, f"{len(acked)} creates and the store is not full yet"
    c.expect_silence(0.2)   # one reply each
    return refused


def check_reads_go_on(d, c, acked):
    """case.get (by id and code), case.list and feed.pull answer while writes cannot."""
    cases = [case for _, case in acked.values()]
    sample = cases[:20] + cases[-20:]
    for case in sample:
        got = c.ok("case.get", {"id": case["id"], "history": True})
        assert got["case"]["code"] == case["code"] and got["history"][0]["type"] == "created"
        assert c.ok("case.get", {"code": case["code"]})["case"]["id"] == case["id"]
    listed = list_all(c, limit=100)
    assert {x["id"] for x in listed} == {case["id"] for case in cases}
    pull = c.ok("feed.pull", {"after": 0, "limit": 10})
    assert [e["seq"] for e in pull["events"]] == list(range(1, 11))
    assert isinstance(c.ok("feed.pull", {"after": pull["last"], "wait_ms": 200})["events"],
                      list)
    assert d.alive(), "gridlined died with the store full\n" + d.stderr_tail()


def check_intact_and_writable(c, acked, refused):
    """Every acknowledged case as it was acknowledged; each refused request_id was
    stored nowhere (a fresh case now), and replays after that."""
    listed = {x["id"]: x for x in list_all(c, limit=500)}
    for rid, (b, case) in acked.items():
        got = listed.get(case["id"])
        assert got is not None, f"acknowledged case {case['id']} ({rid}) is gone"
        assert got["code"] == case["code"] and got["request_id"] == rid, (got, case)
        assert same_fields(b, got) is None, same_fields(b, got)
    bodies = [b for b, _ in refused]
    reps = c.pipeline([("case.create", b) for b in bodies], timeout=30)
    for b, r in zip(bodies, reps):
        assert r.ok and r.body["replayed"] is False, \
            f"refused {b['request_id']} sent again: {r.describe()}"
        assert r.body["case"]["id"] not in listed
        acked[b["request_id"]] = (b, r.body["case"])
    reps = c.pipeline([("case.create", b) for b in bodies], timeout=30)
    for b, r in zip(bodies, reps):
        assert r.ok and r.body["replayed"] is True and \
            r.body["case"]["id"] == acked[b["request_id"]][1]["id"], r.describe()


# ======================================================================================
# 1. kill -9 under load


def test_kill9_of_routers_and_escalator_under_load_restarts_them_and_every_case_is_routed(
        daemons):
    d = daemons(args=("--routers", "2", "--escalators", "1"), config=SHORT_SLA_CITY)
    c = d.client(timeout=20)
    cat = fetch_catalog(c)
    wait_until(lambda: len(worker_children(d.pid, ROUTER)) == 2
               and len(worker_children(d.pid, ESCALATOR)) == 1, 5,
               what="two routers and an escalator")
    fast = [x["code"] for x in cat.body["categories"]
            if (x.get("sla") or {}).get("emergency") == "emergency"]
    assert fast, "no category whose emergency class is `emergency`"
    paths = cat.full_paths()
    every = 40      # one case in 40 is an emergency: deadlines due within seconds

    def make(n):
        p = paths[(n * 7) % len(paths)]
        emergency = n % every == 0
        return {
            "request_id": f"wk-{os.getpid()}-{n:07d}",
            "channel": "hotline",
            "category": fast[n % len(fast)] if emergency else cat.categories[n % len(cat.categories)],
            "urgency": "emergency" if emergency else ("normal", "urgent")[n % 2],
            "description": "worker kill test case",
            "location": {"district": p[0], "street": p[1], "community": p[2], "grid": p[3]},
        }

    # Kill a router and the escalator in turn, every 0.8 s, through the flood and past
    # it, while the escalator works through the deadlines falling due.
    kills = []          # (program, pid)
    per_program = 4

    def killer():
        rng = random.Random(3)
        turns = [ROUTER, ESCALATOR] * per_program
        for prog in turns:
            time.sleep(0.5)
            kids = worker_children(d.pid, prog)
            if not kids:            # still in its restart backoff: wait for it
                try:
                    kids = wait_until(lambda: worker_children(d.pid, prog), 5, interval=0.02,
                                      what=f"{prog} to be restarted")
                except AssertionError:
                    return
            pid = rng.choice(kids)
            try:
                # Frozen first, so that the cases and deadlines coming meanwhile are
                # handed to it: it dies with a task in hand.
                os.kill(pid, signal.SIGSTOP)
                time.sleep(0.3)
                os.kill(pid, signal.SIGKILL)
                kills.append((prog, pid))
            except ProcessLookupError:
                pass

    th = threading.Thread(target=killer, daemon=True)
    t0 = time.monotonic()
    th.start()
    try:
        acked = flood(d, make, 3.0, clients=4, window=8 if SANITIZED else 16)
    finally:
        th.join(30)
    assert not th.is_alive()
    killed = {prog: [p for g, p in kills if g == prog] for prog in (ROUTER, ESCALATOR)}
    assert len(killed[ROUTER]) == per_program and len(killed[ESCALATOR]) == per_program, \
        f"kills {kills}\n" + d.stderr_tail()
    assert len(acked) > (300 if SANITIZED else 3000), f"only {len(acked)} creates acked"

    # The supervisor saw every death and started a new process for each.
    wait_until(lambda: {int(p) for _, p in DIED_RE.findall(d.stderr_text())}
               >= {p for _, p in kills}, 5, what="every kill to be logged")
    news = wait_until(lambda: (len(worker_children(d.pid, ROUTER)) == 2
                               and len(worker_children(d.pid, ESCALATOR)) == 1
                               and worker_children(d.pid, ROUTER)
                               + worker_children(d.pid, ESCALATOR)), 15,
                      what="two routers and an escalator running again")
    assert not set(news) & {p for _, p in kills}
    assert not any(pid_alive(p) for _, p in kills)
    log = d.stderr_text()
    assert len(re.findall(r"restarting worker (?:router|escalator)-\d+ in \d+ ms", log)) \
        == len(kills), log[-3000:]

    # Routing went on: nothing left registered; every acknowledged case stored once,
    # dispatched, once.
    wait_until(lambda: not registered_left(c), 20, interval=0.2,
               what="every case to leave `registered`")
    cases = {x["id"]: x for x in list_all(c, limit=500)}
    twice = [r for r, k in collections.Counter(x["request_id"] for x in cases.values()).items()
             if k > 1]
    assert not twice, f"request_ids registered twice: {twice[:10]}"
    for rid, cid in acked.items():
        assert cid in cases and cases[cid]["request_id"] == rid, f"acknowledged {rid} lost"
    for cid, x in cases.items():
        assert x["state"] == "dispatched", x
        if x["urgency"] != "emergency":
            assert x["version"] == 2, f"case {cid}: version {x['version']}, one dispatch expected"
    # The escalator, killed in its work, still acts on every emergency case's
    # deadlines (each first resolve_by, 2 s after the dispatch, escalates it), and never
    # on one deadline twice.
    urgent_ids = sorted(i for i, x in cases.items() if x["urgency"] == "emergency")
    assert urgent_ids

    def all_escalated():
        hs = histories(c, urgent_ids)
        return hs if all("escalated" in types(h) for _, h in hs.values()) else None

    hs = wait_until(all_escalated, 30, interval=0.3,
                    what="every emergency case to be escalated")
    for cid, (_, h) in hs.items():
        check_one_dispatch_and_deadlines_once(cid, h)
    log = d.stderr_text()
    held = {prog: len(re.findall(r"worker %s-\d+ \(gridline\.\w+\) [^:]*: its task \d+ goes "
                                 r"to another worker" % prog.split("-")[1], log))
            for prog in (ROUTER, ESCALATOR)}
    assert held[ROUTER] >= 1 and held[ESCALATOR] >= 1, \
        f"workers killed with a task in hand: {held}: not under load"
    print(f"\nkill -9 workers: {len(acked)} creates acked, {len(urgent_ids)} emergency; "
          f"{len(killed[ROUTER])} router and {len(killed[ESCALATOR])} escalator kills, "
          f"{held[ROUTER]} and {held[ESCALATOR]} with a task in hand; all routed and escalated "
          f"{time.monotonic() - t0:.1f} s after the flood began")


def test_kill9_of_the_daemon_under_load_with_its_workers_loses_nothing_and_routing_resumes(
        daemons):
    d = daemons(args=("--routers", "2", "--escalators", "1"))
    c = d.client(timeout=20)
    cat = fetch_catalog(c)
    ledger = CrashLedger()
    rng = random.Random(17)
    report = []
    for cycle in range(2):
        workers = wait_until(lambda: (len(worker_children(d.pid, ROUTER)) == 2
                                      and len(worker_children(d.pid, ESCALATOR)) == 1
                                      and worker_children(d.pid, ROUTER)
                                      + worker_children(d.pid, ESCALATOR)), 5,
                             what="two routers and an escalator")
        sent, acked, errors, retry = flood_and_kill(
            d, lambda k, n, cycle=cycle: crash_body(cat, cycle, k, n, tag="fault"),
            1.2 + rng.uniform(0, 0.4), clients=4, window=16)
        assert not errors, f"cycle {cycle}: error replies during the flood: {errors[:5]}"
        assert len(acked) > 100, f"cycle {cycle}: only {len(acked)} creates acknowledged"
        # The dead daemon's workers stop by themselves; none is left on this folder.
        wait_until(lambda: not any(pid_alive(p) for p in workers), 5,
                   what=f"the killed daemon's workers {workers} to exit")
        for prog in (ROUTER, ESCALATOR):
            assert not workers_of_data_dir(d.data, prog), f"{prog} left behind"

        d.start()
        c = d.client(timeout=30)
        _, replayed, fresh = ledger.check_cycle(c, cycle, sent, acked, rng)
        # Routing resumes; no case is dispatched twice (version 2: created, dispatched).
        wait_until(lambda: not registered_left(c), 20, interval=0.2,
                   what="routing to resume after the restart")
        twice = [(x["id"], x["state"], x["version"]) for x in list_all(c, limit=500)
                 if x["state"] != "dispatched" or x["version"] != 2]
        assert not twice, f"cases not dispatched exactly once: {twice[:10]}"
        report.append(f"cycle {cycle}: sent {len(sent)}, acked {len(acked)}, unacked "
                      f"{len(sent) - len(acked)} (stored {replayed}, fresh {fresh})")
    wait_until(lambda: len(worker_children(d.pid, ROUTER)) == 2
               and len(worker_children(d.pid, ESCALATOR)) == 1, 5,
               what="the new daemon's workers")
    ledger.check_all(c)
    print("\nkill -9 daemon with workers: " + "; ".join(report))


# ======================================================================================
# 2. the store full: the LMDB map, the disk


def test_a_full_map_grows_under_load_and_nothing_is_refused(daemons):
    d = daemons(args=("--routers", "1", "--map-size", "1"))
    c = d.client(timeout=30)
    cat = fetch_catalog(c)
    n = 1500 if SANITIZED else 3000   # 1 MiB holds ~350 of these
    bodies = [fault_body(cat, "grow", i, "g" * 600 + str(i)) for i in range(n)]
    acked = {}
    for b, r in zip(bodies, c.pipeline([("case.create", b) for b in bodies], window=64,
                                       timeout=60)):
        assert r.ok and r.body["replayed"] is False, r.describe()
        acked[b["request_id"]] = (b, r.body["case"])
    grown = re.findall(r"the LMDB map was full at (\d+) MiB; grown to (\d+) MiB",
                       d.stderr_text())
    assert grown and grown[0] == ("1", "2"), d.stderr_tail()
    assert "refused" not in d.stderr_text() and "failed" not in d.stderr_text(), \
        d.stderr_tail()
    wait_until(lambda: not registered_left(c), 30, interval=0.2,
               what="routing through the growing map")
    d.stop()

    d.start()                                 # the same small --map-size: the file rules
    c = d.client(timeout=30)
    check_intact_and_writable(c, acked, [])
    check_feed_dense(c, [case["id"] for _, case in acked.values()])
    print(f"\nmap growth: {n} creates, grown {len(grown)} time(s), "
          f"to {grown[-1][1]} MiB")


@pytest.mark.parametrize("args, needle", [
    (["--map-size", "0"], "--map-size takes 1 to"),
    (["--map-size", "lots"], "--map-size takes 1 to"),
    (["--map-max", "999999999999"], "--map-max takes 1 to 67108864 MiB"),
    (["--map-size", "4", "--map-max", "2"], "--map-max (2 MiB) is below --map-size (4 MiB)"),
])
def test_bad_map_options_exit_2_before_touching_the_data(tmp_path, args, needle):
    data = tmp_path / "data"
    r = subprocess.run([daemon_binary(), "--data", str(data), *args], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and needle in r.stderr, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1, r.stderr
    assert not data.exists()


def test_map_full_at_map_max_refuses_writes_keeps_reads_and_a_higher_max_resumes(daemons):
    d = daemons(args=("--routers", "1", "--map-size", "1", "--map-max", "1"))
    c = d.client(timeout=15)
    cat = fetch_catalog(c)
    acked = {}
    refused = fill_until_refused(c, lambda n: fault_body(cat, "map", n, "m" * 600 + str(n)),
                                 acked)
    assert len(acked) > 50, f"only {len(acked)} creates fitted in a 1 MiB map"
    check_reads_go_on(d, c, acked)
    text = d.stderr_text()
    assert text.count("the LMDB map is full at 1 MiB and --map-max is 1 MiB") == 1, \
        d.stderr_tail()   # told once, not for every refused batch
    assert "restarted with a higher --map-max" in text, d.stderr_tail()
    pid = d.pid
    d.stop()                                 # a clean exit, with the map full

    d.extra_args[d.extra_args.index("--map-max") + 1] = "16"
    d.start()
    assert d.pid != pid
    c = d.client(timeout=15)
    check_intact_and_writable(c, acked, refused)
    more = [fault_body(cat, "map-after", n) for n in range(200)]
    for b, r in zip(more, c.pipeline([("case.create", b) for b in more])):
        assert r.ok and r.body["replayed"] is False, r.describe()
        acked[b["request_id"]] = (b, r.body["case"])
    wait_until(lambda: not registered_left(c), 15, interval=0.2,
               what="routing to catch up with the bigger map")
    check_feed_dense(c, [case["id"] for _, case in acked.values()])
    print(f"\nmap full: {len(acked) - len(refused) - len(more)} creates fitted in 1 MiB, "
          f"{len(refused)} refused, all stored after the restart with --map-max 16")


def _mount_tmpfs(path, size):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on the data folder (mount: "
                    f"{(r.stderr or r.stdout).strip()}); the disk-full test needs root")


def _unmount(path):
    """umount, once the processes that had the tmpfs busy are gone (a killed daemon's
    workers exit by themselves, a moment later); lazily if they never go."""
    def unmounted():
        return subprocess.run(["umount", path], capture_output=True).returncode == 0
    try:
        wait_until(unmounted, 5, interval=0.1, what=f"umount {path}")
    except AssertionError:
        subprocess.run(["umount", "-l", path], capture_output=True)


def _fill_disk(path):
    """Writes path until the filesystem is full; returns its size."""
    chunk = b"\0" * 65536
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            try:
                w = os.write(fd, chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
            n += w
            if w < len(chunk):
                chunk = chunk[:len(chunk) - w] or b"\0"
        # a short write may leave a few bytes; fill those byte by byte
        while True:
            try:
                if os.write(fd, b"\0") == 0:
                    break
                n += 1
            except OSError:
                break
    finally:
        os.close(fd)
    return n


def test_disk_full_refuses_writes_keeps_reads_and_resumes_when_space_is_freed(daemons):
    d = daemons(args=("--routers", "1"), start=False)
    _mount_tmpfs(d.data, "8m")
    try:
        d.start()
        pid = d.pid
        c = d.client(timeout=15)
        cat = fetch_catalog(c)
        acked = {}
        first = [fault_body(cat, "disk0", n) for n in range(100)]
        for b, r in zip(first, c.pipeline([("case.create", b) for b in first])):
            assert r.ok, r.describe()
            acked[b["request_id"]] = (b, r.body["case"])
        filler = os.path.join(d.data, "filler")
        filled = _fill_disk(filler)
        refused = fill_until_refused(c, lambda n: fault_body(cat, "disk", n, "d" * 600 + str(n)),
                                     acked)
        check_reads_go_on(d, c, acked)
        assert d.pid == pid

        os.remove(filler)                      # space again: writes resume, same process
        check_intact_and_writable(c, acked, refused)
        more = [fault_body(cat, "disk-after", n) for n in range(200)]
        for b, r in zip(more, c.pipeline([("case.create", b) for b in more])):
            assert r.ok and r.body["replayed"] is False, r.describe()
            acked[b["request_id"]] = (b, r.body["case"])
        wait_until(lambda: not registered_left(c), 15, interval=0.2,
                   what="routing to catch up once space is freed")
        check_feed_dense(c, [case["id"] for _, case in acked.values()])
        assert d.pid == pid and d.alive()
        d.stop()                               # exit code 0
        print(f"\ndisk full: filler {filled >> 10} KiB; {len(refused)} creates refused; "
              f"{len(acked)} stored in the end, no restart")
    finally:
        if d.alive():
            d.kill9()
        _unmount(d.data)


# ======================================================================================
# 3. a stuck LMDB reader


# Holds a read transaction on the store until its stdin closes (or kill -9).
READER = r"""
import sys, lmdb
env = lmdb.open(sys.argv[1], readonly=True, lock=True, max_dbs=16, create=False)
txn = env.begin()
sys.stdout.write("%d\n" % txn.id())
sys.stdout.flush()
sys.stdin.read()
"""


def _has_python_lmdb():
    r = subprocess.run([sys.executable, "-c", "import lmdb"], capture_output=True)
    return r.returncode == 0


def hold_reader(data):
    p = subprocess.Popen([sys.executable, "-c", READER, data], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.strip().isdigit(), f"the reader did not start: {line!r}"
    return p, int(line)


def readers(data):
    """{pid: txnid or None} from the store's reader table (mdb_stat -r, which does not
    clear anything: -rr would)."""
    r = subprocess.run(["mdb_stat", "-r", data], capture_output=True, text=True, timeout=10)
    # (its exit status is 1 whenever it listed a reader: mdb_reader_list's count)
    assert "Reader Table Status" in r.stdout, (r.returncode, r.stdout, r.stderr)
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[0].isdigit():
            out[int(f[0])] = None if f[2] == "-" else int(f[2])
    return out


def kill9(p):
    p.kill()
    p.wait(5)


@pytest.mark.skipif(not _has_python_lmdb(),
                    reason="python3-lmdb is not installed (.ci/install-deps installs it)")
def test_a_reader_killed_inside_a_transaction_is_cleared_at_start_and_while_running(daemons):
    d = daemons(args=("--routers", "0", "--escalators", "0"))
    c = d.client()
    cat = fetch_catalog(c)
    c.ok("case.create", fault_body(cat, "rd", 0))
    d.stop()

    # At start: a reader killed while the daemon was down. (The first process to open
    # an environment nobody holds resets its reader table, so the stale slot outlives
    # the daemon's absence only while another process holds the store open: a live
    # reader, kept to the end.)
    live, live_txn = hold_reader(d.data)
    dead, dead_txn = hold_reader(d.data)
    try:
        assert readers(d.data).get(dead.pid) == dead_txn
        kill9(dead)
        assert readers(d.data).get(dead.pid) == dead_txn, "LMDB cleared the slot by itself"
        cleared = "cleared 1 stale LMDB reader slot(s)"
        assert cleared not in d.stderr_text()
        d.start()
        table = readers(d.data)
        assert dead.pid not in table, "the stale slot survived the daemon's start"
        assert table.get(live.pid) == live_txn, "a live reader's slot was cleared"
        assert d.stderr_text().count(cleared) == 1

        # While running: another reader killed inside its transaction.
        c = d.client()
        dead, dead_txn = hold_reader(d.data)
        assert readers(d.data).get(dead.pid) == dead_txn
        kill9(dead)
        t0 = time.monotonic()
        n = itertools.count(1)
        # Writes go on meanwhile; the daemon clears the slot within its check period.
        while dead.pid in readers(d.data):
            assert time.monotonic() - t0 < 8, \
                "the stale slot is still there 8 s later\n" + d.stderr_tail()
            c.ok("case.create", fault_body(cat, "rd", next(n)))
            time.sleep(0.1)
        cleared_s = time.monotonic() - t0
        wait_until(lambda: d.stderr_text().count(cleared) == 2, 2,
                   what="the clearing to be logged")
        assert readers(d.data).get(live.pid) == live_txn, "a live reader's slot was cleared"
    finally:
        live.stdin.close()
        live.wait(5)
        if dead.poll() is None:
            kill9(dead)
    assert live.returncode == 0
    assert live.pid not in readers(d.data)   # a reader that ends frees its own slot
    print(f"\nstale reader: cleared at start, and {cleared_s:.1f} s after its kill while running")


# ======================================================================================
# 4. clients that vanish mid-request


def test_clients_vanishing_mid_request_leave_the_daemon_healthy_and_each_create_whole_or_absent(
        daemon):
    c = daemon.client(timeout=10)
    cat = fetch_catalog(c)
    ref = c.ok("case.create", fault_body(cat, "ref", 0))["case"]
    threads, rounds, per_client = (3, 25, 6) if SANITIZED else (4, 60, 8)
    ctx = zmq.Context.instance()
    sent = {}                 # request_id -> body, of the vanished clients
    lock = threading.Lock()
    errors = []

    def vanish(t, rounds, base):
        rng = random.Random(t)
        try:
            for r in range(rounds):
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(daemon.endpoint)
                bodies = [crash_body(cat, 100 + t, base + r, i, tag="vanish")
                          for i in range(per_client)]
                with lock:
                    for b in bodies:
                        sent[b["request_id"]] = b
                half = per_client // 2
                for b in bodies[:half]:
                    s.send_multipart([b"", MDPC, b"case.create", pack(b)])
                # where the feed's head is (some create replies come first: left unread)
                s.send_multipart([b"", MDPC, b"feed.pull",
                                  pack({"after": 0, "limit": 1, "rid": "head"})])
                head = None
                deadline = time.monotonic() + 5
                while head is None and time.monotonic() < deadline:
                    if s.poll(100, zmq.POLLIN):
                        body = unpack(s.recv_multipart()[3])
                        if body.get("rid") == "head":
                            head = body["last"]
                assert head is not None, "no answer to a feed.pull within 5 s"
                # long polls left waiting: at the head, and one whose filter matches no
                # event (no routers: no event has a unit)
                s.send_multipart([b"", MDPC, b"feed.pull",
                                  pack({"after": head, "wait_ms": VANISH_WAIT_MS})])
                s.send_multipart([b"", MDPC, b"feed.pull",
                                  pack({"after": 0, "wait_ms": VANISH_WAIT_MS,
                                        "filter": {"unit": "CITY-SUPERVISION"}})])
                for b in bodies[half:]:
                    s.send_multipart([b"", MDPC, b"case.create", pack(b)])
                # ...and gone: at once, or a moment later with replies on their way
                if rng.random() < 0.5:
                    time.sleep(rng.uniform(0, 0.01))
                s.close(0)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    def storm(base):
        ths = [threading.Thread(target=vanish, args=(t, rounds, base), daemon=True)
               for t in range(threads)]
        for th in ths:
            th.start()
        return ths

    def probe_while(ths):
        """A fresh client every 50 ms until the storm is over: the slowest answer."""
        worst = 0.0
        while any(th.is_alive() for th in ths):
            with Client(daemon.endpoint, timeout=5) as p:
                t0 = time.monotonic()
                got = p.ok("case.get", {"id": ref["id"]})
                worst = max(worst, time.monotonic() - t0)
                assert got["case"]["code"] == ref["code"]
            time.sleep(0.05)
        for th in ths:
            th.join()
        return worst

    def rss_settled():
        """RssAnon once the vanished clients' long polls are over: a pull of ours parked
        after theirs, for as long, times out after them."""
        r = c.call("feed.pull", {"after": 0, "wait_ms": VANISH_WAIT_MS,
                                 "filter": {"unit": "CITY-SUPERVISION"}},
                   timeout=VANISH_WAIT_MS / 1000 + 5)
        assert r.ok and r.body["events"] == [], r.describe()
        return daemon.status_kb("RssAnon")

    # A first storm warms the allocators; the second must not grow the heap further.
    worst1 = probe_while(storm(0))
    rss0 = rss_settled()
    worst2 = probe_while(storm(1000))
    rss1 = rss_settled()
    assert not errors, errors[:3]
    assert daemon.alive(), daemon.stderr_tail()
    limit = 3.0 if SANITIZED else 1.0
    assert max(worst1, worst2) < limit, \
        f"a fresh client waited {max(worst1, worst2):.2f} s during the storm"
    grown = rss1 - rss0
    assert grown < 16 * 1024, f"RssAnon grew by {grown} kB over the second storm ({rss0} -> {rss1})"

    # Each vanished create is whole or absent: sent again, replayed (and then it is all
    # there: fields, index, event) or created fresh; never a second case.
    rids = sorted(sent)
    reps = c.pipeline([("case.create", sent[r]) for r in rids], window=64, timeout=60)
    stored, fresh, ids = 0, 0, {}
    for rid, r in zip(rids, reps):
        assert r.ok, f"{rid} sent again: {r.describe()}"
        case = r.body["case"]
        assert case["request_id"] == rid and same_fields(sent[rid], case) is None, \
            (rid, same_fields(sent[rid], case))
        if r.body["replayed"]:
            stored += 1
        else:
            fresh += 1
        ids[rid] = case["id"]
    assert stored > 0, "no vanished client's create reached the store: the test tests nothing"
    assert len(set(ids.values())) == len(ids), "two request_ids share a case"
    reps = c.pipeline([("case.create", sent[r]) for r in rids], window=64, timeout=60)
    for rid, r in zip(rids, reps):
        assert r.ok and r.body["replayed"] is True and r.body["case"]["id"] == ids[rid], \
            r.describe()
    listed = list_all(c, limit=500)
    per_rid = {}
    for x in listed:
        per_rid.setdefault(x["request_id"], []).append(x["id"])
    assert len(listed) == len(sent) + 1, f"{len(listed)} cases for {len(sent) + 1} request_ids"
    assert all(len(v) == 1 for v in per_rid.values())
    for t in range(threads):   # the list index holds each (by the thread's phone)
        mine = {crash_rid_of(x) for x in list_all(c, {"reporter_phone": f"1370000{100 + t:04d}"},
                                                 limit=500)}
        assert mine == {r for r in rids if sent[r]["reporter"]["phone"].endswith(f"{100 + t:04d}")}
    check_feed_dense(c, [x["id"] for x in listed])
    print(f"\nvanishing clients: {threads * rounds * 2} clients, {len(sent)} creates "
          f"({stored} stored before they vanished, {fresh} not); fresh-client answer "
          f"worst {max(worst1, worst2) * 1000:.0f} ms; RssAnon {rss0} -> {rss1} kB")
