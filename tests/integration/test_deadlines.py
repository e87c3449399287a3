"""SLA deadlines and escalation over the wire, with limits of seconds (issue 4, items 3
and 7).

Every test runs the real gridlined, its router and its gridline-escalator processes
(or, with --escalators 0, an MDP/0.1 escalation worker written here from RFC 7) on a
test configuration whose SLA classes count wall-clock seconds:

    emergency  accept 1 s, resolve 2 s, warn at 25 %   (the climbing case)
    utility    accept 2 s, resolve 4 s, warn at 50 %
    standard   the same as utility
    complex    accept 1 h, resolve 2 h                  (cases on which nothing is due)

Sanitation cases go, for want of a rule, to their community's service centre; roads
cases in D01 to the D01 housing bureau (a department).

What is pinned:
- a dispatched case gets `warned` at warn_at, `urged` after accept_by when not signed
  for, `escalated` after resolve_by to the unit above (community centre -> street office
  of its street -> the district's department for the category -> CITY-SUPERVISION) with
  level + 1 and deadlines counted afresh from the escalation, and at the top
  `supervised`; each exactly once per set of deadlines, by the actor "escalator", with a
  note, at its due time or at most LAG_MS after it;
- a case signed for in time is never urged; a case resolved in time gets nothing more;
  an approved extension moves resolve_by (and the warning with it) and the escalation
  waits for the new limit;
- a restart in the middle of the countdown, by SIGTERM and by kill -9: what fell due
  while the daemon was down acts exactly once, promptly, after the restart; what had
  acted before does not act again; later deadlines still act on time;
- with --escalators 0 nothing acts (and `gridline overdue` lists the case); a foreign
  worker registering for "gridline.escalate" then gets the due deadlines, one per case
  at a time, and its decisions (not the built-in policy's) are committed; a decision on
  a stale version is discarded and the deadline handed out again.
"""

import json
import os
import subprocess
import sys
import threading
import time

import msgpack
import pytest
import zmq

from gridline_harness import MDPC, Daemon, build_dir, unique_request_id  # noqa: F401

LAG_MS = 1500          # how late an escalator event may be after its due time
POLL_S = 0.05

# (warn, accept, resolve) in ms, per SLA class of the test configuration
EMERGENCY = {"warn": 500, "accept": 1000, "resolve": 2000}
UTILITY = {"warn": 2000, "accept": 2000, "resolve": 4000}

TEST_CITY = """
# SLA classes of seconds for the deadline tests (the codes the default categories use).
sla = (
  { code = "emergency"; accept_within = "1s"; resolve_within = "2s"; clock = "wall"; warn_ratio = 0.25; },
  { code = "utility";   accept_within = "2s"; resolve_within = "4s"; clock = "wall"; warn_ratio = 0.5; },
  { code = "standard";  accept_within = "2s"; resolve_within = "4s"; clock = "wall"; warn_ratio = 0.5; },
  { code = "complex";   accept_within = "1h"; resolve_within = "2h"; clock = "wall"; warn_ratio = 0.5; }
);
# Roads in D01 to the housing bureau; everything else to the case's community centre.
routing = (
  { category = "roads"; place = "D01"; unit = "D01-HOUSING"; }
);
duplicates = { window = "1s"; distance_m = 1.0; };
"""

# The event types the escalator writes, and the deadline each answers.
KIND_OF = {"warned": "warn", "urged": "accept", "escalated": "resolve", "supervised": "resolve"}
# Events that give a case a fresh set of deadlines, and events after which it has none.
NEW_PERIOD = ("dispatched", "reassigned", "reopened")
NO_DEADLINES = ("resolved", "returned", "withdrawn", "merged", "closed", "callback")


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------
# daemons


def _register_for_report(request, d):
    """Show the daemon's stderr when the test fails (conftest's report hook)."""
    m = sys.modules.get("conftest")
    if m is not None and hasattr(m, "_register"):
        m._register(request, d)


@pytest.fixture
def gl(request):
    """A factory: gl(args=()) starts a daemon on the test city in a fresh folder. Every
    daemon still running at the end is stopped with SIGTERM and must exit 0."""
    made = []

    def make(args=(), start=True):
        d = Daemon(extra_args=())
        path = os.path.join(d.workdir, "city.cfg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(TEST_CITY)
        d.extra_args = ["--config", path] + list(args)
        made.append(d)
        _register_for_report(request, d)
        if start:
            d.start()
        return d

    yield make
    try:
        for d in made:
            if d.alive():
                d.stop()
    finally:
        for d in made:
            d.cleanup()


def worker_endpoint(d):
    return "ipc://" + os.path.join(os.path.realpath(d.data), "workers.ipc")


def gridline_cli(*args, endpoint):
    argv = [os.path.join(build_dir(), "gridline"), "--endpoint", endpoint] + list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


# --------------------------------------------------------------------------------------
# cases


class Desk:
    def __init__(self, client):
        self.c = client

    def create(self, category, urgency, path):
        d, s, m, g = path
        body = {
            "request_id": unique_request_id("dl"),
            "channel": "hotline",
            "category": category,
            "urgency": urgency,
            "description": "deadline test case",
            "location": {"district": d, "street": s, "community": m, "grid": g},
        }
        return self.c.ok("case.create", body)["case"]["id"]

    def get(self, cid, history=False):
        b = self.c.ok("case.get", {"id": cid, "history": history})
        return (b["case"], b.get("history")) if history else b["case"]

    def act(self, cid, action, **fields):
        b = {"id": cid, "action": action}
        b.update(fields)
        return self.c.ok("case.act", b)["case"]

    def dispatched(self, cid, timeout=5.0):
        return self.wait(cid, lambda c, h: c["state"] != "registered", timeout,
                         "dispatched")[0]

    def wait(self, cid, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            c, h = self.get(cid, True)
            if pred(c, h):
                return c, h
            if time.monotonic() > deadline:
                raise AssertionError(f"case {cid}: not {what} after {timeout}s: "
                                     f"{types(h)}\n{c!r}")
            time.sleep(POLL_S)


def types(history):
    return [e["type"] for e in history]


def has(history, t, n=1):
    return types(history).count(t) >= n


def escalator_events(history):
    return [e for e in history if e["type"] in KIND_OF and e["actor"] == "escalator"]


def check_deadline_history(case, history, cls, snapshot_ms, down=None):
    """Replays a case's history against its SLA class `cls` ({warn, accept, resolve} in
    ms): within each set of deadlines (from a dispatch or an escalation) each deadline
    acts at most once, by the escalator, at its due time or at most LAG_MS after it; an
    urge never follows the signing for; nothing acts on a resolved case; nothing that
    was due more than LAG_MS before `snapshot_ms` is missing. down = (stopped_ms,
    restarted_ms, ready_ms): nothing acts while the daemon is down, and what fell due
    before the restart acts at most LAG_MS after it was ready. Returns the periods as
    (base_ms, fired kinds)."""
    cid = case["id"]
    periods = []
    period = None   # {"base", "fired", "accepted"}
    for e in history:
        t = e["type"]
        where = f"case {cid}: {t} at {e['at']} in {types(history)}"
        if t in NEW_PERIOD:
            period = {"base": e["at"], "fired": set(), "accepted": False}
            periods.append(period)
        elif t == "accepted":
            assert period is not None, where
            period["accepted"] = True
        elif t in NO_DEADLINES:
            period = None
        elif t == "extension_approved":
            raise AssertionError("check_deadline_history does not model extensions")
        elif t in KIND_OF:
            assert e["actor"] == "escalator", f"{where}: actor {e['actor']!r}"
            assert isinstance(e["note"], str) and e["note"].strip(), f"{where}: note {e!r}"
            assert period is not None, f"{where}: the case had no pending deadline"
            kind = KIND_OF[t]
            assert kind not in period["fired"], f"{where}: the {kind} deadline acted twice"
            if kind == "accept":
                assert not period["accepted"], f"{where}: urged after it was signed for"
            due = period["base"] + cls[kind]
            at = e["at"]
            if down is not None and at >= down[0]:
                stopped, restarted, ready = down
                assert at >= restarted, f"{where}: acted while the daemon was down {down}"
                if due < restarted:
                    assert at <= ready + LAG_MS, (f"{where}: due {due} while down, acted "
                                                  f"{at - ready} ms after the restart")
                else:
                    assert due <= at <= due + LAG_MS, f"{where}: due {due}, {at - due} ms late"
            else:
                assert due <= at <= due + LAG_MS, f"{where}: due {due}, {at - due} ms late"
            period["fired"].add(kind)
            if t == "escalated":
                period = {"base": at, "fired": set(), "accepted": False}
                periods.append(period)
    if period is not None:
        for kind in ("warn", "accept", "resolve"):
            if kind in period["fired"] or (kind == "accept" and period["accepted"]):
                continue
            due = period["base"] + cls[kind]
            assert due + LAG_MS >= snapshot_ms, (
                f"case {cid}: the {kind} deadline due at {due} has not acted "
                f"{snapshot_ms - due} ms later: {types(history)}")
        # The case as stored holds that period's deadlines, and the ones acted on.
        assert case["warn_at"] == period["base"] + cls["warn"], (case, period)
        assert case["accept_by"] == period["base"] + cls["accept"], (case, period)
        assert case["resolve_by"] == period["base"] + cls["resolve"], (case, period)
        bits = {"warn": 1, "accept": 2, "resolve": 4}
        assert case["deadlines_fired"] == sum(bits[k] for k in period["fired"]), (case, period)
    return [(p["base"], p["fired"]) for p in periods]


def escalations(history):
    return [(e["unit"], e["at"]) for e in history if e["type"] == "escalated"]


# --------------------------------------------------------------------------------------
# a foreign escalation worker, MDP/0.1 from RFC 7

MDPW = b"MDPW01"
W_READY, W_REQUEST, W_REPLY, W_HEARTBEAT, W_DISCONNECT = (b"\x01", b"\x02", b"\x03",
                                                          b"\x04", b"\x05")


class EscalationWorker(threading.Thread):
    """Registers for "gridline.escalate"; decide(item) -> a decision map or None (left
    out). Records every task it gets."""

    def __init__(self, endpoint, decide):
        super().__init__(daemon=True, name="py-escalator")
        self.endpoint = endpoint
        self.decide = decide
        self.tasks = []          # (ms received, body)
        self.errors = []
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self):
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(self.endpoint)
            sock.send_multipart([b"", MDPW, W_READY, b"gridline.escalate"])
            last = time.monotonic()
            while not self._halt.is_set():
                if time.monotonic() - last >= 1.0:
                    sock.send_multipart([b"", MDPW, W_HEARTBEAT])
                    last = time.monotonic()
                if not sock.poll(20, zmq.POLLIN):
                    continue
                fr = sock.recv_multipart()
                if len(fr) < 3 or fr[0] != b"" or fr[1] != MDPW:
                    self.errors.append(f"malformed: {fr!r}")
                    continue
                if fr[2] == W_REQUEST:
                    client, body = fr[3], msgpack.unpackb(fr[5], raw=False,
                                                          strict_map_key=False)
                    with self._lock:
                        self.tasks.append((now_ms(), body))
                    ds = [d for d in (self.decide(it) for it in body["items"]) if d is not None]
                    sock.send_multipart([b"", MDPW, W_REPLY, client, b"",
                                         msgpack.packb({"decisions": ds}, use_bin_type=True)])
                    last = time.monotonic()
                elif fr[2] == W_DISCONNECT:
                    sock.close(0)
                    sock = zmq.Context.instance().socket(zmq.DEALER)
                    sock.setsockopt(zmq.LINGER, 0)
                    sock.connect(self.endpoint)
                    sock.send_multipart([b"", MDPW, W_READY, b"gridline.escalate"])
            sock.send_multipart([b"", MDPW, W_DISCONNECT])
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.errors.append(repr(e))
        finally:
            sock.close(0)

    def stop(self):
        self._halt.set()
        self.join(5)
        assert not self.is_alive(), "the Python escalator did not stop"
        assert not self.errors, self.errors

    def snapshot(self):
        with self._lock:
            return list(self.tasks)


# --------------------------------------------------------------------------------------
# the whole countdown, with the daemon's own escalator


P_CLIMB = ("D01", "D01-S01", "D01-S01-C01", "D01-S01-C01-G01")
P_DEPT = ("D01", "D01-S02", "D01-S02-C01", "D01-S02-C01-G01")
P_ACCEPTED = ("D01", "D01-S01", "D01-S01-C02", "D01-S01-C02-G01")
P_RESOLVED = ("D01", "D01-S02", "D01-S02-C02", "D01-S02-C02-G01")
P_LATE_RESOLVED = ("D02", "D02-S02", "D02-S02-C01", "D02-S02-C01-G01")
P_EXTENDED = ("D02", "D02-S01", "D02-S01-C01", "D02-S01-C01-G01")
P_QUIET = ("D03", "D03-S01", "D03-S01-C01", "D03-S01-C01-G01")


def test_deadlines_warn_urge_escalate_and_supervise_on_time(gl):
    d = gl()
    desk = Desk(d.client())
    climb = desk.create("sanitation", "emergency", P_CLIMB)          # never touched
    dept = desk.create("roads", "emergency", P_DEPT)                 # at a department
    accepted = desk.create("sanitation", "urgent", P_ACCEPTED)       # signed for at once
    resolved = desk.create("sanitation", "urgent", P_RESOLVED)       # resolved at once
    late = desk.create("sanitation", "urgent", P_LATE_RESOLVED)      # resolved once warned
    extended = desk.create("sanitation", "urgent", P_EXTENDED)       # given 7 s, not 4
    quiet = desk.create("civil_affairs", "normal", P_QUIET)          # 1 h / 2 h
    for cid in (climb, dept, accepted, resolved, late, extended, quiet):
        desk.dispatched(cid)
    assert desk.get(climb)["unit"] == "D01-S01-C01-CENTRE"
    assert desk.get(dept)["unit"] == "D01-HOUSING"

    desk.act(accepted, "accept")
    desk.act(resolved, "accept")
    desk.act(resolved, "resolve", reply="fixed")
    desk.act(late, "accept")
    desk.act(extended, "accept")
    ext0 = desk.get(extended)
    until = ext0["dispatched_at"] + 7000
    desk.act(extended, "extend", until=until, reason="needs a part")
    ext = desk.act(extended, "approve_extension")
    assert ext["resolve_by"] == until, ext
    # The warning moves with the limit: at the same share (50 %) of the longer time.
    assert abs(ext["warn_at"] - (ext["dispatched_at"] + 3500)) <= 1, ext
    assert ext["accept_by"] == ext0["accept_by"]

    # Run the countdown: resolve `late` once it has been warned; stop when the climbing
    # case is supervised and the extended one has escalated.
    deadline = time.monotonic() + 14
    late_resolved = False
    while True:
        if not late_resolved:
            c, h = desk.get(late, True)
            if has(h, "warned"):
                assert c["state"] == "accepted", c
                desk.act(late, "resolve", reply="fixed after the warning")
                late_resolved = True
        _, hc = desk.get(climb, True)
        _, he = desk.get(extended, True)
        if has(hc, "supervised") and has(he, "escalated") and late_resolved:
            break
        assert time.monotonic() < deadline, (types(hc), types(he))
        time.sleep(POLL_S)
    time.sleep(0.3)
    snap = now_ms()
    got = {cid: desk.get(cid, True) for cid in (climb, dept, accepted, resolved, late,
                                                 extended, quiet)}

    # The climbing case: three escalations, then supervision; nothing after that.
    c, h = got[climb]
    assert types(h) == ["created", "dispatched",
                        "warned", "urged", "escalated",
                        "warned", "urged", "escalated",
                        "warned", "urged", "escalated",
                        "warned", "urged", "supervised"], types(h)
    check_deadline_history(c, h, EMERGENCY, snap)
    assert [u for u, _ in escalations(h)] == ["D01-S01-OFFICE", "D01-URBAN",
                                              "CITY-SUPERVISION"], escalations(h)
    for e in h:
        if e["type"] in KIND_OF:
            assert e["state"] == "dispatched", e
    assert c["unit"] == "CITY-SUPERVISION" and c["level"] == 3, c
    assert c["supervised"] is True and c["state"] == "dispatched", c
    assert c["deadlines_fired"] == 7, c
    assert c["version"] == 2 + 12, c     # one version per event after the dispatch
    assert "D01-URBAN" in h[10]["note"] and "CITY-SUPERVISION" in h[10]["note"], h[10]

    # At a department: straight to supervision, then supervised.
    c, h = got[dept]
    assert types(h) == ["created", "dispatched", "warned", "urged", "escalated",
                        "warned", "urged", "supervised"], types(h)
    check_deadline_history(c, h, EMERGENCY, snap)
    assert [u for u, _ in escalations(h)] == ["CITY-SUPERVISION"]
    assert c["level"] == 1 and c["supervised"] is True, c

    # Signed for in time: warned, never urged; escalated at resolve_by, to be signed for
    # again at the street office (what follows there is the escalator's too).
    c, h = got[accepted]
    t = types(h)
    first = t.index("escalated")
    assert t[:first + 1] == ["created", "dispatched", "accepted", "warned", "escalated"], t
    check_deadline_history(c, h, UTILITY, snap)
    assert escalations(h)[0][0] == "D01-S01-OFFICE", escalations(h)
    assert c["level"] >= 1, c

    # Resolved in time: nothing from the escalator, ever.
    c, h = got[resolved]
    assert types(h) == ["created", "dispatched", "accepted", "resolved"], types(h)
    assert c["deadlines_fired"] == 0, c
    # Resolved after the warning: the warning, and nothing more.
    c, h = got[late]
    assert types(h) == ["created", "dispatched", "accepted", "warned", "resolved"], types(h)
    check_deadline_history(c, h, UTILITY, snap)
    assert c["level"] == 0 and c["unit"] == "D02-S02-C01-CENTRE", c

    # The extension: warned at the moved warning, escalated at the new limit only.
    c, h = got[extended]
    t = types(h)
    first = t.index("escalated")
    assert t[:first + 1] == ["created", "dispatched", "accepted", "extension_requested",
                             "extension_approved", "warned", "escalated"], t
    warned, esc = h[5], h[first]
    assert ext["warn_at"] <= warned["at"] <= ext["warn_at"] + LAG_MS, (warned, ext)
    assert until <= esc["at"] <= until + LAG_MS, (esc, until)
    assert esc["unit"] == "D02-S01-OFFICE" and esc["actor"] == "escalator", esc
    # From the escalation on, an ordinary set of deadlines.
    check_deadline_history(c, [{"type": "dispatched", "at": esc["at"]}] + h[first + 1:],
                           UTILITY, snap)

    # A case whose deadlines are an hour away: nothing.
    c, h = got[quiet]
    assert types(h) == ["created", "dispatched"], types(h)

    # gridline overdue: the cases past accept_by unsigned, or past resolve_by unresolved.
    rc, out, err = gridline_cli("--json", "overdue", "--limit", "500", endpoint=d.endpoint)
    assert rc == 0, (out, err)
    listed = {c["id"] for c in json.loads(out)["cases"]}
    assert {climb, dept} <= listed, (listed, out[:2000])
    assert not ({resolved, late, quiet} & listed), listed
    rc, out, err = gridline_cli("overdue", endpoint=d.endpoint)
    assert rc == 0, (out, err)
    assert got[climb][0]["code"] in out and got[quiet][0]["code"] not in out, out


# --------------------------------------------------------------------------------------
# a restart in the middle of the countdown


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_restart_mid_countdown_acts_on_each_deadline_once(gl, how):
    d = gl()
    desk = Desk(d.client())
    slow = desk.create("sanitation", "urgent", P_CLIMB)       # warn 2 s, accept 2 s, resolve 4 s
    fast = desk.create("sanitation", "emergency", P_ACCEPTED)  # warn .5 s, accept 1 s, resolve 2 s
    s0 = desk.dispatched(slow)
    desk.dispatched(fast)
    # The fast case's warning and urge act before the stop; nothing of the slow one does.
    desk.wait(fast, lambda c, h: has(h, "warned") and has(h, "urged"), 3.0, "warned and urged")
    stopped = now_ms()
    assert stopped < s0["warn_at"] - 100, ("too slow to stop before the warning",
                                           stopped, s0["warn_at"])
    if how == "sigterm":
        d.stop()
    else:
        d.kill9()
    # Down until every deadline of the slow case (and the fast one's escalation) is due.
    time.sleep(max(0.0, (s0["resolve_by"] + 400 - now_ms()) / 1000))
    restarted = now_ms()
    d.start()
    ready = now_ms()
    desk = Desk(d.client())
    down = (stopped, restarted, ready)

    # What fell due while down acts once, promptly, in order.
    cs, hs = desk.wait(slow, lambda c, h: has(h, "escalated"), LAG_MS / 1000 + 2, "escalated")
    assert types(hs) == ["created", "dispatched", "warned", "urged", "escalated"], types(hs)
    for e in hs[2:]:
        assert restarted <= e["at"] <= ready + LAG_MS, (e, down)
    assert hs[4]["unit"] == "D01-S01-OFFICE" and cs["level"] == 1, (hs[4], cs)
    cf, hf = desk.wait(fast, lambda c, h: has(h, "escalated"), 2.0, "escalated")
    assert types(hf)[:5] == ["created", "dispatched", "warned", "urged", "escalated"], types(hf)

    # Later deadlines still act on time: the slow case's new warning and urge (2 s after
    # its escalation), the fast one's new warning, urge and escalation.
    esc_at = hs[4]["at"]
    desk.wait(slow, lambda c, h: has(h, "warned", 2) and has(h, "urged", 2),
              (esc_at + 2000 + LAG_MS - now_ms()) / 1000 + 0.5, "warned and urged again")
    desk.wait(fast, lambda c, h: has(h, "escalated", 2),
              (hf[4]["at"] + 2000 + LAG_MS - now_ms()) / 1000 + 0.5, "escalated twice")
    time.sleep(0.2)
    snap = now_ms()
    cs, hs = desk.get(slow, True)
    cf, hf = desk.get(fast, True)
    check_deadline_history(cs, hs, UTILITY, snap, down)
    check_deadline_history(cf, hf, EMERGENCY, snap, down)
    assert [u for u, _ in escalations(hf)][:2] == ["D01-S01-OFFICE", "D01-URBAN"], hf
    # Before the stop: the fast case's warning and urge, once each, never again after.
    before = [e["type"] for e in hf if e["at"] < stopped and e["type"] in KIND_OF]
    assert before == ["warned", "urged"], hf
    if how == "sigterm":
        assert "stopping" in d.stderr_text()


# --------------------------------------------------------------------------------------
# no escalator of the daemon's own; a foreign one


def test_without_escalators_nothing_acts_until_a_foreign_worker_decides(gl):
    d = gl(args=["--escalators", "0"])
    desk = Desk(d.client())
    case_id = desk.create("sanitation", "emergency", P_CLIMB)
    quiet = desk.create("civil_affairs", "normal", P_QUIET)
    c0 = desk.dispatched(case_id)
    desk.dispatched(quiet)
    time.sleep(max(0.0, (c0["resolve_by"] + 500 - now_ms()) / 1000))
    c, h = desk.get(case_id, True)
    assert types(h) == ["created", "dispatched"], types(h)
    assert c["deadlines_fired"] == 0 and c["level"] == 0, c

    # Overdue all the same.
    rc, out, err = gridline_cli("--json", "overdue", endpoint=d.endpoint)
    assert rc == 0, (out, err)
    listed = [x["id"] for x in json.loads(out)["cases"]]
    assert listed == [case_id], out[:2000]

    # A foreign worker: its own outcomes and unit; the first decision on a stale version.
    stale_sent = []

    def decide(it):
        cs = it["case"]
        kind = it["deadline"]
        if not stale_sent:
            stale_sent.append(kind)
            return {"id": cs["id"], "version": cs["version"] - 1, "deadline": kind,
                    "outcome": "warn", "unit": None, "reason": "stale"}
        outcome, unit = {"warn": ("warn", None), "accept": ("urge", None),
                         "resolve": ("escalate", "D03-JUSTICE")}[kind]
        return {"id": cs["id"], "version": cs["version"], "deadline": kind,
                "outcome": outcome, "unit": unit, "reason": f"py {kind}"}

    w = EscalationWorker(worker_endpoint(d), decide)
    w.start()
    try:
        c, h = desk.wait(case_id, lambda c, h: has(h, "escalated"), 5.0, "escalated")
    finally:
        w.stop()
    assert types(h)[:5] == ["created", "dispatched", "warned", "urged", "escalated"], types(h)
    for e, note in zip(h[2:5], ("py warn", "py accept", "py resolve")):
        assert e["actor"] == "escalator" and e["note"] == note, e
    assert types(h).count("warned") == 1, types(h)     # the stale decision wrote nothing
    assert h[4]["unit"] == "D03-JUSTICE", h[4]
    c = desk.get(case_id)
    assert c["unit"] == "D03-JUSTICE" and c["level"] == 1 and c["state"] == "dispatched", c
    assert c["accept_by"] == h[4]["at"] + EMERGENCY["accept"], (c, h[4])

    tasks = w.snapshot()
    items = [(it["case"]["id"], it["case"]["version"], it["deadline"])
             for _, body in tasks for it in body["items"]]
    # The stale warn was handed out again; then one deadline at a time, each on the
    # case's version of the moment; the quiet case never.
    assert items[:4] == [(case_id, 2, "warn"), (case_id, 2, "warn"), (case_id, 3, "accept"),
                         (case_id, 4, "resolve")], items
    for got_ms, body in tasks:
        assert set(body) == {"now", "items"}, body
        assert abs(body["now"] - got_ms) <= 1000, (body["now"], got_ms)
        ids = [it["case"]["id"] for it in body["items"]]
        assert len(ids) == len(set(ids)), body
    assert all(it[0] != quiet for it in items), items


def test_an_undecided_deadline_is_not_handed_out_in_a_spin(gl):
    d = gl(args=["--escalators", "0"])
    desk = Desk(d.client())
    c0 = desk.dispatched(desk.create("sanitation", "emergency", P_CLIMB))
    time.sleep(max(0.0, (c0["warn_at"] + 100 - now_ms()) / 1000))
    w = EscalationWorker(worker_endpoint(d), lambda it: None)
    w.start()
    time.sleep(1.0)
    w.stop()
    n = len(w.snapshot())
    assert n >= 1
    assert n <= 20, f"{n} tasks in one second for one undecided deadline"
