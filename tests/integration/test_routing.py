"""Routing with real worker processes (issue 3).

Every test runs the real gridlined with real routing workers over real sockets: the
daemon's own gridline-router processes (--routers N), or MDP/0.1 workers written here
in Python from RFC 7 alone (a DEALER on the daemon's worker endpoint, READY for
"gridline.route", REQUEST/REPLY, HEARTBEAT, DISCONNECT).

What is pinned:
- every case ends `dispatched` at the unit its rules name (an independent Python model
  of the policy in workers/route_policy.h, fed the rules of protocol/default_city.cfg
  or of a test configuration), with exactly one `dispatched` event (actor "router",
  a note) and accept_by/resolve_by = dispatch time + the SLA class's limits;
- rule precedence (grid > community > street > district > no place; a rule naming the
  category beats one without at the same place; then the first written) and the
  territorial fallback chain (community centre, street office, a department of the
  district handling the category, any unit of the district, supervision);
- duplicates: same category in the same grid cell, or within distance_m by
  coordinates, within the window; links lead to the root; nothing is dropped;
- cases registered while no router is up wait, and are routed once one is;
- a foreign worker routes; a worker that stalls loses its task after --task-timeout,
  its late reply is dropped, and every case is still dispatched exactly once;
- kill -9 of routers under load, and of the daemon itself: nothing unrouted, nothing
  routed twice, the restarts logged, no router left behind by a dead daemon;
- latency: p99 of (dispatched event - created) under 1 s after a 3 s flood.
"""

import math
import os
import random
import re
import signal
import sys
import threading
import time

import pytest
import zmq

from gridline_harness import (Daemon, fetch_catalog, flood, list_all, pack,
                              pid_alive as alive, unique_request_id, unpack, wait_until,
                              worker_children, workers_of_data_dir)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CFG = os.path.normpath(os.path.join(HERE, "..", "..", "protocol", "default_city.cfg"))

SERVICE = b"gridline.route"
MDPW = b"MDPW01"
W_READY, W_REQUEST, W_REPLY, W_HEARTBEAT, W_DISCONNECT = (b"\x01", b"\x02", b"\x03",
                                                          b"\x04", b"\x05")
DEADLINE_SLACK_MS = 5


# --------------------------------------------------------------------------------------
# daemons


def _register_for_report(request, d):
    """Show the daemon's stderr when the test fails (conftest's report hook)."""
    m = sys.modules.get("conftest")
    if m is not None and hasattr(m, "_register"):
        m._register(request, d)


@pytest.fixture
def gl(request):
    """A factory: gl(routers=2, args=(), config=None) starts a daemon on a fresh
    folder (config: the text of a city file written there). Every daemon still running
    at the end is stopped with SIGTERM and must exit 0."""
    made = []

    def make(routers=2, args=(), config=None, start=True):
        d = Daemon(extra_args=())
        extra = ["--routers", str(routers)] + list(args)
        if config is not None:
            path = os.path.join(d.workdir, "city.cfg")
            with open(path, "w", encoding="utf-8") as f:
                f.write(config)
            extra += ["--config", path]
        d.extra_args = extra
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


# --------------------------------------------------------------------------------------
# cases


def loc_of(path, depth=4):
    """A location map for a (district, street, community, grid) path cut to `depth`."""
    keys = ("district", "street", "community", "grid")
    return {k: v for k, v in zip(keys[:depth], path[:depth]) if v is not None}


def new_case(category, location, urgency="normal", request_id=None, **over):
    b = {
        "request_id": request_id or unique_request_id("route"),
        "channel": "hotline",
        "urgency": urgency,
        "description": "routing test case",
        "location": dict(location),
    }
    if category is not None:
        b["category"] = category
    b.update(over)
    return b


def create_all(client, bodies):
    """case.create each body (pipelined); returns the cases, in order."""
    out = []
    for r, b in zip(client.pipeline([("case.create", b) for b in bodies], timeout=15), bodies):
        assert r.ok, f"case.create {b!r} -> {r.describe()}"
        out.append(r.body["case"])
    return out


def get_cases(client, ids, history=True):
    """case.get (with history) for every id; returns {id: (case, history)}."""
    ids = list(ids)
    reps = client.pipeline([("case.get", {"id": i, "history": history}) for i in ids],
                           window=128, timeout=30)
    out = {}
    for i, r in zip(ids, reps):
        assert r.ok, f"case.get {i} -> {r.describe()}"
        out[i] = (r.body["case"], r.body.get("history"))
    return out


def wait_dispatched(client, ids, timeout=10.0):
    """Waits until every case in ids has left `registered`; returns {id: (case, hist)}."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        got = get_cases(client, ids)
        waiting = [i for i, (c, _) in got.items() if c["state"] == "registered"]
        if not waiting:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(waiting)} of {len(ids)} case(s) still registered "
                                 f"after {timeout}s, e.g. {waiting[:10]}")
        time.sleep(0.05)


def dispatched_events(history):
    return [e for e in history if e["type"] == "dispatched"]


def sla_limits(catalog_body, category, urgency):
    """(accept_within_ms, resolve_within_ms) of the case's SLA class: the category's
    class for the urgency; the city's first class without a category (daemon/sla.h)."""
    classes = {s["code"]: s for s in catalog_body["sla"]}
    if category is None:
        cls = catalog_body["sla"][0]
    else:
        cat = next(c for c in catalog_body["categories"] if c["code"] == category)
        cls = classes[cat["sla"][urgency]]
    return cls["accept_within_ms"], cls["resolve_within_ms"]


def sla_clock(catalog_body, category, urgency):
    """"wall" or "working" for the case's SLA class."""
    classes = {s["code"]: s for s in catalog_body["sla"]}
    if category is None:
        return catalog_body["sla"][0]["clock"]
    cat = next(c for c in catalog_body["categories"] if c["code"] == category)
    return classes[cat["sla"][urgency]]["clock"]


def check_deadline(deadline, start, span, clock):
    """A wall-clock deadline is start + span exactly; one counted in working time on the
    city's calendar is at least that (nights, weekends and holidays do not count)."""
    if clock == "wall":
        return abs(deadline - (start + span)) <= DEADLINE_SLACK_MS
    return deadline >= start + span - DEADLINE_SLACK_MS


def check_routed_once(case, history, catalog_body, unit=None, note=None):
    """The case is dispatched, once, by the router, with deadlines from its SLA class."""
    cid = case["id"]
    assert case["state"] == "dispatched", f"case {cid}: {case['state']}: {case!r}"
    if unit is not None:
        assert case["unit"] == unit, (f"case {cid} ({case['category']} at "
                                      f"{case['location']}): unit {case['unit']}, expected "
                                      f"{unit}; history {history!r}")
    assert case["version"] == 2, f"case {cid}: version {case['version']} after one dispatch"
    assert case["level"] == 0
    types = [e["type"] for e in history]
    assert types == ["created", "dispatched"], f"case {cid}: history {types}: {history!r}"
    ev = dispatched_events(history)[0]
    assert ev["actor"] == "router", f"case {cid}: dispatched by {ev['actor']!r}"
    assert isinstance(ev["note"], str) and ev["note"].strip(), f"case {cid}: note {ev!r}"
    if note is not None:
        assert ev["note"] == note, f"case {cid}: note {ev['note']!r}, expected {note!r}"
    assert ev["unit"] == case["unit"] and ev["state"] == "dispatched", ev
    assert ev["case_id"] == cid and ev["code"] == case["code"], ev
    assert ev["at"] >= case["created_at"], (ev, case["created_at"])
    assert abs(case["updated_at"] - ev["at"]) <= DEADLINE_SLACK_MS, (case["updated_at"], ev)
    acc, res = sla_limits(catalog_body, case["category"], case["urgency"])
    clock = sla_clock(catalog_body, case["category"], case["urgency"])
    assert case["accept_by"] is not None and case["resolve_by"] is not None, case
    assert check_deadline(case["accept_by"], ev["at"], acc, clock), (
        f"case {cid} ({case['category']}, {case['urgency']}): accept_by {case['accept_by']}"
        f" != dispatched {ev['at']} + {acc}")
    assert check_deadline(case["resolve_by"], ev["at"], res, clock), (
        f"case {cid} ({case['category']}, {case['urgency']}): resolve_by "
        f"{case['resolve_by']} != dispatched {ev['at']} + {res}")
    return ev


# --------------------------------------------------------------------------------------
# an independent model of the policy (workers/route_policy.h, protocol/default_city.cfg)


_RULE_RE = re.compile(r"\{([^{}]*)\}")
_KV_RE = re.compile(r'(\w+)\s*=\s*"([^"]*)"\s*;')


def parse_rules(cfg_text):
    """The `routing = ( ... );` list of a city file as [(category, place, unit)]."""
    m = re.search(r"^routing\s*=\s*\((.*?)^\);", cfg_text, re.S | re.M)
    assert m, "no routing section"
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    body = re.sub(r"(#|//)[^\n]*", "", body)
    rules = []
    for g in _RULE_RE.findall(body):
        kv = dict(_KV_RE.findall(g))
        rules.append((kv.get("category"), kv.get("place"), kv["unit"]))
    return rules


class Policy:
    """Which unit a case goes to, from the catalogue and the routing rules alone."""

    def __init__(self, catalog_body, rules):
        self.units = catalog_body["units"]
        self.rules = rules
        self.parent, self.depth = {}, {}
        for d in catalog_body["places"]:
            self.depth[d["code"]] = 1
            for s in d.get("streets") or []:
                self.parent[s["code"]], self.depth[s["code"]] = d["code"], 2
                for c in s.get("communities") or []:
                    self.parent[c["code"]], self.depth[c["code"]] = s["code"], 3
                    for g in c.get("grids") or []:
                        self.parent[g["code"]], self.depth[g["code"]] = c["code"], 4

    def chain(self, loc):
        place = next(loc[k] for k in ("grid", "community", "street", "district") if loc.get(k))
        out = []
        while place is not None:
            out.append(place)
            place = self.parent.get(place)
        return out

    def unit(self, category, loc):
        chain = self.chain(loc)
        best, best_key = None, None
        for cat, place, unit in self.rules:
            if cat is not None and cat != category:
                continue
            if place is not None and place not in chain:
                continue
            key = (self.depth.get(place, 0), cat is not None)
            if best_key is None or key > best_key:
                best, best_key = unit, key
        if best is not None:
            return best
        by_level = {self.depth[p]: p for p in chain}
        community, street, district = by_level.get(3), by_level.get(2), by_level.get(1)
        steps = [
            lambda u: u["kind"] == "community_centre" and community and u["place"] == community,
            lambda u: u["kind"] == "street_office" and street and u["place"] == street,
            lambda u: (u["kind"] == "department" and u["place"] == district
                       and (not u["categories"] or category in u["categories"])),
            lambda u: u["place"] == district,
            lambda u: u["kind"] == "supervision",
        ]
        for ok in steps:
            for u in self.units:
                if ok(u):
                    return u["code"]
        raise AssertionError("no unit at all")


def default_policy(catalog_body):
    with open(DEFAULT_CFG, encoding="utf-8") as f:
        return Policy(catalog_body, parse_rules(f.read()))


# --------------------------------------------------------------------------------------
# a foreign MDP/0.1 worker, written from RFC 7


class ForeignWorker(threading.Thread):
    """A routing worker in Python. decide(item) -> a decision map, or None to leave
    the item out. stall: take tasks and never answer them. late_reply: once the broker
    has said DISCONNECT, answer the task it held anyway. delay: seconds before each
    answer. On DISCONNECT an honest worker reconnects and says READY again (RFC 7)."""

    def __init__(self, endpoint, decide=None, stall=False, late_reply=None, delay=0.0,
                 heartbeat_s=1.0, name="foreign"):
        super().__init__(daemon=True, name=name)
        self.endpoint = endpoint
        self.decide = decide
        self.stall = stall
        self.late_reply = late_reply
        self.delay = delay
        self.heartbeat_s = heartbeat_s
        self.tasks = []           # (monotonic time received, client frame, body)
        self.heartbeats_in = 0
        self.disconnects = 0
        self.replies = 0
        self.late_replies = 0
        self.errors = []
        self.got_task = threading.Event()
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.sock = None

    # the socket belongs to this thread
    def _connect(self):
        if self.sock is not None:
            self.sock.close(0)
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.endpoint)
        self.sock.send_multipart([b"", MDPW, W_READY, SERVICE])
        self.last_sent = time.monotonic()

    def _send(self, frames):
        self.sock.send_multipart(frames)
        self.last_sent = time.monotonic()

    def _answer(self, client, body, decide):
        items = body["items"]
        decisions = [d for d in (decide(it) for it in items) if d is not None]
        self._send([b"", MDPW, W_REPLY, client, b"", pack({"decisions": decisions})])

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))
        finally:
            if self.sock is not None:
                self.sock.close(0)

    def _run(self):
        self._connect()
        held = None
        disconnected = False
        while not self._halt.is_set():
            if not disconnected and time.monotonic() - self.last_sent >= self.heartbeat_s:
                self._send([b"", MDPW, W_HEARTBEAT])
            if not self.sock.poll(20, zmq.POLLIN):
                continue
            fr = self.sock.recv_multipart()
            if len(fr) < 3 or fr[0] != b"" or fr[1] != MDPW:
                self.errors.append(f"malformed message from the broker: {fr!r}")
                continue
            cmd = fr[2]
            if cmd == W_REQUEST:
                if len(fr) != 6 or fr[4] != b"":
                    self.errors.append(f"malformed REQUEST: {fr!r}")
                    continue
                client, body = fr[3], unpack(fr[5])
                with self._lock:
                    self.tasks.append((time.monotonic(), client, body))
                self.got_task.set()
                if self.stall:
                    held = (client, body)
                    continue
                if self.delay:
                    time.sleep(self.delay)
                self._answer(client, body, self.decide)
                self.replies += 1
            elif cmd == W_HEARTBEAT:
                self.heartbeats_in += 1
            elif cmd == W_DISCONNECT:
                self.disconnects += 1
                if self.stall:
                    disconnected = True
                    if held is not None and self.late_reply is not None:
                        self._answer(held[0], held[1], self.late_reply)
                        self.late_replies += 1
                        held = None
                else:
                    self._connect()
            else:
                self.errors.append(f"unknown command {cmd!r}: {fr!r}")
        if not disconnected:
            self._send([b"", MDPW, W_DISCONNECT])

    def stop(self):
        self._halt.set()
        self.join(5)
        assert not self.is_alive(), f"{self.name} did not stop"
        assert not self.errors, f"{self.name}: {self.errors}"

    def case_ids(self):
        with self._lock:
            return [it["case"]["id"] for _, _, b in self.tasks for it in b["items"]]


def decision(item, unit, reason, **over):
    c = item["case"]
    d = {"id": c["id"], "version": c["version"], "unit": unit, "duplicate_of": None,
         "reason": reason}
    d.update(over)
    return d


# --------------------------------------------------------------------------------------
# floods


def flood_body_maker(cat, prefix):
    paths = cat.full_paths()
    cats = cat.categories
    urg = ("normal", "urgent", "emergency")

    def make(n):
        p = paths[(n * 7) % len(paths)]
        return new_case(cats[n % len(cats)], loc_of(p), urgency=urg[n % 3],
                        request_id=f"{prefix}-{n:07d}")
    return make


def all_cases(client):
    return {c["id"]: c for c in list_all(client, limit=500)}


def check_store_routed(client, acked_ids, policy, histories="all"):
    """After a flood: nothing is registered; every acknowledged case is dispatched
    once (version 2: created + one dispatch) at the unit the policy names, linked to
    the oldest case of its category and grid cell; the histories (all, or a sample)
    hold exactly one dispatched event by the router."""
    assert list_all(client, {"state": "registered"}, limit=500) == []
    cases = all_cases(client)
    missing = [i for i in acked_ids if i not in cases]
    assert not missing, f"{len(missing)} acknowledged case(s) not in the store: {missing[:10]}"
    first_of = {}
    for i in sorted(cases):
        c = cases[i]
        first_of.setdefault((c["category"], c["location"]["grid"]), i)
    bad = []
    for i in acked_ids:
        c = cases[i]
        root = first_of[(c["category"], c["location"]["grid"])]
        want_dup = None if root == i else root
        want_unit = policy.unit(c["category"], c["location"])
        if (c["state"] != "dispatched" or c["version"] != 2 or c["unit"] != want_unit
                or c["duplicate_of"] != want_dup):
            bad.append((i, c["state"], c["version"], c["unit"], want_unit,
                        c["duplicate_of"], want_dup))
    assert not bad, (f"{len(bad)} of {len(acked_ids)} acknowledged case(s) not routed once "
                     f"as the rules say: (id, state, version, unit, expected unit, "
                     f"duplicate_of, expected) {bad[:10]}")
    ids = sorted(acked_ids)
    if histories != "all":
        ids = random.Random(7).sample(ids, min(histories, len(ids)))
    got = get_cases(client, ids)
    twice = [(i, [e["type"] for e in h]) for i, (_, h) in got.items()
             if [e["type"] for e in h] != ["created", "dispatched"]
             or dispatched_events(h)[0]["actor"] != "router"]
    assert not twice, f"{len(twice)} case(s) with another history than one dispatch: {twice[:10]}"
    return cases, got


# --------------------------------------------------------------------------------------
# processes


def router_children(pid):
    """The pids of the gridline-router processes whose parent is pid."""
    return worker_children(pid, "gridline-router")


def routers_of_data_dir(data):
    """Live gridline-router processes whose command line names this data folder."""
    return workers_of_data_dir(data, "gridline-router")


def percentile(values, p):
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(math.ceil(p / 100.0 * len(v))) - 1))
    return v[k]


# ======================================================================================
# 1. every case reaches the unit its rules name, once, with its deadlines


def test_every_case_is_dispatched_to_its_rule_unit_once_with_sla_deadlines(gl):
    d = gl(routers=2)
    c = d.client()
    cat = fetch_catalog(c)
    policy = default_policy(cat.body)
    P = {p[3]: p for p in cat.full_paths()}

    # a handful pinned by hand from default_city.cfg's rules and the fallback chain
    pinned = [
        ("street_lights", loc_of(P["D01-S01-C01-G01"]), "normal", "D01-HOUSING"),
        ("public_security", loc_of(P["D02-S01-C01-G02"]), "urgent", "D02-POLICE"),
        ("legal_aid", loc_of(P["D03-S02-C02-G03"]), "normal", "D03-JUSTICE"),
        ("water_supply", loc_of(P["D03-S01-C02-G01"]), "normal", "D03-HOUSING"),
        ("health", loc_of(P["D01-S02-C01-G01"], 2), "urgent", "D01-HEALTH"),
        ("education", loc_of(P["D02-S02-C01-G01"]), "emergency", "CITY-EDU"),
        ("information_services", loc_of(P["D01-S02-C02-G03"]), "normal", "CITY-INFO"),
        ("culture_sport", {"district": "D03"}, "urgent", "CITY-CULTURE"),
        # no category: only category-less rules (none here): the territorial fallback
        (None, loc_of(P["D02-S02-C02-G01"]), "normal", "D02-S02-C02-CENTRE"),
        (None, loc_of(P["D03-S01-C02-G02"], 3), "urgent", "D03-S01-C02-CENTRE"),
        (None, loc_of(P["D03-S01-C01-G01"], 2), "normal", "D03-S01-OFFICE"),
        # district alone: no department takes "no category" -> the district's first unit
        (None, {"district": "D01"}, "normal", "D01-CIVIL"),
    ]
    # the SLA mapping pinned too (default_city.cfg): utility for water even when normal
    assert sla_limits(cat.body, "water_supply", "normal") == (2 * 3600_000, 24 * 3600_000)
    assert sla_limits(cat.body, "legal_aid", "normal") == (7 * 3600_000, 105 * 3600_000)  # 1 and 15 working days of 7 h

    # and every category at every depth of a spread of places, checked with the model
    rng = random.Random(3)
    spread = []
    for k, category in enumerate(cat.categories + [None]):
        for depth in (1, 2, 3, 4):
            p = rng.choice(cat.full_paths())
            spread.append((category, loc_of(p, depth), ("normal", "urgent", "emergency")[k % 3],
                           None))
    bodies = [new_case(cg, loc, urgency=u) for cg, loc, u, _ in pinned + spread]
    created = create_all(c, bodies)
    assert all(x["state"] == "registered" and x["unit"] is None for x in created)
    got = wait_dispatched(c, [x["id"] for x in created], timeout=10)

    for (cg, loc, u, want), x in zip(pinned + spread, created):
        case, hist = got[x["id"]]
        model = policy.unit(cg, loc)
        if want is not None:
            assert model == want, f"the test's model disagrees with the pinned unit: {cg} {loc}"
        check_routed_once(case, hist, cat.body, unit=model)
    # duplicates in this batch (same category and grid): the later joins the first
    first = {}
    for x in created:
        case, _ = got[x["id"]]
        key = (case["category"], case["location"].get("grid"))
        if case["category"] is None or key[1] is None:
            assert case["duplicate_of"] is None, case
            continue
        first.setdefault(key, case["id"])
        want = None if first[key] == case["id"] else first[key]
        assert case["duplicate_of"] == want, (case["id"], key, case["duplicate_of"], want)

    # nothing else happens to a dispatched case: no second dispatch a moment later
    time.sleep(1.2)
    again = get_cases(c, [x["id"] for x in created])
    for i, (case, hist) in again.items():
        assert case["version"] == 2 and len(dispatched_events(hist)) == 1, (i, hist)


# ======================================================================================
# 2. rule precedence and the fallback chain, with a test configuration


def _cfg_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def units_section(units):
    lines = ["units = ("]
    for k, u in enumerate(units):
        parts = [f"code = {_cfg_str(u['code'])};", f"name = {_cfg_str(u['name'])};",
                 f"kind = {_cfg_str(u['kind'])};"]
        if u.get("place"):
            parts.append(f"place = {_cfg_str(u['place'])};")
        if u.get("categories"):
            parts.append("categories = [" + ", ".join(_cfg_str(x) for x in u["categories"])
                         + "];")
        lines.append("  { " + " ".join(parts) + " }" + ("," if k + 1 < len(units) else ""))
    lines.append(");")
    return "\n".join(lines)


def routing_section(rules):
    lines = ["routing = ("]
    for k, (cg, place, unit) in enumerate(rules):
        parts = []
        if cg is not None:
            parts.append(f"category = {_cfg_str(cg)};")
        if place is not None:
            parts.append(f"place = {_cfg_str(place)};")
        parts.append(f"unit = {_cfg_str(unit)};")
        lines.append("  { " + " ".join(parts) + " }" + ("," if k + 1 < len(rules) else ""))
    lines.append(");")
    return "\n".join(lines)


# units left out of the test city, so that each fallback step can be reached:
# Peach Garden has no centre (-> its street office); Stone Steps has neither a centre
# nor a street office (-> a department of D02, or any unit of D02); D03 has no unit at
# all (-> supervision).
DROPPED = {"D02-S02-C01-CENTRE", "D02-S01-OFFICE", "D02-S01-C02-CENTRE"}

PRECEDENCE_RULES = [
    # sanitation: written from the least to the most specific place
    ("sanitation", None, "T-ANYWHERE"),
    ("sanitation", "D01", "T-DISTRICT"),
    ("sanitation", "D01-S01", "T-STREET"),
    ("sanitation", "D01-S01-C01", "T-COMMUNITY"),
    ("sanitation", "D01-S01-C01-G01", "T-GRID"),
    # roads: the same, written from the most to the least specific
    ("roads", "D01-S01-C01-G01", "T-GRID"),
    ("roads", "D01-S01-C01", "T-COMMUNITY"),
    ("roads", "D01-S01", "T-STREET"),
    ("roads", "D01", "T-DISTRICT"),
    ("roads", None, "T-ANYWHERE"),
    # at one place: the rule naming the category beats the one without, though written
    # after it; a nearer category-less rule still beats a farther category rule
    (None, "D01-S02-C02", "T-ANYCAT-HERE"),
    ("sanitation", "D01-S02-C02", "T-CAT-HERE"),
    # equals: the first written wins
    ("health", "D01-S02", "T-FIRST"),
    ("health", "D01-S02", "T-SECOND"),
    # a rule for the city-wide bureau, kept
    ("education", None, "CITY-EDU"),
]


def precedence_city(catalog_body):
    units = [u for u in catalog_body["units"]
             if u["code"] not in DROPPED and u["place"] not in ("D03",)
             and not (u["place"] or "").startswith("D03-")]
    test_units = sorted({r[2] for r in PRECEDENCE_RULES if r[2].startswith("T-")})
    units += [{"code": t, "name": f"Test unit {t}", "kind": "department", "place": None,
               "categories": []} for t in test_units]
    text = ("# test city: routing precedence and the fallback chain\n"
            + units_section(units) + "\n" + routing_section(PRECEDENCE_RULES) + "\n")
    return text, units


def test_rule_precedence_and_territorial_fallback(gl):
    probe = gl(routers=0)
    base = fetch_catalog(probe.client()).body
    probe.stop()
    text, units = precedence_city(base)
    d = gl(routers=1, config=text)
    c = d.client()
    cat = fetch_catalog(c)
    assert [u["code"] for u in cat.body["units"]] == [u["code"] for u in units], \
        "the daemon did not take the test city's units"
    policy = Policy(cat.body, PRECEDENCE_RULES)
    P = {p[3]: p for p in cat.full_paths()}
    G = lambda g, depth=4: loc_of(P[g], depth)  # noqa: E731

    table = [
        # nearest place wins, whatever the order written
        ("sanitation", G("D01-S01-C01-G01"), "T-GRID"),
        ("sanitation", G("D01-S01-C01-G02"), "T-COMMUNITY"),
        ("sanitation", G("D01-S01-C01-G02", 3), "T-COMMUNITY"),
        ("sanitation", G("D01-S01-C02-G01"), "T-STREET"),
        ("sanitation", G("D01-S02-C01-G01"), "T-DISTRICT"),
        ("sanitation", G("D02-S02-C02-G01"), "T-ANYWHERE"),
        ("sanitation", {"district": "D01"}, "T-DISTRICT"),
        ("roads", G("D01-S01-C01-G01"), "T-GRID"),
        ("roads", G("D01-S01-C01-G03"), "T-COMMUNITY"),
        ("roads", G("D01-S01-C02-G02"), "T-STREET"),
        ("roads", G("D01-S02-C01-G02"), "T-DISTRICT"),
        ("roads", G("D03-S01-C01-G01"), "T-ANYWHERE"),
        # category beats category-less at one place; nearer category-less beats farther
        ("sanitation", G("D01-S02-C02-G01"), "T-CAT-HERE"),
        ("roads", G("D01-S02-C02-G02"), "T-ANYCAT-HERE"),
        (None, G("D01-S02-C02-G03"), "T-ANYCAT-HERE"),
        ("employment", G("D01-S02-C02-G01"), "T-ANYCAT-HERE"),
        # first written among equals
        ("health", G("D01-S02-C01-G01"), "T-FIRST"),
        ("health", G("D01-S02-C02-G01", 2), "T-FIRST"),
        ("education", G("D02-S01-C01-G01"), "CITY-EDU"),
        # no rule: the community's centre, else the street office, else a department
        # of the district for the category, else any unit of the district, else
        # supervision
        ("employment", G("D01-S01-C02-G02"), "D01-S01-C02-CENTRE"),
        ("health", G("D01-S01-C01-G03"), "D01-S01-C01-CENTRE"),
        (None, G("D02-S01-C01-G02"), "D02-S01-C01-CENTRE"),
        ("employment", G("D02-S02-C01-G02"), "D02-S02-OFFICE"),
        ("employment", G("D01-S01-C01-G01", 2), "D01-S01-OFFICE"),
        ("employment", G("D02-S01-C02-G01"), "D02-HRSS"),
        ("civil_affairs", G("D02-S01-C02-G02", 3), "D02-CIVIL"),
        ("public_security", {"district": "D02"}, "D02-POLICE"),
        ("culture_sport", G("D02-S01-C02-G01"), "D02-CIVIL"),
        (None, {"district": "D02"}, "D02-CIVIL"),
        ("employment", G("D03-S02-C01-G01"), "CITY-SUPERVISION"),
        (None, G("D03-S01-C02-G02", 2), "CITY-SUPERVISION"),
    ]
    for cg, loc, want in table:
        assert policy.unit(cg, loc) == want, f"model: {cg} at {loc} -> {policy.unit(cg, loc)}"
    created = create_all(c, [new_case(cg, loc) for cg, loc, _ in table])
    got = wait_dispatched(c, [x["id"] for x in created], timeout=10)
    wrong = []
    for (cg, loc, want), x in zip(table, created):
        case, hist = got[x["id"]]
        if case["unit"] != want:
            wrong.append((cg, loc, case["unit"], want, dispatched_events(hist)[:1]))
        else:
            check_routed_once(case, hist, cat.body, unit=want)
    assert not wrong, "routed elsewhere than the rules say (category, location, unit, " \
                      "expected, event):\n" + "\n".join(map(repr, wrong))

    # the router read the same file: its log says how many rules it has
    assert re.search(rf"gridline-router router-1: .*{len(PRECEDENCE_RULES)} routing rules",
                     d.stderr_text()), d.stderr_tail()


# ======================================================================================
# 3. duplicates


def offset(lat, lon, north_m, east_m):
    """A point north_m metres north and east_m metres east of (lat, lon)."""
    r = 6371008.8
    return (lat + math.degrees(north_m / r),
            lon + math.degrees(east_m / (r * math.cos(math.radians(lat)))))


DUP_CFG = 'duplicates = { window = "2s"; distance_m = 50.0; };\n'


def test_duplicates_same_grid_or_within_distance(gl):
    d = gl(routers=2, config=DUP_CFG)
    c = d.client()
    cat = fetch_catalog(c)
    P = {p[3]: p for p in cat.full_paths()}
    G = lambda g: loc_of(P[g])  # noqa: E731

    # same grid cell: the later cases join the first; another category does not
    a = create_all(c, [new_case("sanitation", G("D01-S01-C01-G01")),
                       new_case("sanitation", G("D01-S01-C01-G01")),
                       new_case("roads", G("D01-S01-C01-G01")),
                       new_case("sanitation", G("D01-S01-C01-G01")),
                       new_case("sanitation", G("D01-S01-C01-G02")),
                       new_case(None, G("D01-S01-C01-G01")),
                       new_case(None, G("D01-S01-C01-G01"))])
    # coordinates (distance_m = 50): other cells, 30 m away -> a duplicate; 80 m -> not
    lat0, lon0 = 22.5431, 114.0579
    n30 = offset(lat0, lon0, 30, 0)
    s80 = offset(lat0, lon0, -80, 0)
    e45 = offset(lat0, lon0, 0, 45)
    b = create_all(c, [
        new_case("health", dict(G("D03-S01-C01-G01"), lat=lat0, lon=lon0)),
        new_case("health", dict(G("D03-S01-C01-G02"), lat=n30[0], lon=n30[1])),
        new_case("health", dict(G("D03-S01-C01-G03"), lat=s80[0], lon=s80[1])),
        new_case("health", dict(G("D03-S01-C02-G01"), lat=e45[0], lon=e45[1])),
        # no coordinates, another cell: nothing to match
        new_case("health", G("D03-S01-C02-G02")),
        # close by, but another category
        new_case("roads", dict(G("D03-S02-C01-G01"), lat=lat0, lon=lon0)),
    ])
    got = wait_dispatched(c, [x["id"] for x in a + b], timeout=5)
    dup = {i: got[i][0]["duplicate_of"] for i in got}
    a1, a2, a3, a4, a5, a6, a7 = (x["id"] for x in a)
    assert dup[a1] is None
    assert dup[a2] == a1, "same category, same grid cell: a duplicate of the first"
    assert dup[a3] is None, "another category is another problem"
    assert dup[a4] == a1, "the third report joins the first (the root), not the second"
    assert dup[a5] is None, "another grid cell without coordinates is another problem"
    assert dup[a6] is None and dup[a7] is None, "a case without a category repeats nothing"
    b1, b2, b3, b4, b5, b6 = (x["id"] for x in b)
    assert dup[b1] is None
    assert dup[b2] == b1, "30 m away, within distance_m 50: a duplicate"
    assert dup[b3] is None, "80 m away, beyond distance_m 50 (the test city's, not 100)"
    assert dup[b4] == b1, "45 m away from the first: joins it"
    assert dup[b5] is None
    assert dup[b6] is None
    # a duplicate is still dispatched to the unit its rules name: nothing is dropped
    policy = default_policy(cat.body)
    for i, (case, hist) in got.items():
        check_routed_once(case, hist, cat.body, unit=policy.unit(case["category"],
                                                                 case["location"]))
    note = dispatched_events(got[a2][1])[0]["note"]
    assert str(a1) in note, f"the note does not say which case it joined: {note!r}"


def test_duplicates_window(gl):
    """duplicates.window = 2 s: a report older than that is another problem."""
    d = gl(routers=1, config=DUP_CFG)
    c = d.client()
    cat = fetch_catalog(c)
    P = {p[3]: p for p in cat.full_paths()}
    G = lambda g: loc_of(P[g])  # noqa: E731
    lat0, lon0 = 22.5431, 114.0579
    n30 = offset(lat0, lon0, 30, 0)
    t0 = time.monotonic()
    first = create_all(c, [new_case("sanitation", G("D01-S01-C01-G01")),
                           new_case("sanitation", G("D01-S01-C01-G01")),
                           new_case("health", dict(G("D03-S01-C01-G01"), lat=lat0, lon=lon0)),
                           new_case("health", dict(G("D03-S01-C01-G02"), lat=n30[0],
                                                   lon=n30[1]))])
    got = wait_dispatched(c, [x["id"] for x in first], timeout=5)
    f1, f2, f3, f4 = (got[x["id"]][0] for x in first)
    assert time.monotonic() - t0 < 1.5, "too slow for the 2 s window; the test proves nothing"
    assert f2["duplicate_of"] == f1["id"] and f4["duplicate_of"] == f3["id"], \
        "within the window: duplicates (the control)"
    time.sleep(max(0.0, 2.3 - (time.monotonic() - t0)))
    late = create_all(c, [new_case("sanitation", G("D01-S01-C01-G01")),
                          new_case("sanitation", G("D01-S01-C01-G01")),
                          new_case("health", dict(G("D03-S01-C01-G03"), lat=n30[0],
                                                  lon=n30[1] + 0.0001))])
    got = wait_dispatched(c, [x["id"] for x in late], timeout=5)
    l1, l2, l3 = (got[x["id"]][0] for x in late)
    assert l1["duplicate_of"] is None, "the open reports in its cell are older than 2 s"
    assert l2["duplicate_of"] == l1["id"], "within the window of the new first report"
    assert l3["duplicate_of"] is None, "the reports close by are older than 2 s"


def test_duplicate_of_a_duplicate_points_at_the_root(gl):
    """C2 joins C1 by distance (another grid cell); C3, in C2's cell without
    coordinates, is the same problem as C2, an open case of its category in its cell
    (issue 3: it gets duplicate_of), and route_policy.h: "if it is itself a duplicate,
    the decision points at the case it joined", so C3 joins C1. Each case is created
    after the one before is dispatched."""
    d = gl(routers=1)
    c = d.client()
    cat = fetch_catalog(c)
    P = {p[3]: p for p in cat.full_paths()}
    G = lambda g: loc_of(P[g])  # noqa: E731
    lat0, lon0 = 22.5431, 114.0579
    n30 = offset(lat0, lon0, 30, 0)
    c1 = create_all(c, [new_case("roads", dict(G("D02-S01-C01-G01"), lat=lat0, lon=lon0))])[0]
    wait_dispatched(c, [c1["id"]], timeout=5)
    c2 = create_all(c, [new_case("roads", dict(G("D02-S01-C01-G02"), lat=n30[0],
                                                lon=n30[1]))])[0]
    wait_dispatched(c, [c2["id"]], timeout=5)
    c3 = create_all(c, [new_case("roads", G("D02-S01-C01-G02"))])[0]
    got = wait_dispatched(c, [c1["id"], c2["id"], c3["id"]], timeout=5)
    assert got[c2["id"]][0]["duplicate_of"] == c1["id"]
    case3, hist3 = got[c3["id"]]
    check_routed_once(case3, hist3, cat.body, unit="D02-HOUSING")
    assert case3["duplicate_of"] == c1["id"], (
        f"case {c3['id']} (roads, {case3['location']['grid']}): duplicate_of "
        f"{case3['duplicate_of']}, expected the root {c1['id']} (via {c2['id']}); note "
        f"{dispatched_events(hist3)[0]['note']!r}")


def test_duplicate_chain_created_back_to_back_points_at_the_root(gl):
    """Like the chain above, without waiting between creates: the three cases are
    likely decided in one task. C3's only candidate is C2, which is itself about to be
    linked to C1 in the same task."""
    d = gl(routers=1)
    c = d.client()
    cat = fetch_catalog(c)
    P = {p[3]: p for p in cat.full_paths()}
    lat0, lon0 = 31.2304, 121.4737
    n30 = offset(lat0, lon0, 30, 0)
    failures = []
    for k, g in enumerate(["D02-S02-C01-G01", "D02-S02-C02-G01", "D01-S02-C01-G01"]):
        grid2 = {"D02-S02-C01-G01": "D02-S02-C01-G02", "D02-S02-C02-G01": "D02-S02-C02-G02",
                 "D01-S02-C01-G01": "D01-S02-C01-G02"}[g]
        x = create_all(c, [
            new_case("sewers", dict(loc_of(P[g]), lat=lat0 + k, lon=lon0)),
            new_case("sewers", dict(loc_of(P[grid2]), lat=n30[0] + k, lon=n30[1])),
            new_case("sewers", loc_of(P[grid2])),
        ])
        got = wait_dispatched(c, [y["id"] for y in x], timeout=5)
        ids = [y["id"] for y in x]
        links = [got[i][0]["duplicate_of"] for i in ids]
        if links != [None, ids[0], ids[0]]:
            failures.append((ids, links, [dispatched_events(got[i][1])[0]["note"]
                                          for i in ids]))
    assert not failures, ("a duplicate links to a case that is itself a duplicate "
                          "(ids, duplicate_of, notes): " + repr(failures))


# ======================================================================================
# returns (退单) and decisions for cases that moved on


def wait_state(client, cid, state, version, timeout=5.0):
    """Waits until case cid is in `state` at `version`; returns (case, history)."""
    last = []

    def ready():
        case, hist = get_cases(client, [cid])[cid]
        last[:] = [case]
        return (case, hist) if case["state"] == state and case["version"] == version else None
    try:
        return wait_until(ready, timeout, what=f"case {cid} {state} at version {version}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen {last[0] if last else None!r}") from None


@pytest.mark.parametrize("max_returns, units", [
    (2, ["D01-HOUSING", "D01-S01-C01-CENTRE", "CITY-SUPERVISION"]),
    (3, ["D01-HOUSING", "D01-S01-C01-CENTRE", "D01-S01-OFFICE", "CITY-SUPERVISION"]),
])
def test_returned_case_is_routed_again_never_to_a_unit_that_returned_it(gl, max_returns,
                                                                          units):
    cfg = None if max_returns == 2 else f"max_returns = {max_returns};\n"
    d = gl(routers=1, config=cfg)
    c = d.client()
    cat = fetch_catalog(c)
    P = {p[3]: p for p in cat.full_paths()}
    first, case = create_all(c, [new_case("street_lights", loc_of(P["D01-S01-C01-G01"])),
                                 new_case("street_lights", loc_of(P["D01-S01-C01-G01"]),
                                          urgency="urgent")])
    cid, version = case["id"], 2
    for k, unit in enumerate(units):
        got, hist = wait_state(c, cid, "dispatched", version)
        assert got["unit"] == unit, (k, got["unit"], unit, hist[-1])
        assert got["return_count"] == k and got["duplicate_of"] == first["id"], got
        ev = hist[-1]
        assert ev["type"] == "dispatched" and ev["actor"] == "router" and ev["unit"] == unit
        acc, res = sla_limits(cat.body, "street_lights", "urgent")
        clock = sla_clock(cat.body, "street_lights", "urgent")
        assert check_deadline(got["accept_by"], ev["at"], acc, clock), (got, ev)
        assert check_deadline(got["resolve_by"], ev["at"], res, clock), (got, ev)
        if k + 1 < len(units):
            r = c.ok("case.act", {"id": cid, "action": "return", "version": version,
                                  "reason": f"not ours ({unit})"})
            assert r["case"]["state"] in ("returned", "dispatched"), r
            version += 2
    types = [e["type"] for e in hist]
    assert types == ["created"] + ["dispatched", "returned"] * (len(units) - 1) + ["dispatched"]
    assert [e["unit"] for e in hist if e["type"] == "dispatched"] == units
    assert "supervision" in hist[-1]["note"], hist[-1]
    time.sleep(0.3)
    again, hist2 = get_cases(c, [cid])[cid]
    assert again["version"] == version and len(hist2) == len(hist), "routed again after all"


def test_decision_for_a_case_that_moved_on_is_discarded(gl):
    """A worker decides on version 1 of two cases while, meanwhile, one is withdrawn
    and the other supervised (version 2): both decisions are discarded; the withdrawn
    case stays withdrawn, the supervised one is given out again and decided on its
    version 2."""
    d = gl(routers=0)
    c = d.client()
    cat = fetch_catalog(c)
    a, b = create_all(c, [new_case("roads", loc_of(cat.full_paths()[0])),
                          new_case("roads", loc_of(cat.full_paths()[7]))])
    w = ForeignWorker(worker_endpoint(d), delay=0.8,
                      decide=lambda it: decision(it, "CITY-INFO",
                                                 f"decided on version {it['case']['version']}"))
    w.start()
    try:
        assert w.got_task.wait(5)
        assert sorted(w.case_ids()) == sorted([a["id"], b["id"]])
        c.ok("case.act", {"id": a["id"], "action": "withdraw", "version": 1})
        c.ok("case.act", {"id": b["id"], "action": "supervise", "version": 1})
        gb, hb = wait_state(c, b["id"], "dispatched", 3)
        time.sleep(0.3)
        got = get_cases(c, [a["id"], b["id"]])
    finally:
        w.stop()
    ga, ha = got[a["id"]]
    assert ga["state"] == "withdrawn" and ga["unit"] is None, ga
    assert [e["type"] for e in ha] == ["created", "withdrawn"], ha
    gb, hb = got[b["id"]]
    assert gb["supervised"] is True and gb["unit"] == "CITY-INFO", gb
    assert [e["type"] for e in hb] == ["created", "supervised", "dispatched"], hb
    assert hb[-1]["note"] == "decided on version 2", hb[-1]
    offers = w.case_ids()
    assert offers.count(a["id"]) == 1, "a withdrawn case is not given out again"
    assert offers.count(b["id"]) == 2, offers


# ======================================================================================
# 4. cases registered while no router is up


def test_cases_wait_without_routers_and_are_routed_when_routers_come(gl):
    d = gl(routers=0)
    c = d.client()
    cat = fetch_catalog(c)
    make = flood_body_maker(cat, f"wait-{os.getpid()}")
    created = create_all(c, [make(n) for n in range(200)])
    ids = [x["id"] for x in created]
    time.sleep(1.2)   # longer than the daemon's periodic look for work
    waiting = list_all(c, {"state": "registered"}, limit=500)
    assert sorted(x["id"] for x in waiting) == sorted(ids)
    assert all(x["version"] == 1 and x["unit"] is None for x in waiting)
    assert "gridline-router" not in d.stderr_text()

    d.stop()
    d.extra_args[d.extra_args.index("--routers") + 1] = "2"
    t0 = time.monotonic()
    d.start()
    c = d.client()
    wait_until(lambda: not list_all(c, {"state": "registered"}, limit=500), 5.0,
               what="the 200 waiting cases to be routed after the restart with routers")
    took = time.monotonic() - t0
    check_store_routed(c, ids, default_policy(cat.body))
    got = get_cases(c, ids)
    for i, (case, hist) in got.items():
        check_routed_once(case, hist, cat.body)
    print(f"\n200 waiting cases routed {took:.2f} s after the restart with 2 routers")


# ======================================================================================
# 5. foreign workers


def test_foreign_worker_registers_and_routes(gl):
    d = gl(routers=0)
    c = d.client()
    cat = fetch_catalog(c)
    # a unit of the foreign worker's own choosing, which the rules would never name
    centres = [u["code"] for u in cat.body["units"] if u["kind"] == "community_centre"]
    mine = centres[-1]
    bodies = [new_case(cat.categories[n % len(cat.categories)],
                       loc_of(cat.full_paths()[n % 20]), urgency="urgent") for n in range(30)]
    before = create_all(c, bodies)
    time.sleep(0.3)
    assert all(x["state"] == "registered" for x in list_all(c, {"state": "registered"}))

    w = ForeignWorker(worker_endpoint(d),
                      decide=lambda it: decision(it, mine, f"foreign policy: {it['case']['id']}"))
    w.start()
    try:
        got = wait_dispatched(c, [x["id"] for x in before], timeout=5)
        # and cases created while it is up
        after = create_all(c, [new_case("roads", loc_of(p)) for p in cat.full_paths()[10:20]])
        got.update(wait_dispatched(c, [x["id"] for x in after], timeout=5))
        # RFC 7: the broker heartbeats an idle worker (every 2.5 s)
        wait_until(lambda: w.heartbeats_in >= 1, 4, what="a HEARTBEAT from the broker")
    finally:
        w.stop()
    assert w.disconnects == 0, "the broker dropped a worker that heartbeats"
    for i, (case, hist) in got.items():
        check_routed_once(case, hist, cat.body, unit=mine, note=f"foreign policy: {i}")
    assert sorted(set(w.case_ids())) == sorted(got), "every case came to the worker"
    assert len(w.case_ids()) == len(got), "no case was given out twice"
    # the task is what route_task.h says
    now = time.time() * 1000
    for t, _, body in w.tasks:
        assert set(body) == {"now", "items"}, body.keys()
        assert isinstance(body["now"], int) and abs(body["now"] - now) < 30_000
        for it in body["items"]:
            assert set(it) == {"case", "candidates"}, it.keys()
            assert it["case"]["state"] == "registered" and it["case"]["version"] == 1
            assert it["case"]["unit"] is None and "returned_by" in it["case"]
            assert isinstance(it["candidates"], list)
            for k in it["candidates"]:
                assert {"id", "category", "grid", "lat", "lon", "created_at",
                        "duplicate_of"} <= set(k), k
                assert k["id"] < it["case"]["id"] and k["category"] == it["case"]["category"]
    # the second batch's roads cases in cells that already had a roads case: candidates
    first_roads = {}
    for x in before:
        if x["category"] == "roads":
            first_roads.setdefault(x["location"]["grid"], x["id"])
    checked = 0
    after_ids = {x["id"] for x in after}
    for _, _, body in w.tasks:
        for it in body["items"]:
            cs = it["case"]
            if cs["id"] in after_ids and cs["location"]["grid"] in first_roads:
                root = first_roads[cs["location"]["grid"]]
                assert root in [k["id"] for k in it["candidates"]], it
                assert got[cs["id"]][0]["duplicate_of"] is None, \
                    "the daemon must commit the worker's duplicate_of (nil), not its own"
                checked += 1
    assert checked >= 1
    assert re.search(r"worker \S+ ready for gridline\.route", d.stderr_text()), d.stderr_tail()
    wait_until(lambda: re.search(r"worker \S+ \(gridline\.route\) disconnected",
                                 d.stderr_text()), 3, what="the DISCONNECT to be logged")


def test_foreign_worker_bad_decisions_are_not_committed_and_given_out_again(gl):
    d = gl(routers=0)
    c = d.client()
    cat = fetch_catalog(c)
    created = create_all(c, [new_case("sanitation", loc_of(p)) for p in cat.full_paths()[:12]])
    ids = [x["id"] for x in created]
    seen = {}
    lock = threading.Lock()

    def decide(it):
        i = it["case"]["id"]
        with lock:
            n = seen[i] = seen.get(i, 0) + 1
        if n == 1:   # even ids: a unit the city does not have; odd ids: no decision
            return decision(it, "NO-SUCH-UNIT", "bogus") if i % 2 == 0 else None
        if n == 2:   # a decision for a version the case does not have
            return decision(it, "CITY-SUPERVISION", "stale", version=it["case"]["version"] + 7)
        if n == 3:   # a case cannot duplicate itself
            return decision(it, "CITY-SUPERVISION", "self", duplicate_of=i)
        return decision(it, "CITY-SUPERVISION", f"good {i}")

    w = ForeignWorker(worker_endpoint(d), decide=decide)
    w.start()
    try:
        got = wait_dispatched(c, ids, timeout=8)
    finally:
        w.stop()
    for i, (case, hist) in got.items():
        check_routed_once(case, hist, cat.body, unit="CITY-SUPERVISION", note=f"good {i}")
        assert case["duplicate_of"] is None
        assert seen[i] >= 4, f"case {i} dispatched after {seen[i]} offer(s)"
    assert "NO-SUCH-UNIT" in d.stderr_text(), "a refused decision is logged"


def test_stalled_worker_loses_its_task_after_the_timeout(gl):
    d = gl(routers=0, args=["--task-timeout", "1000"])
    c = d.client()
    cat = fetch_catalog(c)
    ep = worker_endpoint(d)
    created = create_all(c, [new_case(cat.categories[n % 5], loc_of(cat.full_paths()[n]))
                             for n in range(20)])
    ids = [x["id"] for x in created]

    # the stalled worker takes the task and never answers; told DISCONNECT, it sends
    # its answer anyway (another unit): that late reply must be dropped
    staller = ForeignWorker(ep, stall=True, name="staller",
                            late_reply=lambda it: decision(it, "CITY-SUPERVISION", "late"))
    honest = ForeignWorker(ep, delay=0.3, name="honest",
                           decide=lambda it: decision(it, "CITY-INFO", "honest"))
    staller.start()
    try:
        assert staller.got_task.wait(5), "the stalled worker got no task"
        t_taken = staller.tasks[0][0]
        held = staller.case_ids()
        assert sorted(held) == sorted(ids), "the first task holds every waiting case"
        honest.start()
        time.sleep(0.5)
        assert not honest.tasks, "a task held by a live worker was given out again early"
        mid = get_cases(c, ids)
        assert all(x[0]["state"] == "registered" for x in mid.values())
        assert honest.got_task.wait(5), "the task never went to the other worker"
        t_moved = honest.tasks[0][0]
        got = wait_dispatched(c, ids, timeout=5)
        time.sleep(0.3)   # room for anything late to land
        got = get_cases(c, ids)
    finally:
        staller.stop()
        honest.stop()
    waited = t_moved - t_taken
    assert 0.9 <= waited <= 3.0, f"task moved after {waited:.2f}s (--task-timeout 1000)"
    assert staller.disconnects >= 1, "the broker did not tell the stalled worker"
    assert staller.late_replies == 1
    for i, (case, hist) in got.items():
        check_routed_once(case, hist, cat.body, unit="CITY-INFO", note="honest")
    assert sorted(honest.case_ids()) == sorted(ids)
    assert re.search(r"did not answer within the task timeout", d.stderr_text()), \
        d.stderr_tail()


# ======================================================================================
# 6. kill -9


def test_kill9_routers_under_load(gl):
    d = gl(routers=2)
    c = d.client()
    cat = fetch_catalog(c)
    policy = default_policy(cat.body)
    kills = []
    stop = threading.Event()

    def killer():
        rng = random.Random(11)
        while not stop.wait(0.5):
            kids = router_children(d.pid)
            if kids:
                pid = rng.choice(kids)
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except ProcessLookupError:
                    pass

    assert len(wait_until(lambda: len(router_children(d.pid)) == 2 and router_children(d.pid),
                          5, what="two routers")) == 2
    th = threading.Thread(target=killer, daemon=True)
    th.start()
    try:
        acked = flood(d, flood_body_maker(cat, f"k9r-{os.getpid()}"), 3.0, clients=4, window=32)
    finally:
        stop.set()
        th.join()
    assert len(kills) >= 4, f"only {len(kills)} kill(s)"
    t0 = time.monotonic()
    wait_until(lambda: not list_all(c, {"state": "registered"}, limit=500), 10.0,
               interval=0.2, what="every case to leave registered after the kills")
    settle = time.monotonic() - t0
    ids = sorted(acked.values())
    check_store_routed(c, ids, policy, histories="all" if len(ids) <= 40000 else 5000)
    died_re = re.compile(r"worker (router-\d) \(pid (\d+)\) was killed by signal 9")
    wait_until(lambda: {int(p) for _, p in died_re.findall(d.stderr_text())} >= set(kills), 3,
               what="every kill to be logged")
    log = d.stderr_text()
    died = died_re.findall(log)
    assert {int(p) for _, p in died} == set(kills), (kills, died)
    assert len(re.findall(r"restarting worker router-\d in \d+ ms", log)) == len(kills), log
    assert len(re.findall(r"started worker router-\d", log)) >= len(kills), log
    assert len(router_children(d.pid)) <= 2
    handed_back = len(re.findall(r"worker router-\d \(gridline\.route\) exited: its task \d+ "
                                 r"goes to another worker", log))
    print(f"\nkill -9 routers: {len(ids)} acknowledged creates, {len(kills)} kills "
          f"({handed_back} with a task in hand); all dispatched once, {settle:.2f} s after "
          f"the flood")


def test_kill9_daemon_mid_flood_routing_resumes_and_no_router_is_orphaned(gl):
    d = gl(routers=2)
    c = d.client()
    cat = fetch_catalog(c)
    policy = default_policy(cat.body)
    wait_until(lambda: len(router_children(d.pid)) == 2, 5, what="two routers")
    routers = {}

    def kill_daemon():
        routers["pids"] = router_children(d.pid)
        d.kill9()

    acked = flood(d, flood_body_maker(cat, f"k9d-{os.getpid()}"), 1.3, clients=4, window=32,
                  at={1.2: kill_daemon}, drain=0.1)
    assert acked and len(routers["pids"]) == 2
    # the killed daemon's routers stop by themselves (they are told when it dies)
    try:
        wait_until(lambda: not any(alive(p) for p in routers["pids"]), 5,
                   what=f"the killed daemon's routers {routers['pids']} to exit")
        left = routers_of_data_dir(d.data)
        assert not left, f"gridline-router processes left from the killed daemon: {left}"
    finally:
        for pid, _ in routers_of_data_dir(d.data):   # this test's own orphans, if any
            os.kill(pid, signal.SIGKILL)

    d.start()
    c = d.client()
    wait_until(lambda: not list_all(c, {"state": "registered"}, limit=500), 10.0,
               interval=0.2, what="routing to resume after the restart")
    check_store_routed(c, sorted(acked.values()), policy, histories=3000)
    assert len(router_children(d.pid)) == 2
    print(f"\nkill -9 daemon: {len(acked)} acknowledged creates before the kill; "
          f"all dispatched once after the restart")


# ======================================================================================
# 7. latency


def test_dispatch_latency_under_load(gl):
    d = gl(routers=2)
    c = d.client()
    cat = fetch_catalog(c)
    t0 = time.monotonic()
    acked = flood(d, flood_body_maker(cat, f"lat-{os.getpid()}"), 3.0, clients=8, window=16)
    rate = len(acked) / (time.monotonic() - t0)
    wait_until(lambda: not list_all(c, {"state": "registered"}, limit=500), 10.0,
               interval=0.2, what="every case to be routed")
    ids = sorted(acked.values())
    sample = random.Random(5).sample(ids, min(500, len(ids)))
    got = get_cases(c, sample)
    lat = []
    for i, (case, hist) in got.items():
        ev = dispatched_events(hist)
        assert len(ev) == 1, (i, hist)
        lat.append(ev[0]["at"] - case["created_at"])
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    print(f"\nlatency: {len(acked)} creates in 3 s ({rate:.0f}/s); created -> dispatched over "
          f"{len(lat)} cases: p50 {p50} ms, p99 {p99} ms, max {max(lat)} ms")
    assert p99 < 1000, f"p99 {p99} ms (p50 {p50} ms, max {max(lat)} ms)"
