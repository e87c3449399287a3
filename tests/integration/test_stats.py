"""stats.query over the wire, and `gridline stats` and `gridline overdue`, against the
real daemon with its router (so cases are dispatched), written from
shared/docs/protocol.md ("Rates") and protocol/README.md ("stats.query").

The daemon runs a test city whose SLA classes allow 3 s to sign for and 6 s to resolve
(wall clock), and no escalation worker (so nothing moves a case but the test). A handful
of cases is driven through the loop with case.act: signed for and resolved at once (in
time) or after their deadline has passed (late), called back satisfied, basically
satisfied or unsatisfied (reopened), returned (and routed again), left dispatched, and
one settled on the spot at the window (never dispatched). The expected rows are counted
by hand from what the test did to each case, grouped by the unit the router chose, and
compared with stats.query field by field: every count, the four rates (nil where the
denominator is 0), the rows' order, `ungrouped`, and the created range's ends.
"""

import json
import os
import subprocess
import time
from datetime import datetime, timezone

import pytest

from gridline_harness import (Daemon, _has_option, build_dir, fetch_catalog, running,
                              unique_request_id)

ACCEPT_S = 3
RESOLVE_S = 6
FAST_CITY = "".join(
    f'  {{ code = "{c}"; accept_within = "{ACCEPT_S}s"; resolve_within = "{RESOLVE_S}s"; '
    f'clock = "wall"; }}{"," if i < 3 else ""}\n'
    for i, c in enumerate(["emergency", "utility", "standard", "complex"]))
FAST_CITY = "sla = (\n" + FAST_CITY + ");\n"
CATEGORY = "water_supply"
COUNTS = ["received", "dispatched", "accepted_in_time", "resolved", "resolved_on_time",
          "resolved_or_closed", "closed", "callbacks", "satisfied", "basically_satisfied",
          "unsatisfied"]
RATES = ["response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate"]
RUN_TIMEOUT = 15


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------
# the daemon and the cases


@pytest.fixture(scope="module")
def routed():
    d = Daemon(extra_args=[])
    path = os.path.join(d.workdir, "city.cfg")
    with open(path, "w", encoding="utf-8") as f:
        f.write(FAST_CITY)
    d.extra_args = ["--routers", "1", "--config", path]
    if _has_option(d.binary, "--escalators"):
        d.extra_args += ["--escalators", "0"]
    with running(d):
        yield d


class Desk:
    def __init__(self, client):
        self.c = client
        cat = fetch_catalog(client)
        self.paths = cat.full_paths()
        self.n = 0

    def create(self, district_path=None, **over):
        """A case in a grid cell of its own (so the router sees no duplicate)."""
        d, s, c, g = district_path or self.paths[self.n % len(self.paths)]
        self.n += 1
        body = {
            "request_id": unique_request_id("stats"),
            "channel": "hotline",
            "category": CATEGORY,
            "description": "A case for the stats tests.",
            "location": {"district": d, "street": s, "community": c, "grid": g},
        }
        body.update(over)
        return self.c.ok("case.create", body)["case"]

    def get(self, cid):
        return self.c.ok("case.get", {"id": cid})["case"]

    def wait(self, cid, pred, what, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            case = self.get(cid)
            if pred(case):
                return case
            assert time.monotonic() < deadline, f"case {cid} not {what}: {case!r}"
            time.sleep(0.02)

    def dispatched(self, cid):
        return self.wait(cid, lambda k: k["state"] == "dispatched" and k["unit"], "dispatched")

    def act(self, cid, action, **fields):
        body = {"id": cid, "action": action}
        body.update(fields)
        return self.c.ok("case.act", body)["case"]

    def stats(self, **body):
        return self.c.call("stats.query", body)


def sleep_past(ms):
    """Sleeps until the clock is past `ms` (a deadline), with a little margin."""
    left = ms - now_ms() + 50
    if left > 0:
        time.sleep(left / 1000)


class Scenario:
    """The cases, what was done to each, and the hand count."""

    def __init__(self, desk):
        self.desk = desk
        self.t0 = now_ms()
        self.done = {}       # id -> what the test did: flags by hand
        k = desk.create      # every case below is created before any is acted on

        ids = {name: k()["id"] for name in
               ("perfect", "late", "reopened", "waiting", "returned")}
        # Settled at the window, never dispatched: no unit. Alone in the last district.
        last = desk.paths[-1]
        self.on_spot = desk.create(district_path=last, channel="window",
                                   resolved_on_spot=True)
        assert self.on_spot["state"] == "resolved" and self.on_spot["unit"] is None
        self.on_spot_district = last[0]
        self.ids = ids
        for cid in ids.values():
            desk.dispatched(cid)

        # In time: at once, well inside the 3 s and 6 s.
        cid = ids["perfect"]
        desk.act(cid, "accept")
        desk.act(cid, "resolve", reply="fixed")
        desk.act(cid, "callback", satisfaction="satisfied")
        self.mark(cid, accepted=True, in_time=True, resolved=True, on_time=True,
                  settled=True, closed=True, satisfaction="satisfied")

        cid = ids["reopened"]
        desk.act(cid, "accept")
        desk.act(cid, "resolve", reply="fixed")
        desk.act(cid, "callback", satisfaction="unsatisfied")
        # Back at its unit with new deadlines; signed for and resolved before them.
        self.mark(cid, accepted=True, in_time=True, resolved=True, on_time=True,
                  settled=False, closed=False, satisfaction="unsatisfied")

        cid = ids["returned"]
        before = desk.get(cid)["unit"]
        desk.act(cid, "return", reason="not ours")
        again = desk.wait(cid, lambda k: k["state"] == "dispatched" and k["unit"],
                          "dispatched again")
        assert again["unit"] != before
        self.mark(cid)

        self.mark(ids["waiting"])

        # Late: signed for after accept_by, resolved after resolve_by.
        cid = ids["late"]
        sleep_past(desk.get(cid)["accept_by"])
        desk.act(cid, "accept")
        sleep_past(desk.get(cid)["resolve_by"])
        desk.act(cid, "resolve", reply="fixed, late")
        desk.act(cid, "callback", satisfaction="basically_satisfied")
        self.mark(cid, accepted=True, in_time=False, resolved=True, on_time=False,
                  settled=True, closed=True, satisfaction="basically_satisfied")
        self.t1 = now_ms() + 1

        # The cases as they are now, and a check that the test did what it meant to.
        self.cases = {cid: desk.get(cid) for cid in ids.values()}
        self.on_spot = desk.get(self.on_spot["id"])
        for cid, case in self.cases.items():
            m = self.done[cid]
            assert case["dispatched_at"] is not None
            assert (case["accepted_at"] is not None) == m["accepted"], case
            if m["accepted"]:
                assert (case["accepted_at"] <= case["accept_by"]) == m["in_time"], case
            if m["resolved"]:
                assert (case["resolved_at"] <= case["resolve_by"]) == m["on_time"], case

    def mark(self, cid, accepted=False, in_time=False, resolved=False, on_time=False,
             settled=False, closed=False, satisfaction=None):
        self.done[cid] = dict(accepted=accepted, in_time=in_time, resolved=resolved,
                              on_time=on_time, settled=settled, closed=closed,
                              satisfaction=satisfaction)

    def expected(self, key_of, ids=None):
        """Rows by hand: {key: {count: n}} over the dispatched cases in ids."""
        rows = {}
        for cid in (self.ids.values() if ids is None else ids):
            m = self.done[cid]
            key = key_of(self.cases[cid])
            r = rows.setdefault(key, {c: 0 for c in COUNTS})
            r["received"] += 1
            r["dispatched"] += 1                     # every one of them was dispatched
            r["accepted_in_time"] += m["accepted"] and m["in_time"]
            r["resolved"] += m["resolved"]
            r["resolved_on_time"] += m["resolved"] and m["on_time"]
            r["resolved_or_closed"] += m["settled"]
            r["closed"] += m["closed"]
            if m["satisfaction"] is not None:
                r["callbacks"] += 1
                r[m["satisfaction"]] += 1
        return rows


@pytest.fixture(scope="module")
def scenario(routed):
    c = routed.client()
    try:
        yield Scenario(Desk(c))
    finally:
        c.close()


@pytest.fixture
def desk(routed, scenario):
    assert routed.alive(), "the daemon is down\n" + routed.stderr_tail()
    c = routed.client()
    try:
        yield Desk(c)
    finally:
        c.close()


def rate(num, den):
    return None if den == 0 else num / den


def check_rows(rows, expected):
    """The reply's rows against the hand count: the same keys in order, every count, every
    rate (exactly the fraction of the counts, or nil)."""
    assert [r["key"] for r in rows] == sorted(expected), (rows, expected)
    for r in rows:
        e = expected[r["key"]]
        for c in COUNTS:
            assert r[c] == e[c], f"{r['key']}: {c} is {r[c]}, by hand {e[c]}: {r!r}"
        assert r["response_rate"] == rate(e["accepted_in_time"], e["dispatched"]), r
        assert r["on_time_rate"] == rate(e["resolved_on_time"], e["resolved"]), r
        assert r["resolution_rate"] == rate(e["resolved_or_closed"], e["received"]), r
        assert r["satisfaction_rate"] == rate(e["satisfied"] + e["basically_satisfied"],
                                              e["callbacks"]), r


# --------------------------------------------------------------------------------------
# stats.query


def test_rows_by_unit_match_the_hand_count(desk, scenario):
    s = scenario
    r = desk.stats(group_by="unit", **{"from": s.t0, "to": s.t1})
    assert r.ok, r.describe()
    assert set(r.body) == {"ok", "rows", "group_by", "from", "to", "ungrouped"}
    assert r.body["group_by"] == "unit"
    assert r.body["from"] == s.t0 and r.body["to"] == s.t1
    check_rows(r.body["rows"], s.expected(lambda k: k["unit"]))
    # The case settled on the spot has no unit.
    assert r.body["ungrouped"] == 1
    for row in r.body["rows"]:
        assert "stars" not in row
        assert isinstance(row["name"], str) and row["name"]


def test_the_mix_gives_the_expected_rates_in_total(desk, scenario):
    """Every case in one row (the category): 2 of 5 dispatched signed for in time
    (perfect, reopened; late was late; waiting and returned not at all), 3 of 6 resolved
    or closed now (perfect, late, on the spot), 2 of 3 callbacks satisfied or basically
    (perfect, late; reopened was not)."""
    s = scenario
    r = desk.stats(group_by="category", **{"from": s.t0, "to": s.t1})
    assert r.ok, r.describe()
    rows = r.body["rows"]
    assert len(rows) == 1 and rows[0]["key"] == CATEGORY
    row = rows[0]
    # The on-the-spot case counts too: received, not dispatched, resolved or closed.
    assert row["received"] == 6 and row["dispatched"] == 5
    assert row["response_rate"] == 2 / 5
    assert row["resolution_rate"] == 3 / 6
    assert row["satisfaction_rate"] == 2 / 3
    assert row["closed"] == 2 and row["unsatisfied"] == 1
    assert r.body["ungrouped"] == 0
    check_rows(rows, _with_on_spot(s, lambda k: k["category"]))


def test_a_district_with_nothing_dispatched_has_nil_rates(desk, scenario):
    s = scenario
    r = desk.stats(group_by="district", **{"from": s.t0, "to": s.t1})
    assert r.ok, r.describe()
    rows = {row["key"]: row for row in r.body["rows"]}
    assert s.on_spot_district in rows, r.body
    assert all(k["location"]["district"] != s.on_spot_district for k in s.cases.values())
    row = rows[s.on_spot_district]
    assert row["received"] == 1 and row["dispatched"] == 0
    assert row["response_rate"] is None
    assert row["satisfaction_rate"] is None
    assert row["resolved_or_closed"] == 1 and row["resolution_rate"] == 1.0


def test_the_created_range_is_from_inclusive_to_exclusive(desk, scenario):
    s = scenario
    by_created = sorted(s.cases.values(), key=lambda k: k["id"])
    first = by_created[0]
    unit = lambda k: k["unit"]  # noqa: E731

    # from = the first case's created_at: it is in.
    r = desk.stats(group_by="unit", **{"from": first["created_at"], "to": s.t1})
    assert r.ok, r.describe()
    check_rows(r.body["rows"], s.expected(unit))
    # to = the next later created_at: only the cases before it (several may share a ms).
    later = [k["created_at"] for k in by_created if k["created_at"] > first["created_at"]]
    if later:
        r = desk.stats(group_by="unit", **{"from": first["created_at"], "to": later[0]})
        assert r.ok, r.describe()
        before = [k["id"] for k in by_created if k["created_at"] < later[0]]
        assert 0 < len(before) < len(by_created)
        check_rows(r.body["rows"], s.expected(unit, before))
    # from one ms later: the first case is out.
    r = desk.stats(group_by="unit", **{"from": first["created_at"] + 1, "to": s.t1})
    assert r.ok, r.describe()
    after = [k["id"] for k in by_created if k["created_at"] > first["created_at"]]
    check_rows(r.body["rows"], s.expected(unit, after))
    # After everything: no rows.
    r = desk.stats(group_by="unit", **{"from": s.t1, "to": s.t1 + 1000})
    assert r.ok and r.body["rows"] == [] and r.body["ungrouped"] == 0, r.describe()
    # Open ends are nil in the reply.
    r = desk.stats(group_by="unit")
    assert r.ok and r.body["from"] is None and r.body["to"] is None, r.describe()


def test_community_rows_carry_stars(desk, scenario):
    s = scenario
    r = desk.stats(group_by="community", **{"from": s.t0, "to": s.t1})
    assert r.ok, r.describe()
    check_rows(r.body["rows"], _with_on_spot(s, lambda k: k["location"]["community"]))
    for row in r.body["rows"]:
        # A handful of cases is below every level's minimum in the default thresholds.
        assert "stars" in row and row["stars"] in (None, 3, 4, 5), row


def _with_on_spot(s, key_of):
    """The hand count with the case settled on the spot added: received, resolved (or
    closed) now, never dispatched; counted as resolved, and on time, by its own
    resolved_at and resolve_by (the window may or may not set them)."""
    rows = s.expected(key_of)
    k = s.on_spot
    r = rows.setdefault(key_of(k), {c: 0 for c in COUNTS})
    r["received"] += 1
    r["resolved_or_closed"] += 1
    if k["resolved_at"] is not None:
        r["resolved"] += 1
        r["resolved_on_time"] += k["resolve_by"] is not None and \
            k["resolved_at"] <= k["resolve_by"]
    return rows


@pytest.mark.parametrize("body,field", [
    ({}, "group_by"),
    ({"group_by": "grid"}, "group_by"),
    ({"group_by": 3}, "group_by"),
    ({"group_by": "unit", "from": "yesterday"}, "from"),
    ({"group_by": "unit", "from": -5}, "from"),
    ({"group_by": "unit", "from": 2000, "to": 2000}, "to"),
    ({"group_by": "unit", "from": 2000, "to": 1000}, "to"),
    ({"group_by": "unit", "filter": {}}, "filter"),
])
def test_bad_queries_are_refused_naming_the_field(desk, body, field):
    r = desk.stats(**body)
    assert r.well_formed and not r.ok, r.describe()
    assert r.error_code == "invalid_argument", r.describe()
    assert r.error_field == field, r.describe()
    assert r.body["error"]["message"].startswith(field), r.describe()


def test_stats_query_is_served_and_echoes_rid(desk):
    r, body = desk.c.mmi("stats.query")
    assert body == "200", r.describe()
    r = desk.c.call_rid("stats.query", {"group_by": "district"}, rid="s-1")
    assert r.ok and r.rid == "s-1", r.describe()
    r = desk.c.call_rid("stats.query", {"group_by": "nope"}, rid="s-2")
    assert not r.ok and r.rid == "s-2", r.describe()


def test_unknown_service_message_names_stats_query(desk):
    r = desk.c.call("stats.nope", {})
    assert r.error_code == "unknown_service", r.describe()
    assert "stats.query" in r.body["error"]["message"]


# --------------------------------------------------------------------------------------
# the command line


def gridline(routed, *args):
    argv = [os.path.join(build_dir(), "gridline"), "--endpoint", routed.endpoint] + list(args)
    p = subprocess.run(argv, capture_output=True, timeout=RUN_TIMEOUT,
                       env=dict(os.environ, COLUMNS="200"))
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def test_gridline_stats_prints_a_table_of_the_rows(routed, desk, scenario):
    s = scenario
    rc, out, err = gridline(routed, "stats", "--by", "unit", "--from", str(s.t0),
                            "--to", str(s.t1))
    assert rc == 0, (out, err)
    lines = out.splitlines()
    head = lines[0].split()
    assert head[:3] == ["KEY", "RECEIVED", "DISPATCHED"], out
    assert "RESPONSE" in head and "SATISFACTION" in head and "STARS" not in head, out
    expected = s.expected(lambda k: k["unit"])
    body = lines[1:1 + len(expected)]
    assert [ln.split()[0] for ln in body] == sorted(expected), out
    for ln in body:
        cells = ln.split()
        e = expected[cells[0]]
        assert int(cells[1]) == e["received"] and int(cells[2]) == e["dispatched"], ln
        resp = rate(e["accepted_in_time"], e["dispatched"])
        assert cells[3] == ("-" if resp is None else f"{resp * 100:.1f}%"), ln
    assert "1 case without a unit" in out, out


def test_gridline_stats_by_community_shows_stars_and_json_is_the_reply(routed, desk,
                                                                       scenario):
    s = scenario
    rc, out, err = gridline(routed, "stats", "--by", "community", "--from", str(s.t0))
    assert rc == 0, (out, err)
    assert "STARS" in out.splitlines()[0], out
    rc, out, err = gridline(routed, "--json", "stats", "--by", "community", "--from",
                            str(s.t0), "--to", str(s.t1))
    assert rc == 0, (out, err)
    got = json.loads(out)
    wire = desk.stats(group_by="community", **{"from": s.t0, "to": s.t1}).body
    assert got == wire


def test_gridline_stats_takes_dates(routed, desk):
    rc, out, err = gridline(routed, "--json", "stats", "--by", "district",
                            "--from", "2026-01-01", "--to", "2100-01-01")
    assert rc == 0, (out, err)
    got = json.loads(out)
    assert got["from"] == int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    assert got["to"] == int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize("args,needle", [
    (["stats"], "--by"),
    (["stats", "--by", "unit", "--from", "yesterday"], "yesterday"),
    (["stats", "--by", "unit", "--from", "2026-02-30"], "2026-02-30"),
    (["stats", "--by", "unit", "--from", "2026-03-01", "--to", "2026-03-01"], "--to"),
    (["stats", "--by", "unit", "stray"], "stray"),
    (["overdue", "--limit", "0"], "--limit"),
    (["overdue", "stray"], "stray"),
    (["overdue", "--state", "closed"], "--state"),
])
def test_usage_errors_exit_2(routed, args, needle):
    rc, out, err = gridline(routed, *args)
    assert rc == 2, (out, err)
    assert needle in err and out == "", (out, err)


def test_gridline_stats_refusal_exits_1(routed):
    rc, out, err = gridline(routed, "stats", "--by", "grid")
    assert rc == 1, (out, err)
    assert "invalid_argument" in err and "group_by" in err, err


def test_gridline_overdue_lists_the_cases_past_a_deadline(routed, desk, scenario):
    s = scenario
    # waiting, returned (dispatched again) and reopened are at their units, not signed
    # for, past the 3 s to sign for once that has gone by.
    open_ids = [s.ids[n] for n in ("waiting", "returned", "reopened")]
    for cid in open_ids:
        sleep_past(desk.get(cid)["accept_by"])
    rc, out, err = gridline(routed, "overdue", "--all")
    assert rc == 0, (out, err)
    listed = {int(ln.split()[0]) for ln in out.splitlines()[1:] if ln.split()[0].isdigit()}
    assert set(open_ids) <= listed, out
    assert s.ids["perfect"] not in listed and s.ids["late"] not in listed, out
    assert out.rstrip().endswith("cases"), out

    # --unit narrows to that unit's; --json is the case.list reply.
    unit = desk.get(s.ids["waiting"])["unit"]
    rc, out, err = gridline(routed, "--json", "overdue", "--unit", unit)
    assert rc == 0, (out, err)
    got = json.loads(out)
    assert got["ok"] is True and s.ids["waiting"] in {k["id"] for k in got["cases"]}
    assert all(k["unit"] == unit for k in got["cases"]), got
    district = desk.get(s.ids["waiting"])["location"]["district"]
    rc, out, err = gridline(routed, "overdue", "--district", district)
    assert rc == 0 and str(s.ids["waiting"]) in out.split(), (out, err)
