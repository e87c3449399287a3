"""Hot backup (design.md: mdb_env_copy2 with MDB_CP_COMPACT): `gridlined --backup DEST`
copies the store of a running daemon while creates pour in and the router dispatches, and
the copy is a store that a daemon serves: every case acknowledged before the backup began
with its code and fields, ids dense up to the count the backup printed, the event log
dense up to the last event it printed, request_ids that replay, new cases numbered after
the copy's. A bad destination is refused with one line and exit code 1, and nothing is
left behind.
"""

import os
import re
import shutil
import subprocess
import tempfile
import threading

from gridline_harness import (Daemon, all_events, case_body, daemon_binary, fetch_catalog,
                              flood, list_all, running, running_daemon, same_fields)

LINE = re.compile(r"^backup of (.+) written to (.+): (\d+) cases, events to (\d+), "
                  r"schema (\d+), ([\d.]+) MiB$")


def backup(data, dest):
    return subprocess.run([daemon_binary(), "--data", data, "--backup", dest],
                          capture_output=True, text=True, timeout=120)


def test_a_backup_under_load_is_a_store_that_serves_what_was_acknowledged():
    dest_dir = tempfile.mkdtemp(prefix="gridline-backup-")
    dest = os.path.join(dest_dir, "data")
    try:
        # a small map that grows during the flood: the copy may meet MDB_MAP_RESIZED
        with running_daemon(["--routers", "1", "--map-size", "1"]) as d:
            c = d.client()
            cat = fetch_catalog(c)
            before = {}
            bodies = [case_body(cat, request_id=f"bk-before-{i}") for i in range(300)]
            for b, r in zip(bodies, c.pipeline([("case.create", b) for b in bodies])):
                assert r.ok, r.describe()
                before[b["request_id"]] = (b, r.body["case"])

            result = {}
            taker = threading.Thread(target=lambda: result.update(r=backup(d.data, dest)))
            during = flood(d, lambda n: case_body(cat, request_id=f"bk-during-{n}"), 2.5,
                           clients=4, window=16, at={0.8: taker.start})
            taker.join(120)
            live = 300 + len(during)

        r = result["r"]
        assert r.returncode == 0, r.stderr
        m = LINE.match(r.stdout.strip())
        assert m, r.stdout
        n_cases, last_seq = int(m[3]), int(m[4])
        assert m[2] == dest and float(m[6]) > 0
        # A snapshot taken mid-flood: more than what came before, less than the end.
        assert 300 < n_cases < live, (n_cases, live)
        assert last_seq > n_cases   # created events, and the router's dispatches

        restored = Daemon(workdir=dest_dir, extra_args=("--routers", "0"))
        with running(restored):
            c = restored.client()
            listed = {x["id"]: x for x in list_all(c, limit=500)}
            assert sorted(listed) == list(range(1, n_cases + 1))
            for rid, (b, case) in before.items():
                got = listed[case["id"]]
                assert got["code"] == case["code"] and got["request_id"] == rid
                assert same_fields(b, got) is None, same_fields(b, got)
            evs = all_events(c)
            assert [e["seq"] for e in evs] == list(range(1, last_seq + 1))
            assert sorted(e["case_id"] for e in evs if e["type"] == "created") == \
                list(range(1, n_cases + 1))
            # request_ids came along: one from before, and the copy's last case, from
            # the flood, both replay
            b, case = before["bk-before-7"]
            again = c.ok("case.create", b)
            assert again["replayed"] is True and again["case"]["id"] == case["id"]
            in_copy = max(x["id"] for x in listed.values())
            rid = listed[in_copy]["request_id"]
            assert rid.startswith("bk-during-")
            again = c.ok("case.create", case_body(cat, request_id=rid))
            assert again["replayed"] is True and again["case"]["id"] == in_copy
            fresh = c.ok("case.create", case_body(cat, request_id="bk-after-1"))
            assert fresh["case"]["id"] == n_cases + 1 and fresh["replayed"] is False
        print(f"\nbackup under load: {n_cases} of {live} cases, events to {last_seq}, "
              f"{m[6]} MiB")
    finally:
        shutil.rmtree(dest_dir, ignore_errors=True)


def test_a_bad_destination_is_refused_and_nothing_is_written(daemon):
    c = daemon.client()
    c.ok("case.create", case_body(fetch_catalog(c), request_id="bk-one"))
    work = tempfile.mkdtemp(prefix="gridline-backup-")
    try:
        full = os.path.join(work, "full")
        os.mkdir(full)
        with open(os.path.join(full, "keep.txt"), "w") as f:
            f.write("mine")
        cases = [
            (full, "is not empty: back up into a new or empty folder"),
            (daemon.data, "is the store itself"),
        ]
        for dest, why in cases:
            r = backup(daemon.data, dest)
            assert r.returncode == 1 and r.stdout == "", (dest, r)
            assert r.stderr.startswith("gridlined: backup failed: ") and why in r.stderr, r.stderr
            assert r.stderr.count("\n") == 1, r.stderr
        assert os.listdir(full) == ["keep.txt"]
        with open(os.path.join(full, "keep.txt")) as f:
            assert f.read() == "mine"

        r = backup(os.path.join(work, "no-such-store"), os.path.join(work, "b"))
        assert r.returncode == 1 and "no store in" in r.stderr and "--data" in r.stderr, r
        assert not os.path.exists(os.path.join(work, "b"))

        junk = os.path.join(work, "junk")
        os.mkdir(junk)
        with open(os.path.join(junk, "data.mdb"), "wb") as f:
            f.write(b"not an LMDB file" * 512)
        r = backup(junk, os.path.join(work, "fresh"))
        assert r.returncode == 1 and "cannot read the store in" in r.stderr, r
        assert not os.path.exists(os.path.join(work, "fresh"))   # the folder it made goes

        ok = os.path.join(work, "ok")
        r = backup(daemon.data, ok)
        assert r.returncode == 0 and LINE.match(r.stdout.strip())[3] == "1", r
        assert os.listdir(ok) == ["data.mdb"]   # the copy alone, no lock file
        # the daemon is none the worse
        assert c.ok("case.get", {"id": 1})["case"]["request_id"] == "bk-one"
    finally:
        shutil.rmtree(work, ignore_errors=True)
