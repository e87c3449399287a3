"""Security: CURVE, the ZAP handler, roles and scopes, masking, limits, development mode.

The daemon runs with a keys file whose principals cover every role; each client talks
to it with its own CURVE key pair, made by `gridline keygen`. Every refusal is checked
to be `forbidden` (or the handshake refused) and to change nothing.
"""

import os
import re
import signal
import subprocess
import time

import pytest
import zmq

from gridline_harness import (Client, Daemon, build_dir, free_port, pack, running,
                              wait_dispatched, wait_until)

D1_LAMP = {"district": "D01", "street": "D01-S01", "community": "D01-S01-C01",
           "grid": "D01-S01-C01-G01"}
D2_PLACE = {"district": "D02"}

# name: (role, scope, extra settings)
PRINCIPALS = {
    "admin": ("admin", None, ""),
    "hotline": ("hotline", None, ""),
    "grid1": ("grid", "D01-S01-C01", ""),
    "grid2": ("grid", None, ""),
    "housing": ("unit", "D01-HOUSING", ""),
    "civil": ("unit", "D01-CIVIL", ""),
    "sup_d1": ("supervisor", "D01", ""),
    "obs_d2": ("observer", "D02", ""),
    "obs_c": ("observer", "D01-S01-C01", ""),
    "limited": ("hotline", None, "rate = 5; burst = 5;"),
    "one_at_a_time": ("hotline", None, "max_in_flight = 1;"),
}


def gridline(*args, cwd=None):
    return subprocess.run([os.path.join(build_dir(), "gridline"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=30)


def keygen(folder, name):
    r = gridline("keygen", name, cwd=folder)
    assert r.returncode == 0, r.stderr
    text = open(os.path.join(folder, name + ".key")).read()
    public = re.search(r'public = "([^"]{40})"', text).group(1)
    secret = re.search(r'secret = "([^"]{40})"', text).group(1)
    assert r.stdout.strip() == public
    assert "secret" not in open(os.path.join(folder, name + ".pub")).read()
    assert os.stat(os.path.join(folder, name + ".key")).st_mode & 0o077 == 0
    return public.encode(), secret.encode()


@pytest.fixture(scope="module")
def secure():
    """A daemon with keys, one router, and a key pair for every principal."""
    d = Daemon(extra_args=["--routers", "1", "--escalators", "0"])
    keys = os.path.join(d.workdir, "keys")
    os.makedirs(keys)
    server_pub, _ = keygen(keys, "server")
    pairs = {}
    entries = []
    for name, (role, scope, extra) in PRINCIPALS.items():
        pairs[name] = keygen(keys, name)
        scope_line = f'scope = "{scope}";' if scope else ""
        # half the entries name their .pub file, half carry the key inline
        key_line = (f'key_file = "{name}.pub";' if len(entries) % 2 == 0
                    else f'key = "{pairs[name][0].decode()}";')
        entries.append(f'{{ name = "{name}"; {key_line} role = "{role}"; {scope_line} {extra} }}')
    with open(os.path.join(keys, "clients.cfg"), "w") as f:
        f.write("clients = (\n  " + ",\n  ".join(entries) + "\n);\n")
    d.extra_args += ["--keys", os.path.join(keys, "clients.cfg"),
                     "--server-key", os.path.join(keys, "server.key")]
    d.curve = pairs["admin"] + (server_pub,)
    d.pairs = pairs
    d.server_pub = server_pub
    d.keys_dir = keys
    with running(d):
        yield d


def as_(d, name, timeout=5.0):
    return d.client(timeout=timeout, curve=d.pairs[name] + (d.server_pub,))


def create(c, request_id, location=None, category="street_lights", **extra):
    body = {"request_id": request_id, "channel": "hotline", "category": category,
            "description": "the lamp at the gate is dark",
            "location": location or D1_LAMP,
            "reporter": {"name": "王小明", "phone": "13812345678"}}
    body.update(extra)
    return c.call("case.create", body)


def forbidden(reply):
    assert reply.error_code == "forbidden", reply.describe()
    return reply.body["error"]["message"]


@pytest.fixture(scope="module")
def lamp(secure):
    """A street-light case in D01 registered by the hotline and routed to D01-HOUSING."""
    r = create(as_(secure, "hotline"), "lamp-1")
    assert r.ok, r.describe()
    case = wait_dispatched(as_(secure, "admin"), r.body["case"]["id"])
    assert case["unit"] == "D01-HOUSING", case
    return case


def test_a_client_without_a_key_or_with_an_unknown_key_gets_nothing(secure):
    stranger_pub, stranger_sec = zmq.curve_keypair()
    for c in (Client(secure.endpoint, timeout=1.0),
              Client(secure.endpoint, timeout=1.0,
                     curve=(stranger_pub, stranger_sec, secure.server_pub))):
        try:
            # A refused handshake can drop the connection before the send: a DEALER with no
            # peer then cannot queue it at all, which is a refusal too.
            try:
                c.sock.send_multipart([b"", b"MDPC01", b"case.list", pack({})], zmq.NOBLOCK)
            except zmq.Again:
                continue
            assert c.recv_frames(1.0) is None, "the daemon answered an unauthenticated client"
        finally:
            c.close()
    log = open(secure.stderr_path, errors="replace").read()
    assert "zap: refused a client" in log
    # and a known key still works
    assert as_(secure, "admin").call("case.list", {}).ok


def test_reporters_are_masked_for_those_without_the_right(secure, lamp):
    full = as_(secure, "admin").ok("case.get", {"id": lamp["id"]})["case"]
    assert full["reporter"] == {"name": "王小明", "phone": "13812345678"}
    seen = as_(secure, "sup_d1").ok("case.get", {"id": lamp["id"]})["case"]
    assert seen["reporter"] == {"name": "王**", "phone": "138****5678"}
    listed = as_(secure, "sup_d1").ok("case.list", {"filter": {"district": "D01"}})["cases"]
    assert listed and all(c["reporter"]["phone"] in (None, "138****5678") for c in listed)
    # the unit handling it calls the resident back: it sees the phone
    unit = as_(secure, "housing").ok("case.get", {"id": lamp["id"]})["case"]
    assert unit["reporter"]["phone"] == "13812345678"


def test_the_sender_and_actor_are_the_principal(secure, lamp):
    assert lamp["created_by"] == "hotline"
    # request_ids are scoped by principal: the same id from another sender is another case
    a = create(as_(secure, "hotline"), "shared-id")
    b = create(as_(secure, "admin"), "shared-id")
    assert a.ok and b.ok and a.body["case"]["id"] != b.body["case"]["id"]
    assert not b.body["replayed"]
    again = create(as_(secure, "hotline"), "shared-id")
    assert again.body["replayed"] and again.body["case"]["id"] == a.body["case"]["id"]


def test_a_unit_sees_and_acts_on_its_own_cases_only(secure, lamp):
    civil, housing = as_(secure, "civil"), as_(secure, "housing")
    msg = forbidden(civil.call("case.get", {"id": lamp["id"]}))
    assert "D01-CIVIL" in msg
    before = as_(secure, "admin").ok("case.get", {"id": lamp["id"]})["case"]
    forbidden(civil.call("case.act", {"id": lamp["id"], "action": "accept"}))
    forbidden(civil.call("case.act", {"id": lamp["id"], "action": "note", "note": "x"}))
    # an action outside the role, on its own case
    msg = forbidden(housing.call("case.act", {"id": lamp["id"], "action": "urge"}))
    assert "accept" in msg and "resolve" in msg
    after = as_(secure, "admin").ok("case.get", {"id": lamp["id"], "history": True})
    assert after["case"]["version"] == before["version"], "a refusal changed the case"
    # a list is cut to the unit, and asking for another unit is refused
    listed = civil.ok("case.list", {})["cases"]
    assert all(c["unit"] == "D01-CIVIL" for c in listed)
    forbidden(civil.call("case.list", {"filter": {"unit": "D01-HOUSING"}}))
    # the right unit signs for it, and the event names it
    r = housing.call("case.act", {"id": lamp["id"], "action": "accept",
                                  "version": before["version"]})
    assert r.ok, r.describe()
    history = housing.ok("case.get", {"id": lamp["id"], "history": True})["history"]
    assert history[-1]["type"] == "accepted" and history[-1]["actor"] == "housing"


def test_a_supervisor_and_an_observer_stay_within_their_places(secure, lamp):
    sup, obs = as_(secure, "sup_d1"), as_(secure, "obs_d2")
    assert sup.ok("case.get", {"id": lamp["id"]})
    forbidden(obs.call("case.get", {"id": lamp["id"]}))
    forbidden(sup.call("case.list", {"filter": {"district": "D02"}}))
    # a place at another level: refused when it is not inside the scope, else narrowed
    forbidden(sup.call("case.list", {"filter": {"street": "D02-S01"}}))
    forbidden(as_(secure, "obs_c").call("case.list", {"filter": {"street": "D01-S02"}}))
    street = sup.ok("case.list", {"filter": {"street": "D01-S01"}})["cases"]
    assert lamp["id"] in [c["id"] for c in street]
    assert as_(secure, "obs_c").ok("case.list", {"filter": {"district": "D01"}})
    r = create(as_(secure, "admin"), "d2-case", location=D2_PLACE, category="sanitation")
    assert r.ok, r.describe()
    d2 = r.body["case"]["id"]
    ids = [c["id"] for c in obs.ok("case.list", {})["cases"]]
    assert d2 in ids and lamp["id"] not in ids
    forbidden(sup.call("case.act", {"id": d2, "action": "supervise"}))
    forbidden(obs.call("case.act", {"id": d2, "action": "urge"}))
    n = obs.call("case.act", {"id": d2, "action": "note", "note": "civil affairs follows"})
    assert n.ok, n.describe()
    # a place-scoped principal may not create
    forbidden(sup.call("case.create", {"request_id": "s1", "description": "x",
                                       "location": {"district": "D01"}}))


def test_a_supervisor_merges_only_into_a_case_within_its_scope(secure, lamp):
    """The merge target is checked like the case: no merging a D01 case into one in
    D02, and the refusal changes nothing."""
    admin, sup = as_(secure, "admin"), as_(secure, "sup_d1")
    r = create(admin, "merge-src")
    assert r.ok, r.describe()
    src = wait_dispatched(admin, r.body["case"]["id"])
    r = create(admin, "merge-d2", location=D2_PLACE, category="sanitation")
    assert r.ok, r.describe()
    d2 = r.body["case"]["id"]
    refused = sup.call("case.act", {"id": src["id"], "action": "merge", "into": d2})
    forbidden(refused)
    assert refused.body["error"]["field"] == "into"
    assert admin.ok("case.get", {"id": src["id"]})["case"]["version"] == src["version"]
    r = create(admin, "merge-d1")
    assert r.ok, r.describe()
    into = r.body["case"]["id"]
    # routed first, so that the router's own duplicate finding is settled before the merge
    first = wait_dispatched(admin, into).get("duplicate_of") or into
    merged = sup.ok("case.act", {"id": src["id"], "action": "merge", "into": into})["case"]
    # the router may have found the target a duplicate itself: the merge joins the first
    assert merged["state"] == "merged" and merged["duplicate_of"] == first


def test_a_grid_gateway_creates_in_its_place_and_reads_what_it_sent(secure):
    g1, g2 = as_(secure, "grid1"), as_(secure, "grid2")
    mine = create(g1, "g1-a")
    assert mine.ok, mine.describe()
    r = create(g1, "g1-b", location=D2_PLACE, category="sanitation")
    assert forbidden(r) and r.error_field == "location.community"
    forbidden(g2.call("case.get", {"id": mine.body["case"]["id"]}))
    g2_case = create(g2, "g2-a", location=D2_PLACE, category="sanitation")
    assert g2_case.ok
    ids = [c["id"] for c in g1.ok("case.list", {"limit": 500})["cases"]]
    assert ids == [mine.body["case"]["id"]]
    forbidden(g1.call("case.act", {"id": mine.body["case"]["id"], "action": "note",
                                   "note": "x"}))
    forbidden(g1.call("feed.pull", {}))
    forbidden(g1.call("stats.query", {"group_by": "unit"}))


def test_the_feed_is_cut_to_the_subscribers_scope(secure, lamp):
    events = as_(secure, "housing").ok("feed.pull", {"limit": 1000})["events"]
    assert events and all(e["unit"] == "D01-HOUSING" for e in events)
    forbidden(as_(secure, "housing").call("feed.pull", {"filter": {"unit": "D01-CIVIL"}}))
    d2 = as_(secure, "obs_d2").ok("feed.pull", {"limit": 1000})["events"]
    assert d2 and all(e["district"] == "D02" for e in d2)
    forbidden(as_(secure, "sup_d1").call("feed.pull", {"filter": {"district": "D02"}}))
    # a scope below a district: the events of the cases in that community, and no other
    admin, obs_c = as_(secure, "admin"), as_(secure, "obs_c")
    elsewhere = create(admin, "feed-d1-s02", location={"district": "D01", "street": "D01-S02"},
                       category="sanitation")
    assert elsewhere.ok, elsewhere.describe()
    inside = create(admin, "feed-in-c01", category="sanitation")
    assert inside.ok, inside.describe()
    seen, after = [], 0
    while True:   # one page may stop short of the end (its scan budget): follow `next`
        page = obs_c.ok("feed.pull", {"after": after, "limit": 1000})
        seen += page["events"]
        if page["next"] >= page["last"]:
            break
        after = page["next"]
    cases = {e["case_id"] for e in seen}
    assert lamp["id"] in cases and inside.body["case"]["id"] in cases
    assert elsewhere.body["case"]["id"] not in cases
    assert all(e["district"] == "D01" for e in seen)
    for cid in cases:
        loc = admin.ok("case.get", {"id": cid})["case"]["location"]
        assert loc["community"] == "D01-S01-C01", loc
    forbidden(obs_c.call("feed.pull", {"filter": {"district": "D02"}}))


def test_the_tap_takes_only_city_wide_subscribers(secure):
    ctx = zmq.Context.instance()
    subs = {}
    for name in ("admin", "sup_d1"):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.curve_publickey, s.curve_secretkey = secure.pairs[name]
        s.curve_serverkey = secure.server_pub
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(secure.tap_endpoint)
        subs[name] = s
    try:
        hot = as_(secure, "hotline")
        got = None
        deadline = time.monotonic() + 10
        n = 0
        while got is None and time.monotonic() < deadline:
            n += 1
            assert create(hot, f"tap-{n}").ok
            if subs["admin"].poll(200):
                got = subs["admin"].recv_multipart()
        assert got is not None and got[0].startswith(b"ev.") and len(got) == 3
        assert subs["sup_d1"].poll(300) == 0, "a scoped principal got the city's tap"
    finally:
        for s in subs.values():
            s.close(0)


def test_a_principals_rate_limit_answers_overloaded(secure):
    c = as_(secure, "limited")
    replies = c.pipeline([("catalog.get", {}) for _ in range(20)])
    codes = [r.error_code if not r.ok else "ok" for r in replies]
    assert codes.count("ok") >= 5 and codes.count("overloaded") >= 10, codes
    bad = next(r for r in replies if not r.ok)
    assert "retry in" in bad.body["error"]["message"]
    time.sleep(0.5)
    assert c.call("catalog.get", {}).ok, "the bucket did not refill"


def test_in_flight_writes_per_principal_are_bounded(secure):
    c = as_(secure, "one_at_a_time")
    bodies = [("case.create", {"request_id": f"burst-{i}", "description": "x",
                               "location": {"district": "D01"}}) for i in range(40)]
    replies = c.pipeline(bodies, window=40)
    codes = [r.error_code if not r.ok else "ok" for r in replies]
    assert "overloaded" in codes and "ok" in codes, codes
    # nothing half-done: sent again one at a time, every accepted request_id is replayed
    # and every refused one is registered afresh
    for (svc, body), r in zip(bodies, replies):
        again = c.call("case.create", body)
        assert again.ok, again.describe()
        assert again.body["replayed"] == r.ok, (r.describe(), again.describe())


def test_keys_file_errors_name_the_line(tmp_path):
    d = Daemon(workdir=str(tmp_path))
    keygen(str(tmp_path), "server")
    bad = tmp_path / "clients.cfg"
    bad.write_text('clients = (\n { name = "x"; key = "short"; role = "admin"; }\n);\n')
    d.extra_args = ["--keys", str(bad), "--server-key", str(tmp_path / "server.key")]
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and f"{bad}:2" in r.stderr and "40 Z85" in r.stderr, r.stderr
    bad.write_text('clients = ( { name = "u"; key = "%s"; role = "unit"; scope = "NOPE"; } );'
                   % ("a" * 40))
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "NOPE" in r.stderr, r.stderr
    d.extra_args = ["--keys", str(bad)]
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--server-key" in r.stderr, r.stderr


def test_development_mode_serves_loopback_only(tmp_path):
    d = Daemon(workdir=str(tmp_path))
    d.endpoint = f"tcp://0.0.0.0:{free_port()}"
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "loopback only" in r.stderr, r.stderr
    d = Daemon(workdir=str(tmp_path))
    d.extra_args = ["--worker-endpoint", f"tcp://0.0.0.0:{free_port()}"]
    r = subprocess.run(d.command(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "ipc:// or loopback" in r.stderr, r.stderr


def test_the_cli_talks_to_a_keyed_daemon_with_key_files(secure):
    k = secure.keys_dir
    r = gridline("--endpoint", secure.endpoint, "--key", os.path.join(k, "hotline.key"),
                 "--server-key", os.path.join(k, "server.pub"), "--json", "list", "--limit", "1")
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, GRIDLINE_KEY=os.path.join(k, "grid2.key"),
               GRIDLINE_SERVER_KEY=os.path.join(k, "server.pub"))
    r = subprocess.run([os.path.join(build_dir(), "gridline"), "--endpoint", secure.endpoint,
                        "stats", "--by", "unit"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and "forbidden" in (r.stderr + r.stdout), r.stderr
    r = gridline("--endpoint", secure.endpoint, "--timeout", "500", "--key",
                 os.path.join(k, "server.pub"), "--server-key", os.path.join(k, "server.pub"),
                 "list")
    assert r.returncode != 0 and "no secret key" in r.stderr, r.stderr


def test_sighup_reads_the_keys_file_again(tmp_path):
    """Added principals connect without a restart; a removed one is refused on the
    connection it already has; a keys file with an error changes nothing."""
    folder = str(tmp_path)
    server_pub, _ = keygen(folder, "server")
    pairs = {name: keygen(folder, name) for name in ("admin", "newcomer", "leaver")}
    keys = tmp_path / "clients.cfg"

    def write_keys(*names):
        keys.write_text("clients = (\n" + ",\n".join(
            f'{{ name = "{n}"; key = "{pairs[n][0].decode()}"; role = "admin"; }}'
            for n in names) + "\n);\n")

    def log_has(text):
        return text in open(d.stderr_path, errors="replace").read()

    write_keys("admin", "leaver")
    d = Daemon(workdir=folder, extra_args=["--routers", "0", "--escalators", "0", "--keys",
                                           str(keys), "--server-key", f"{folder}/server.key"])
    d.curve = pairs["admin"] + (server_pub,)
    try:
        d.start()
        early = d.client(timeout=1.0, curve=pairs["newcomer"] + (server_pub,))
        try:
            early.sock.send_multipart([b"", b"MDPC01", b"catalog.get", pack({})], zmq.NOBLOCK)
            assert early.recv_frames(1.0) is None, "an unlisted key was answered"
        except zmq.Again:
            pass   # the refused handshake dropped the connection first: refused too
        early.close()
        leaver = d.client(timeout=5.0, curve=pairs["leaver"] + (server_pub,))
        assert leaver.call("catalog.get", {}).ok

        write_keys("admin", "newcomer")
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: log_has("read again on SIGHUP"), 5, what="the reload")
        newcomer = d.client(timeout=5.0, curve=pairs["newcomer"] + (server_pub,))
        assert newcomer.call("catalog.get", {}).ok
        gone = leaver.call("catalog.get", {})
        assert gone.error_code == "unauthenticated", gone.describe()

        keys.write_text('clients = (\n { name = "x"; key = "short"; role = "admin"; }\n);\n')
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: log_has("still serving the 2 client(s)"), 5, what="the refusal")
        assert log_has(f"{keys}:2")
        assert newcomer.call("catalog.get", {}).ok
        d.stop()
    finally:
        d.cleanup()
