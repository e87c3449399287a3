"""The crash test: "A create is acknowledged only once the case is durable on
disk: after "ok": true, kill -9 of every process and a restart lose nothing"
(protocol.md), and a request_id never makes two cases.

4 DEALER clients x 32 requests in flight flood case.create; after ~1.5 s the
daemon is killed with SIGKILL mid-flood and restarted on the same data folder.
Every acknowledged case must be there with the same id and fields; every request
sent but not acknowledged is sent again and gets a fresh case or the stored one
with replayed: true, never a second case. Three kill/restart cycles."""

import random
import time

from gridline_harness import (CrashLedger, Daemon, crash_body, fetch_catalog, flood_and_kill,
                              running, same_fields)

CLIENTS = 4
WINDOW = 32
FLOOD_SECONDS = 1.5
CYCLES = 3


def test_kill9_mid_flood_loses_nothing(daemon):
    c = daemon.client(timeout=20)
    cat = fetch_catalog(c)
    ledger = CrashLedger()
    rng = random.Random(7)
    report = []

    for cycle in range(CYCLES):
        sent, acked, errors, retry = flood_and_kill(
            daemon, lambda k, n, cycle=cycle: crash_body(cat, cycle, k, n),
            FLOOD_SECONDS + rng.uniform(-0.2, 0.2), clients=CLIENTS, window=WINDOW)
        assert not errors, f"cycle {cycle}: error replies during the flood: {errors[:5]}"
        assert len(acked) > 100, (f"cycle {cycle}: only {len(acked)} creates acknowledged "
                                  f"in {FLOOD_SECONDS}s\n" + daemon.stderr_tail())

        t0 = time.monotonic()
        daemon.start()
        restart_s = time.monotonic() - t0
        c = daemon.client(timeout=30)
        _, replayed, fresh = ledger.check_cycle(c, cycle, sent, acked, rng)
        report.append(f"cycle {cycle}: sent {len(sent)}, acked {len(acked)}, "
                      f"retryable errors {len(retry)}, unacked {len(sent) - len(acked)} "
                      f"(stored {replayed}, fresh {fresh}), restart {restart_s:.2f}s")
        c.close()

    c = daemon.client(timeout=30)
    ledger.check_all(c)
    print("\n".join(report))
    # the fixture ends with SIGTERM and asserts exit code 0


def test_kill9_while_the_map_grows_loses_nothing():
    """A map of 1 MiB grows several times in each flood (the writer remaps between
    batches); kill -9 lands wherever it lands, and every acknowledged case is there after
    a restart with the same small --map-size."""
    d = Daemon(extra_args=("--routers", "0", "--escalators", "0", "--map-size", "1"))
    with running(d):
        c = d.client(timeout=20)
        cat = fetch_catalog(c)
        ledger = CrashLedger()
        rng = random.Random(11)
        for cycle in range(2):
            sent, acked, errors, retry = flood_and_kill(
                d, lambda k, n, cycle=cycle: crash_body(cat, cycle, k, n),
                FLOOD_SECONDS + rng.uniform(-0.2, 0.2), clients=CLIENTS, window=WINDOW)
            assert not errors, f"cycle {cycle}: error replies: {errors[:5]}"
            assert len(acked) > 100, d.stderr_tail()
            d.start()
            c = d.client(timeout=30)
            ledger.check_cycle(c, cycle, sent, acked, rng)
            c.close()
        assert "grown to" in d.stderr_text(), d.stderr_tail()
        ledger.check_all(d.client(timeout=30))


def test_kill9_right_after_ack(daemon):
    """The smallest case: one acknowledged create, kill -9 at once, restart."""
    c = daemon.client()
    cat = fetch_catalog(c)
    body = crash_body(cat, 99, 0, 1)
    case = c.ok("case.create", body)["case"]
    daemon.kill9()
    daemon.start()
    c = daemon.client()
    got = c.ok("case.get", {"id": case["id"]})["case"]
    assert got["code"] == case["code"] and same_fields(body, got) is None
    rep = c.ok("case.create", body)
    assert rep.get("replayed") is True and rep["case"]["id"] == case["id"]
