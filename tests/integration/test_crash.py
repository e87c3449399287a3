"""The crash test: "A create is acknowledged only once the case is durable on
disk: after "ok": true, kill -9 of every process and a restart lose nothing"
(protocol.md), and a request_id never makes two cases.

4 DEALER clients x 32 requests in flight flood case.create; after ~1.5 s the
daemon is killed with SIGKILL mid-flood and restarted on the same data folder.
Every acknowledged case must be there with the same id and fields; every request
sent but not acknowledged is sent again and gets a fresh case or the stored one
with replayed: true, never a second case. Three kill/restart cycles."""

import os
import random
import signal
import threading
import time

import msgpack
import zmq

from gridline_harness import MDPC, fetch_catalog, list_all, phone_matches, unpack

CLIENTS = 4
WINDOW = 32
FLOOD_SECONDS = 1.5
CYCLES = 3
RETRYABLE = ("overloaded", "unavailable")


def make_body(cat, cycle, k, n):
    rid = f"crash-c{cycle}-k{k}-{n:07d}"
    paths = cat.full_paths()
    d, s, c, g = paths[n % len(paths)]
    return {
        "request_id": rid,
        "rid": rid,
        "channel": ("grid", "hotline", "app", "web")[n % 4],
        "category": cat.categories[n % len(cat.categories)],
        "urgency": ("normal", "urgent", "emergency")[n % 3],
        "title": f"T {rid}",
        "description": f"crash test case {rid}",
        "location": {"district": d, "street": s, "community": c, "grid": g},
        "reporter": {"name": f"Crash {k}", "phone": f"1370000{cycle:04d}"},
    }


def flood_and_kill(daemon, cat, cycle, seconds=FLOOD_SECONDS):
    """Flood case.create, kill -9 mid-flood. Returns (sent, acked, errors):
    sent: rid -> body; acked: rid -> case from the ok reply."""
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(CLIENTS):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.connect(daemon.endpoint)
        socks.append(s)
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    sent, acked, errors, retry = {}, {}, [], set()
    inflight = [0] * CLIENTS
    counters = [0] * CLIENTS
    index = {s: k for k, s in enumerate(socks)}

    def handle(frames):
        assert len(frames) == 4 and frames[0] == b"" and frames[1] == MDPC, frames[:3]
        body = unpack(frames[3])
        rid = body.get("rid")
        assert rid in sent, f"reply with a rid never sent: {body!r}"
        if body.get("ok") is True:
            assert rid not in acked, f"two replies for {rid}"
            acked[rid] = body["case"]
        else:
            code = (body.get("error") or {}).get("code")
            if code in RETRYABLE:
                retry.add(rid)
            else:
                errors.append((rid, body))

    # SIGKILL from another thread at a moment the flood loop does not choose,
    # so that requests are in flight in the daemon when it dies.
    killed = {}

    def kill():
        killed["alive"] = daemon.alive()
        if killed["alive"]:
            os.kill(daemon.pid, signal.SIGKILL)
        killed["at"] = time.monotonic()

    killer = threading.Timer(seconds, kill)
    killer.start()
    try:
        while "at" not in killed or time.monotonic() < killed["at"] + 0.3:
            for k, s in enumerate(socks):
                while inflight[k] < WINDOW:
                    b = make_body(cat, cycle, k, counters[k])
                    try:
                        s.send_multipart([b"", MDPC, b"case.create",
                                          msgpack.packb(b, use_bin_type=True)], zmq.NOBLOCK)
                    except zmq.Again:
                        break  # no peer (the daemon is gone)
                    counters[k] += 1
                    sent[b["request_id"]] = b
                    inflight[k] += 1
            for s, _ in poller.poll(5):
                k = index[s]
                while True:
                    try:
                        fr = s.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    inflight[k] -= 1
                    handle(fr)
        killer.join()
        assert killed["alive"], "gridlined died during the flood\n" + daemon.stderr_tail()
        daemon.kill9()  # reap it
        # replies the daemon sent before it died are acknowledgements too
        time.sleep(0.1)
        for s in socks:
            while True:
                try:
                    fr = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                handle(fr)
    finally:
        killer.cancel()
        for s in socks:
            s.close(0)
    return sent, acked, errors, retry


def same_fields(body, case):
    for f in ("channel", "category", "urgency", "title", "description"):
        if case.get(f) != body[f]:
            return f"{f}: sent {body[f]!r}, stored {case.get(f)!r}"
    for f, v in body["location"].items():
        if case["location"].get(f) != v:
            return f"location.{f}: sent {v!r}, stored {case['location'].get(f)!r}"
    if not phone_matches(body["reporter"]["phone"], (case.get("reporter") or {}).get("phone")):
        return f"reporter: sent {body['reporter']!r}, stored {case.get('reporter')!r}"
    return None


def rid_of(case):
    d = case.get("description") or ""
    return d[len("crash test case "):] if d.startswith("crash test case ") else None


def test_kill9_mid_flood_loses_nothing(daemon):
    c = daemon.client(timeout=20)
    cat = fetch_catalog(c)
    bodies = {}      # every request_id ever sent -> body
    ids = {}         # request_id -> case id, for every request_id acknowledged
    codes = {}       # case id -> code
    rng = random.Random(7)
    report = []

    for cycle in range(CYCLES):
        sent, acked, errors, retry = flood_and_kill(daemon, cat, cycle,
                                                    FLOOD_SECONDS + rng.uniform(-0.2, 0.2))
        assert not errors, f"cycle {cycle}: error replies during the flood: {errors[:5]}"
        assert len(acked) > 100, (f"cycle {cycle}: only {len(acked)} creates acknowledged "
                                  f"in {FLOOD_SECONDS}s\n" + daemon.stderr_tail())
        bodies.update(sent)
        for rid, case in acked.items():
            assert case["id"] not in codes, \
                f"id {case['id']} acknowledged for {rid} and for another request_id"
            ids[rid] = case["id"]
            codes[case["id"]] = case["code"]
        unacked = [rid for rid in sent if rid not in acked]

        t0 = time.monotonic()
        daemon.start()
        restart_s = time.monotonic() - t0
        c = daemon.client(timeout=30)

        # 1. everything in the store, once: no request_id with two cases, no stranger
        listed = list_all(c, limit=500)
        by_id = {x["id"]: x for x in listed}
        per_rid = {}
        for x in listed:
            rid = rid_of(x)
            assert rid in bodies, f"a case nobody sent: {x!r}"
            per_rid.setdefault(rid, []).append(x["id"])
        twice = {r: v for r, v in per_rid.items() if len(v) > 1}
        assert not twice, f"cycle {cycle}: request_ids with two cases: {list(twice.items())[:5]}"

        # 2. every acknowledged case is there, with its id and fields
        lost = [rid for rid, i in ids.items() if i not in by_id]
        assert not lost, (f"cycle {cycle}: {len(lost)} acknowledged cases lost after kill -9, "
                          f"e.g. {[(r, ids[r]) for r in lost[:5]]}\n" + daemon.stderr_tail())
        for rid, i in ids.items():
            assert rid_of(by_id[i]) == rid, f"case {i} was acked for {rid}, holds {by_id[i]!r}"
            diff = same_fields(bodies[rid], by_id[i])
            assert diff is None, f"case {i} ({rid}): {diff}"
            assert by_id[i]["code"] == codes[i]
        committed_unacked = {rid for rid in unacked if rid in per_rid}

        # 3. case.get by id for this cycle's acknowledged cases
        got = c.pipeline([("case.get", {"id": acked[r]["id"]}) for r in acked],
                         window=128, timeout=60)
        for rid, r in zip(acked, got):
            assert r.ok, f"case.get {acked[rid]['id']} ({rid}) -> {r.describe()}"
            g = r.body["case"]
            a = acked[rid]
            assert (g["id"], g["code"], g["created_at"], g["description"]) == \
                (a["id"], a["code"], a["created_at"], a["description"]), (g, a)

        # 4. replaying acknowledged request_ids: replayed, same id (latest acks + a sample)
        order = list(acked)
        sample = order[-150:] + rng.sample(order, min(150, len(order)))
        reps = c.pipeline([("case.create", bodies[r]) for r in sample], window=64, timeout=60)
        for rid, r in zip(sample, reps):
            assert r.ok and r.body.get("replayed") is True, f"replay of {rid} -> {r.describe()}"
            assert r.body["case"]["id"] == ids[rid], f"replay of {rid}: id {r.body['case']['id']} != {ids[rid]}"

        # 5. the unacknowledged: a fresh case, or the stored one with replayed: true
        reps = c.pipeline([("case.create", bodies[r]) for r in unacked], window=64, timeout=60)
        fresh = replayed = 0
        for rid, r in zip(unacked, reps):
            assert r.ok, f"re-send of unacknowledged {rid} -> {r.describe()}"
            cid = r.body["case"]["id"]
            if rid in committed_unacked:
                assert r.body.get("replayed") is True, \
                    f"{rid} was stored (case {per_rid[rid]}) but the re-send says {r.describe()}"
                assert cid == per_rid[rid][0], f"{rid}: stored as {per_rid[rid]}, replay gives {cid}"
                replayed += 1
            else:
                assert not r.body.get("replayed"), f"{rid} was not stored but got {r.describe()}"
                assert cid not in codes, f"fresh case for {rid} reuses id {cid}"
                fresh += 1
            diff = same_fields(bodies[rid], r.body["case"])
            assert diff is None, f"re-send of {rid}: {diff}"
            ids[rid] = cid
            codes[cid] = r.body["case"]["code"]
        # and once more: now every one of them replays to the same id
        reps = c.pipeline([("case.create", bodies[r]) for r in unacked], window=64, timeout=60)
        for rid, r in zip(unacked, reps):
            assert r.ok and r.body.get("replayed") is True and r.body["case"]["id"] == ids[rid], \
                f"second re-send of {rid} -> {r.describe()}"

        # 6. counts: one case per distinct request_id acknowledged, ids unique
        assert len(set(ids.values())) == len(ids), "two request_ids share a case id"
        assert len(set(codes.values())) == len(codes), "two cases share a code"
        phone = f"1370000{cycle:04d}"
        this_cycle = list_all(c, {"reporter_phone": phone}, limit=500)
        assert len(this_cycle) == len(sent), (f"cycle {cycle}: {len(this_cycle)} cases with "
                                              f"phone {phone}, {len(sent)} request_ids sent")
        report.append(f"cycle {cycle}: sent {len(sent)}, acked {len(acked)}, "
                      f"retryable errors {len(retry)}, unacked {len(unacked)} "
                      f"(stored {replayed}, fresh {fresh}), restart {restart_s:.2f}s")
        c.close()

    c = daemon.client(timeout=30)
    everything = list_all(c, limit=500)
    assert len(everything) == len(ids) == len(bodies), \
        f"{len(everything)} cases listed, {len(ids)} request_ids acknowledged, {len(bodies)} sent"
    assert {x["id"] for x in everything} == set(ids.values())
    print("\n".join(report))
    # the fixture ends with SIGTERM and asserts exit code 0


def test_kill9_right_after_ack(daemon):
    """The smallest case: one acknowledged create, kill -9 at once, restart."""
    c = daemon.client()
    cat = fetch_catalog(c)
    body = make_body(cat, 99, 0, 1)
    case = c.ok("case.create", body)["case"]
    daemon.kill9()
    daemon.start()
    c = daemon.client()
    got = c.ok("case.get", {"id": case["id"]})["case"]
    assert got["code"] == case["code"] and same_fields(body, got) is None
    rep = c.ok("case.create", body)
    assert rep.get("replayed") is True and rep["case"]["id"] == case["id"]
