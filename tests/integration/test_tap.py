"""The live tap (protocol.md, "Transport"): a PUB socket publishing every committed
event as topic, 8-byte big-endian sequence number, event; topics filter by prefix."""

import struct
import time

import msgpack
import pytest
import zmq

from gridline_harness import Daemon, free_port, running, unique_request_id


@pytest.fixture
def tapped():
    port = free_port()
    d = Daemon(extra_args=["--routers", "0", "--escalators", "0"])
    d.tap_endpoint = f"tcp://127.0.0.1:{port}"
    with running(d):
        yield d


def subscribe(d, prefix=b""):
    s = zmq.Context.instance().socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SUBSCRIBE, prefix)
    s.connect(d.tap_endpoint)
    time.sleep(0.3)   # PUB drops what is sent before the subscription arrives
    return s


def receive(s, n, timeout=3.0):
    got = []
    end = time.time() + timeout
    while len(got) < n and time.time() < end:
        if s.poll(100):
            got.append(s.recv_multipart())
    return got


def create(c, district, category):
    loc = {"district": district}
    return c.ok("case.create", {"request_id": unique_request_id(), "channel": "web",
                                "category": category, "description": "tap test",
                                "location": loc})["case"]


def test_every_committed_event_is_published_with_its_sequence_number(tapped):
    s = subscribe(tapped)
    c = tapped.client()
    cases = [create(c, "D01", "roads") for _ in range(3)]
    c.ok("case.act", {"id": cases[0]["id"], "action": "supervise"})
    msgs = receive(s, 4)
    assert len(msgs) == 4
    seqs = []
    for topic, seq, body in msgs:
        e = msgpack.unpackb(body)
        (n,) = struct.unpack(">Q", seq)
        assert n == e["seq"]
        assert topic.decode() == f"ev.{e['district']}.{e['category']}.{e['type']}"
        seqs.append(n)
    assert seqs == [1, 2, 3, 4]
    # the same events as the feed
    feed = c.ok("feed.pull", {"after": 0})["events"]
    assert [msgpack.unpackb(m[2]) for m in msgs] == feed


def test_a_prefix_subscription_gets_only_its_district_and_category(tapped):
    s = subscribe(tapped, b"ev.D02.roads.")
    c = tapped.client()
    create(c, "D01", "roads")
    mine = create(c, "D02", "roads")
    create(c, "D02", "sanitation")
    msgs = receive(s, 2, timeout=1.5)
    assert len(msgs) == 1
    assert msgpack.unpackb(msgs[0][2])["case_id"] == mine["id"]


def test_the_tap_starts_at_the_head_after_a_restart(tapped):
    c = tapped.client()
    create(c, "D01", "roads")
    tapped.stop()
    tapped.start()
    s = subscribe(tapped)
    c = tapped.client()
    create(c, "D01", "roads")
    msgs = receive(s, 2, timeout=1.5)
    assert [struct.unpack(">Q", m[1])[0] for m in msgs] == [2]


def rss_anon_kb(pid):
    """Anonymous resident memory: the daemon's own heap, not the store's mapped pages."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon")


def test_a_subscriber_that_never_reads_does_not_grow_the_daemon(tapped):
    import os
    import subprocess
    from gridline_harness import build_dir
    slow = subscribe(tapped)          # connected, never reads
    slow.setsockopt(zmq.RCVHWM, 10)
    bench = os.path.join(build_dir(), "gridline-bench")
    c = tapped.client()
    create(c, "D01", "roads")
    before = rss_anon_kb(tapped.proc.pid)
    r = subprocess.run([bench, "--endpoint", tapped.endpoint, "--clients", "4",
                        "--inflight", "16", "--seconds", "3", "--dispatch-sample", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    creates = int(r.stdout.strip().splitlines()[-1].split("creates=")[1].split()[0])
    assert creates > 5000, r.stdout
    after = rss_anon_kb(tapped.proc.pid)
    print(f"{creates} events published to a stalled subscriber; RssAnon {before} -> {after} kB")
    assert after - before < 64 * 1024, (before, after)
    # and the daemon still answers, the feed has every event
    assert c.ok("feed.pull", {"after": 0, "limit": 1})["last"] >= creates
