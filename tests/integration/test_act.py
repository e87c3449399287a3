"""case.act over the wire, against the real daemon with its router (so cases reach
`dispatched`), written from shared/docs/protocol.md and protocol/README.md ("case.act").

What is pinned:
- the closed loop 受理 → 派单 → 签收 → 办理 → 办结 → 回访 → 评价: create, dispatched by the
  router, accept, note, resolve (reply), callback satisfied → closed; the history holds
  exactly the expected events in order, each with its actor, state, unit and note; the
  version grows by one per action;
- 退单: a returned case has no unit and no deadlines, is routed again to a unit that has
  not returned it, and at its max_returns-th return (2 in the default city) goes to the
  supervision unit;
- 延期: extend, approve (resolve_by moves), a second request while one waits, reject,
  approve with nothing waiting, an until not later than resolve_by;
- 催办/督办: urge, supervise (once), escalate (level + 1);
- reopening on an unsatisfied callback, with new deadlines, then the loop to closed;
- reassign (deadlines recomputed; an unknown unit refused), merge (duplicate_of, the
  root of a chain; into merged, withdrawn or missing cases refused), withdraw;
- the state machine: every action from a state that does not allow it is `conflict`
  (field `action`) naming the state; note is allowed in every state; a refused action
  changes nothing;
- stale version, missing case, parser errors over the wire, rid echoed, mmi.service;
- case.list filters (state, unit, supervised) follow every change.
"""

import itertools
import sys
import time

import pytest

from gridline_harness import fetch_catalog, list_all, running_daemon, unique_request_id

ACTOR = "dev"          # development mode: every client is the one sender `dev`
ROUTER = "router"
DISPATCH_TIMEOUT = 5.0
DAY_MS = 86_400_000


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------
# the daemon (with its router) and a desk to work cases with


@pytest.fixture(scope="module")
def routed():
    """One daemon with its routing workers for the module; must stop cleanly."""
    with running_daemon() as d:
        yield d


class Desk:
    """A client of the routed daemon with helpers for cases and actions."""

    def __init__(self, client, catalog):
        self.c = client
        self.cat = catalog
        self.units = {u["code"]: u for u in catalog.body["units"]}
        self.supervision = [u["code"] for u in catalog.body["units"]
                            if u["kind"] == "supervision"]
        self.sla = {s["code"]: s for s in catalog.body["sla"]}
        self.cat_sla = {c["code"]: c["sla"] for c in catalog.body["categories"]}

    # -- cases --------------------------------------------------------------
    _combo = itertools.count()

    def fresh_place(self):
        """A (category, path) pair not used before in this module, so that the router
        sees no duplicate (same category in the same grid cell)."""
        n = next(Desk._combo)
        cats, paths = self.cat.categories, self.cat.full_paths()
        return cats[n % len(cats)], paths[(n // len(cats)) % len(paths)]

    def create(self, category=None, path=None, **over):
        fc, fp = self.fresh_place()
        category = category or fc
        d, s, c, g = path or fp
        body = {
            "request_id": unique_request_id("act"),
            "channel": "hotline",
            "category": category,
            "urgency": "normal",
            "title": "case.act test",
            "description": "A case for the case.act tests.",
            "location": {"district": d, "street": s, "community": c, "grid": g},
            "reporter": {"name": "Wang Fang", "phone": "13900139000"},
        }
        body.update(over)
        return self.c.ok("case.create", body)["case"]

    def get(self, cid):
        return self.c.ok("case.get", {"id": cid})["case"]

    def history(self, cid):
        return self.c.ok("case.get", {"id": cid, "history": True})["history"]

    def wait_state(self, cid, state, min_version=0, timeout=DISPATCH_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            case = self.get(cid)
            if case["state"] == state and case["version"] >= min_version:
                return case
            if time.monotonic() > deadline:
                raise AssertionError(f"case {cid} not {state} (version >= {min_version}) "
                                     f"after {timeout}s: {case!r}")
            time.sleep(0.02)

    def dispatched(self, **over):
        """A new case, once the router has dispatched it (version 2)."""
        case = self.create(**over)
        assert case["state"] == "registered" and case["version"] == 1, case
        case = self.wait_state(case["id"], "dispatched", 2)
        assert case["version"] == 2, case
        assert case["unit"] in self.units, case
        return case

    def accepted(self, **over):
        case = self.dispatched(**over)
        return self.act_ok(case, "accept", note="signed for")

    def deadlines_of(self, case):
        """(accept_within_ms, resolve_within_ms, clock) for the case's category and
        urgency."""
        cls = self.sla[self.cat_sla[case["category"]][case["urgency"]]]
        return cls["accept_within_ms"], cls["resolve_within_ms"], cls["clock"]

    def assert_fresh_deadlines(self, case, t0, t1):
        """accept_by/resolve_by counted from the change (updated_at, in [t0, t1]): exactly
        for a wall-clock class; at least that for one counted in working time, which skips
        nights, weekends and holidays."""
        acc, res, clock = self.deadlines_of(case)
        assert t0 - 5 <= case["updated_at"] <= t1 + 5, (t0, case["updated_at"], t1)
        if clock == "wall":
            assert case["accept_by"] == case["updated_at"] + acc, case
            assert case["resolve_by"] == case["updated_at"] + res, case
        else:
            assert case["accept_by"] >= case["updated_at"] + acc, case
            assert case["resolve_by"] >= case["updated_at"] + res, case
            assert case["resolve_by"] >= case["accept_by"], case

    # -- actions ------------------------------------------------------------
    def act(self, cid, action, **fields):
        body = {"id": cid, "action": action}
        body.update(fields)
        r = self.c.call("case.act", body)
        assert r.well_formed, r.describe()
        return r

    def act_ok(self, case, action, with_version=True, **fields):
        """The action on `case` (a case map as last seen); asserts success, version + 1,
        the same id, and updated_at not going back. Returns the case after it."""
        if with_version:
            fields.setdefault("version", case["version"])
        r = self.act(case["id"], action, **fields)
        assert r.ok, f"{action} {fields!r} on case {case['id']} ({case['state']}) -> " \
                     f"{r.describe()}"
        assert set(r.body) == {"ok", "case"}, r.body
        after = r.body["case"]
        assert after["id"] == case["id"] and after["code"] == case["code"]
        assert after["version"] == case["version"] + 1, \
            f"{action}: version {case['version']} -> {after['version']}"
        assert after["updated_at"] >= case["updated_at"]
        # what case.get says is what the reply said
        assert self.get(case["id"]) == after
        return after

    def act_err(self, cid, action, code, field=None, contains=(), **fields):
        r = self.act(cid, action, **fields)
        assert not r.ok and r.error_code == code, \
            f"{action} {fields!r} on {cid}: expected {code}, got {r.describe()}"
        if field is not None:
            assert r.error_field == field, f"{action}: field {r.error_field!r} != {field!r}: " \
                                           f"{r.describe()}"
        msg = r.body["error"]["message"]
        assert isinstance(msg, str) and msg
        for part in ([contains] if isinstance(contains, str) else contains):
            assert part in msg, f"{action}: message {msg!r} lacks {part!r}"
        return r

    def ids(self, flt):
        return {c["id"] for c in list_all(self.c, flt, limit=500)}


@pytest.fixture
def desk(request, routed):
    m = sys.modules.get("conftest")
    if m is not None and hasattr(m, "_register"):
        m._register(request, routed)
    assert routed.alive(), "the routed daemon is down\n" + routed.stderr_tail()
    c = routed.client()
    try:
        yield Desk(c, fetch_catalog(c))
    finally:
        c.close()


def check_event(ev, case, type_, state, actor, note, unit="<case>"):
    assert ev["type"] == type_, ev
    assert ev["case_id"] == case["id"] and ev["code"] == case["code"], ev
    assert ev["state"] == state, ev
    assert ev["actor"] == actor, ev
    assert ev["district"] == case["location"]["district"], ev
    assert ev["category"] == case["category"], ev
    if unit == "<case>":
        unit = case["unit"]
    assert ev["unit"] == unit, (ev, unit)
    if note is not None:
        assert ev["note"] == note, (ev, note)


def assert_history_well_formed(hist):
    seqs = [e["seq"] for e in hist]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    ats = [e["at"] for e in hist]
    assert ats == sorted(ats), ats


# every action, with the fields it requires (valid values); `into` and `unit` are
# filled in by the test
def action_bodies(other_case_id, unit):
    until = now_ms() + 300 * DAY_MS   # within the one-year bound on extensions
    return {
        "accept": {},
        "resolve": {"reply": "fixed"},
        "return": {"reason": "not ours"},
        "extend": {"until": until, "reason": "parts on order"},
        "approve_extension": {},
        "reject_extension": {},
        "urge": {},
        "supervise": {},
        "escalate": {},
        "reassign": {"unit": unit},
        "merge": {"into": other_case_id},
        "callback": {"satisfaction": "satisfied"},
        "withdraw": {},
    }


# --------------------------------------------------------------------------------------
# the service


def test_mmi_says_200_for_case_act(desk):
    r, body = desk.c.mmi("case.act")
    assert r.well_formed and body == "200", r.describe()


# --------------------------------------------------------------------------------------
# the closed loop


@pytest.mark.parametrize("satisfaction", ["satisfied", "basically_satisfied"])
def test_closed_loop(desk, satisfaction):
    """受理 → 派单 → 签收 → 办理 → 办结 → 回访 → 评价 → closed."""
    created = desk.create()
    assert created["state"] == "registered" and created["unit"] is None
    case = desk.wait_state(created["id"], "dispatched", 2)
    unit = case["unit"]
    assert case["version"] == 2 and case["level"] == 0
    assert case["accept_by"] is not None and case["resolve_by"] is not None

    case = desk.act_ok(case, "accept", note="signed for by the duty officer")
    assert case["state"] == "accepted" and case["unit"] == unit and case["version"] == 3
    case = desk.act_ok(case, "note", note="visited the site; parts ordered")
    assert case["state"] == "accepted" and case["version"] == 4
    reply = "The street light was replaced on Tuesday. 路灯已更换。"
    case = desk.act_ok(case, "resolve", reply=reply, note="done on site")
    assert case["state"] == "resolved" and case["reply"] == reply and case["version"] == 5
    assert case["satisfaction"] is None
    case = desk.act_ok(case, "callback", satisfaction=satisfaction, note="resident called back")
    assert case["state"] == "closed" and case["version"] == 6
    assert case["satisfaction"] == satisfaction
    assert case["reply"] == reply and case["unit"] == unit and case["reopen_count"] == 0

    hist = desk.history(case["id"])
    assert_history_well_formed(hist)
    assert [e["type"] for e in hist] == ["created", "dispatched", "accepted", "noted",
                                         "resolved", "callback"], hist
    check_event(hist[0], case, "created", "registered", ACTOR, None, unit=None)
    check_event(hist[1], case, "dispatched", "dispatched", ROUTER, None)
    assert isinstance(hist[1]["note"], str) and hist[1]["note"], hist[1]
    check_event(hist[2], case, "accepted", "accepted", ACTOR, "signed for by the duty officer")
    check_event(hist[3], case, "noted", "accepted", ACTOR, "visited the site; parts ordered")
    check_event(hist[4], case, "resolved", "resolved", ACTOR, "done on site")
    check_event(hist[5], case, "callback", "closed", ACTOR, "resident called back")
    assert hist[-1]["at"] == case["updated_at"]


def test_resolve_without_a_note_puts_the_reply_in_its_event(desk):
    case = desk.accepted()
    case = desk.act_ok(case, "resolve", with_version=False, reply="Cleared the drain.")
    ev = desk.history(case["id"])[-1]
    check_event(ev, case, "resolved", "resolved", ACTOR, "Cleared the drain.")


@pytest.mark.parametrize("action", ["return", "extend"])
def test_note_and_reason_both_reach_the_event(desk, action):
    case = desk.dispatched()
    f = {"reason": "R-" + action, "note": "N-" + action}
    if action == "extend":
        f["until"] = case["resolve_by"] + DAY_MS
    desk.act_ok(case, action, **f)
    # The router may already have dispatched a returned case again: find the action's
    # own event.
    kind = {"return": "returned", "extend": "extension_requested"}[action]
    ev = [e for e in desk.history(case["id"]) if e["type"] == kind][-1]
    assert "R-" + action in (ev["note"] or "") and "N-" + action in (ev["note"] or ""), ev


def test_every_action_is_one_event_and_one_version(desk):
    """Versions grow by one per action and the history grows by one event per action."""
    case = desk.dispatched()
    n = len(desk.history(case["id"]))
    steps = [("urge", {}), ("supervise", {}), ("escalate", {}), ("accept", {}),
             ("note", {"note": "x"}), ("escalate", {}), ("resolve", {"reply": "ok"})]
    for action, f in steps:
        v = case["version"]
        case = desk.act_ok(case, action, **f)
        assert case["version"] == v + 1
        n += 1
        hist = desk.history(case["id"])
        assert len(hist) == n, (action, hist)
        assert hist[-1]["at"] == case["updated_at"]


# --------------------------------------------------------------------------------------
# 退单: return, re-route, supervision


def test_return_reroutes_then_supervision_decides(desk):
    case = desk.dispatched()
    first = case["unit"]
    assert first not in desk.supervision

    # first return: back to routing, no unit, no deadlines
    case = desk.act_ok(case, "return", reason="wrongly assigned: not our category")
    assert case["state"] == "returned" and case["unit"] is None
    assert case["accept_by"] is None and case["resolve_by"] is None
    assert case["return_count"] == 1 and case["returned_by"] == [first]
    assert case["level"] == 0
    case = desk.wait_state(case["id"], "dispatched", case["version"] + 1)
    second = case["unit"]
    assert second != first and second not in case["returned_by"], case
    assert second not in desk.supervision, \
        f"returned once of max_returns 2: routed again, not to supervision: {case!r}"
    assert case["return_count"] == 1 and case["returned_by"] == [first]
    assert case["accept_by"] is not None and case["resolve_by"] is not None

    # accepted, then returned again: the max_returns-th return goes to supervision
    case = desk.act_ok(case, "accept")
    case = desk.act_ok(case, "return", reason="not ours either")
    assert case["state"] == "returned" and case["return_count"] == 2
    assert case["returned_by"] == [first, second]
    case = desk.wait_state(case["id"], "dispatched", case["version"] + 1)
    assert case["unit"] in desk.supervision, case
    assert desk.units[case["unit"]]["kind"] == "supervision"
    assert case["returned_by"] == [first, second] and case["return_count"] == 2

    hist = desk.history(case["id"])
    assert_history_well_formed(hist)
    assert [e["type"] for e in hist] == ["created", "dispatched", "returned", "dispatched",
                                         "accepted", "returned", "dispatched"], hist
    check_event(hist[2], case, "returned", "returned", ACTOR,
                "wrongly assigned: not our category", unit=None)
    check_event(hist[3], case, "dispatched", "dispatched", ROUTER, None, unit=second)
    check_event(hist[5], case, "returned", "returned", ACTOR, "not ours either", unit=None)
    check_event(hist[6], case, "dispatched", "dispatched", ROUTER, None)
    assert "supervision" in hist[6]["note"], hist[6]

    # Supervision is where returns end: it decides by reassigning, it cannot return.
    desk.act_err(case["id"], "return", "conflict", field="action", contains="supervision",
                 reason="not ours")
    target = next(u for u in desk.units if u not in desk.supervision
                  and u not in (first, second))
    case = desk.act_ok(case, "reassign", unit=target)
    assert case["state"] == "dispatched" and case["unit"] == target


def test_returned_case_leaves_its_units_list(desk):
    case = desk.dispatched()
    unit = case["unit"]
    assert case["id"] in desk.ids({"unit": unit})
    case = desk.act_ok(case, "return", reason="not ours")
    case = desk.wait_state(case["id"], "dispatched", case["version"] + 1)
    assert case["id"] not in desk.ids({"unit": unit})
    assert case["id"] in desk.ids({"unit": case["unit"]})
    assert case["id"] in desk.ids({"unit": case["unit"], "state": "dispatched"})
    assert case["id"] not in desk.ids({"state": "returned"})


# --------------------------------------------------------------------------------------
# 延期: extensions


def test_extension_approved_moves_resolve_by(desk):
    case = desk.accepted()
    old_by = case["resolve_by"]
    until = old_by + 3 * DAY_MS
    case = desk.act_ok(case, "extend", until=until, reason="waiting for a part")
    assert case["extension_until"] == until and case["resolve_by"] == old_by
    assert case["state"] == "accepted"

    # a second request while one waits
    before = case["version"]
    desk.act_err(case["id"], "extend", "conflict", field="action", until=until + DAY_MS,
                 reason="again")
    assert desk.get(case["id"])["version"] == before

    case = desk.act_ok(case, "approve_extension", note="approved by the office")
    assert case["resolve_by"] == until and case["extension_until"] is None
    assert case["state"] == "accepted"

    # nothing waits any more
    desk.act_err(case["id"], "approve_extension", "conflict", field="action")
    desk.act_err(case["id"], "reject_extension", "conflict", field="action")

    hist = desk.history(case["id"])
    assert [e["type"] for e in hist][-2:] == ["extension_requested", "extension_approved"]
    check_event(hist[-2], case, "extension_requested", "accepted", ACTOR, "waiting for a part")
    check_event(hist[-1], case, "extension_approved", "accepted", ACTOR,
                "approved by the office")


def test_extension_rejected_keeps_resolve_by(desk):
    case = desk.dispatched()     # a dispatched case may ask too
    old_by = case["resolve_by"]
    case = desk.act_ok(case, "extend", until=old_by + DAY_MS, reason="need a survey")
    assert case["state"] == "dispatched"
    case = desk.act_ok(case, "reject_extension", note="no")
    assert case["extension_until"] is None and case["resolve_by"] == old_by
    # after a rejection a new request may be made, and approved
    case = desk.act_ok(case, "extend", until=old_by + 2 * DAY_MS, reason="really")
    case = desk.act_ok(case, "approve_extension")
    assert case["resolve_by"] == old_by + 2 * DAY_MS
    types = [e["type"] for e in desk.history(case["id"])]
    assert types[-4:] == ["extension_requested", "extension_rejected", "extension_requested",
                          "extension_approved"], types


def test_approve_without_a_request_is_a_conflict(desk):
    case = desk.dispatched()
    r = desk.act_err(case["id"], "approve_extension", "conflict", field="action")
    assert "extension" in r.body["error"]["message"]
    desk.act_err(case["id"], "reject_extension", "conflict", field="action")
    assert desk.get(case["id"]) == case


def test_extension_must_be_later_than_resolve_by(desk):
    case = desk.accepted()
    for until in (case["resolve_by"], case["resolve_by"] - DAY_MS):
        desk.act_err(case["id"], "extend", "invalid_argument", field="until",
                     until=until, reason="x")
    desk.act_err(case["id"], "extend", "invalid_argument", field="until",
                 contains="until", until=now_ms() - 1000, reason="x")
    # More than a year ahead is refused too: an extension is not a way to park a case.
    desk.act_err(case["id"], "extend", "invalid_argument", field="until",
                 contains="a year", until=now_ms() + 400 * DAY_MS, reason="x")
    assert desk.get(case["id"]) == case


# --------------------------------------------------------------------------------------
# 催办 / 督办 / escalation


def test_urge_supervise_escalate(desk):
    case = desk.dispatched()
    unit, accept_by, resolve_by = case["unit"], case["accept_by"], case["resolve_by"]
    assert case["supervised"] is False and case["level"] == 0
    assert case["id"] in desk.ids({"supervised": False})
    assert case["id"] not in desk.ids({"supervised": True})

    case = desk.act_ok(case, "urge", note="please hurry")
    assert case["state"] == "dispatched" and case["unit"] == unit
    case = desk.act_ok(case, "urge")     # urging again is allowed
    case = desk.act_ok(case, "supervise", note="put under supervision")
    assert case["supervised"] is True and case["state"] == "dispatched"
    r = desk.act_err(case["id"], "supervise", "conflict", field="action")
    assert "supervised" in r.body["error"]["message"]
    assert case["id"] in desk.ids({"supervised": True})
    assert case["id"] in desk.ids({"supervised": True, "unit": unit, "state": "dispatched"})
    assert case["id"] not in desk.ids({"supervised": False})

    case = desk.act_ok(case, "escalate", note="overdue")
    assert case["level"] == 1 and case["unit"] == unit and case["state"] == "dispatched"
    case = desk.act_ok(case, "accept")
    case = desk.act_ok(case, "escalate")
    assert case["level"] == 2 and case["state"] == "accepted"
    # none of these move the deadlines
    assert (case["accept_by"], case["resolve_by"]) == (accept_by, resolve_by)
    # supervision survives the rest of the loop
    case = desk.act_ok(case, "resolve", reply="done")
    assert case["supervised"] is True and case["level"] == 2
    assert case["id"] in desk.ids({"supervised": True, "state": "resolved"})

    types = [e["type"] for e in desk.history(case["id"])]
    assert types == ["created", "dispatched", "urged", "urged", "supervised", "escalated",
                     "accepted", "escalated", "resolved"], types
    hist = desk.history(case["id"])
    check_event(hist[2], case, "urged", "dispatched", ACTOR, "please hurry")
    check_event(hist[4], case, "supervised", "dispatched", ACTOR, "put under supervision")
    check_event(hist[5], case, "escalated", "dispatched", ACTOR, "overdue")


# --------------------------------------------------------------------------------------
# reopening


def test_unsatisfied_callback_reopens_then_closes(desk):
    case = desk.accepted()
    unit = case["unit"]
    old = (case["accept_by"], case["resolve_by"])
    case = desk.act_ok(case, "resolve", reply="Repaired.")
    time.sleep(0.01)    # the new deadlines are counted from a later clock
    t0 = now_ms()
    case = desk.act_ok(case, "callback", satisfaction="unsatisfied",
                       note="still dark at night")
    t1 = now_ms()
    assert case["state"] == "dispatched" and case["unit"] == unit
    assert case["reopen_count"] == 1 and case["satisfaction"] == "unsatisfied"
    desk.assert_fresh_deadlines(case, t0, t1)
    # counted anew from the reopening (equal when both fall outside working hours)
    assert case["accept_by"] >= old[0] and case["resolve_by"] >= old[1]
    assert case["id"] in desk.ids({"state": "dispatched", "unit": unit})
    assert case["id"] not in desk.ids({"state": "resolved"})

    # the unit signs for it again and the loop closes
    desk.act_err(case["id"], "resolve", "conflict", field="action", reply="x")
    case = desk.act_ok(case, "accept")
    case = desk.act_ok(case, "resolve", reply="Replaced the lamp and the cable.")
    assert case["reply"] == "Replaced the lamp and the cable."
    case = desk.act_ok(case, "callback", satisfaction="satisfied")
    assert case["state"] == "closed" and case["reopen_count"] == 1
    assert case["satisfaction"] == "satisfied"
    assert case["id"] in desk.ids({"state": "closed", "unit": unit})

    hist = desk.history(case["id"])
    assert [e["type"] for e in hist] == ["created", "dispatched", "accepted", "resolved",
                                         "reopened", "accepted", "resolved", "callback"], hist
    check_event(hist[4], case, "reopened", "dispatched", ACTOR, "still dark at night")
    check_event(hist[7], case, "callback", "closed", ACTOR, None)


# --------------------------------------------------------------------------------------
# reassign, merge, withdraw


def test_reassign_to_another_unit(desk):
    case = desk.accepted()
    old_unit = case["unit"]
    target = next(u for u in desk.units if u != old_unit and u not in desk.supervision)
    case = desk.act_ok(case, "escalate")
    assert case["level"] == 1
    time.sleep(0.01)
    t0 = now_ms()
    case = desk.act_ok(case, "reassign", unit=target, note="the district office takes it")
    t1 = now_ms()
    assert case["state"] == "dispatched" and case["unit"] == target and case["level"] == 0
    desk.assert_fresh_deadlines(case, t0, t1)
    assert case["id"] in desk.ids({"unit": target})
    assert case["id"] in desk.ids({"unit": target, "state": "dispatched"})
    assert case["id"] not in desk.ids({"unit": old_unit})
    assert case["id"] not in desk.ids({"state": "accepted"})
    ev = desk.history(case["id"])[-1]
    check_event(ev, case, "reassigned", "dispatched", ACTOR, "the district office takes it")

    # the new unit signs for it
    case = desk.act_ok(case, "accept")
    assert case["unit"] == target
    # reassigning to the unit that has it would only reset its deadlines: refused
    desk.act_err(case["id"], "reassign", "conflict", field="unit", unit=target)


def test_reassign_drops_a_waiting_extension(desk):
    case = desk.dispatched()
    case = desk.act_ok(case, "extend", until=case["resolve_by"] + DAY_MS, reason="x")
    target = next(u for u in desk.units if u != case["unit"])
    case = desk.act_ok(case, "reassign", unit=target)
    assert case["extension_until"] is None
    desk.act_err(case["id"], "approve_extension", "conflict", field="action")


def test_reassign_to_an_unknown_unit_is_invalid(desk):
    case = desk.dispatched()
    desk.act_err(case["id"], "reassign", "invalid_argument", field="unit",
                 contains="NO-SUCH-UNIT", unit="NO-SUCH-UNIT")
    # codes are exact
    desk.act_err(case["id"], "reassign", "invalid_argument", field="unit",
                 unit=case["unit"].lower())
    assert desk.get(case["id"]) == case


def test_merge_into_another_case(desk):
    target = desk.dispatched()
    case = desk.dispatched()
    assert case["duplicate_of"] is None
    case = desk.act_ok(case, "merge", into=target["id"], note="same lamp")
    assert case["state"] == "merged" and case["duplicate_of"] == target["id"]
    ev = desk.history(case["id"])[-1]
    check_event(ev, case, "merged", "merged", ACTOR, "same lamp")
    # the target is untouched
    assert desk.get(target["id"]) == target
    assert case["id"] in desk.ids({"state": "merged"})
    assert case["id"] not in desk.ids({"state": "dispatched"})

    # into a merged case: merge into the case it joined instead
    third = desk.dispatched()
    r = desk.act_err(third["id"], "merge", "invalid_argument", field="into",
                     into=case["id"])
    assert "merged" in r.body["error"]["message"]
    # into a missing case
    desk.act_err(third["id"], "merge", "not_found", field="into", into=10_000_000)
    # into itself (the parser)
    desk.act_err(third["id"], "merge", "invalid_argument", field="into", into=third["id"])
    assert desk.get(third["id"]) == third
    # a merged case takes no more actions but notes
    desk.act_err(case["id"], "merge", "conflict", field="action", into=third["id"],
                 contains="merged")


def test_merge_into_a_withdrawn_case_is_invalid(desk):
    gone = desk.act_ok(desk.dispatched(), "withdraw")
    case = desk.dispatched()
    r = desk.act_err(case["id"], "merge", "invalid_argument", field="into", into=gone["id"])
    assert "withdrawn" in r.body["error"]["message"]
    assert desk.get(case["id"]) == case


def test_merge_follows_a_duplicate_to_its_root(desk):
    """The router links a second report in the same grid cell to the first; a case
    merged into the second joins the first, and the first cannot join its own
    duplicate."""
    category, path = desk.fresh_place()
    root = desk.dispatched(category=category, path=path)
    dup = desk.dispatched(category=category, path=path)
    assert dup["duplicate_of"] == root["id"], dup
    other = desk.dispatched()
    other = desk.act_ok(other, "merge", into=dup["id"])
    assert other["duplicate_of"] == root["id"], other
    desk.act_err(root["id"], "merge", "invalid_argument", field="into", into=dup["id"])
    assert desk.get(root["id"]) == root


@pytest.mark.parametrize("stage", ["dispatched", "accepted"])
def test_withdraw(desk, stage):
    case = desk.dispatched() if stage == "dispatched" else desk.accepted()
    unit = case["unit"]
    case = desk.act_ok(case, "withdraw", note="the resident solved it")
    assert case["state"] == "withdrawn"
    ev = desk.history(case["id"])[-1]
    check_event(ev, case, "withdrawn", "withdrawn", ACTOR, "the resident solved it",
                unit=unit)
    assert case["id"] in desk.ids({"state": "withdrawn"})
    assert case["id"] not in desk.ids({"state": stage})
    desk.act_err(case["id"], "withdraw", "conflict", field="action", contains="withdrawn")


# --------------------------------------------------------------------------------------
# the state machine


def test_resolve_while_dispatched_is_a_conflict(desk):
    case = desk.dispatched()
    r = desk.act_err(case["id"], "resolve", "conflict", field="action", reply="done")
    msg = r.body["error"]["message"]
    assert "dispatched" in msg and "accepted" in msg, msg
    assert desk.get(case["id"]) == case
    assert len(desk.history(case["id"])) == 2


def test_accept_twice_is_a_conflict(desk):
    case = desk.accepted()
    r = desk.act_err(case["id"], "accept", "conflict", field="action")
    assert "accepted" in r.body["error"]["message"]
    assert desk.get(case["id"]) == case


def test_callback_before_resolve_is_a_conflict(desk):
    case = desk.accepted()
    r = desk.act_err(case["id"], "callback", "conflict", field="action",
                     satisfaction="satisfied")
    assert "accepted" in r.body["error"]["message"] and "resolved" in r.body["error"]["message"]


def test_resolved_case_allows_only_callback_and_note(desk):
    case = desk.act_ok(desk.accepted(), "resolve", reply="done")
    other = desk.dispatched()
    target = next(u for u in desk.units if u != case["unit"])
    bodies = action_bodies(other["id"], target)
    for action, f in bodies.items():
        if action == "callback":
            continue
        desk.act_err(case["id"], action, "conflict", field="action", contains="resolved", **f)
    assert desk.get(case["id"]) == case
    case = desk.act_ok(case, "note", note="still allowed")


@pytest.mark.parametrize("end", ["closed", "merged", "withdrawn"])
def test_final_states_allow_only_note(desk, end):
    other = desk.dispatched()
    case = desk.accepted()
    if end == "closed":
        case = desk.act_ok(case, "resolve", reply="done")
        case = desk.act_ok(case, "callback", satisfaction="satisfied")
    elif end == "merged":
        case = desk.act_ok(case, "merge", into=other["id"])
    else:
        case = desk.act_ok(case, "withdraw")
    assert case["state"] == end
    target = next(u for u in desk.units if u != case["unit"])
    for action, f in action_bodies(other["id"], target).items():
        r = desk.act_err(case["id"], action, "conflict", field="action", **f)
        msg = r.body["error"]["message"]
        assert end in msg and action in msg, msg
    assert desk.get(case["id"]) == case
    n = len(desk.history(case["id"]))
    case = desk.act_ok(case, "note", note=f"a note on a {end} case")
    assert case["state"] == end
    hist = desk.history(case["id"])
    assert len(hist) == n + 1
    check_event(hist[-1], case, "noted", end, ACTOR, f"a note on a {end} case")


def test_dispatched_case_refuses_what_needs_accepted_or_resolved(desk):
    case = desk.dispatched()
    desk.act_err(case["id"], "resolve", "conflict", field="action", reply="x")
    desk.act_err(case["id"], "callback", "conflict", field="action", satisfaction="satisfied")
    assert desk.get(case["id"]) == case


def test_registered_case(client, catalog):
    """Without a router a case stays registered: accept and the unit's actions are
    conflicts; supervise, reassign and withdraw are the supervisor's and the desk's."""
    d = Desk(client, catalog)
    case = d.create()
    assert case["state"] == "registered"
    for action, f in [("accept", {}), ("resolve", {"reply": "x"}), ("urge", {}),
                      ("escalate", {}), ("return", {"reason": "x"}),
                      ("extend", {"until": now_ms() + DAY_MS, "reason": "x"}),
                      ("callback", {"satisfaction": "satisfied"})]:
        r = d.act_err(case["id"], action, "conflict", field="action", **f)
        assert "registered" in r.body["error"]["message"], r.body
    case = d.act_ok(case, "supervise")
    assert case["supervised"] is True and case["state"] == "registered"
    case = d.act_ok(case, "note", note="waiting for routing")
    unit = next(u for u in d.units if u not in d.supervision)
    t0 = now_ms()
    case = d.act_ok(case, "reassign", unit=unit)
    t1 = now_ms()
    assert case["state"] == "dispatched" and case["unit"] == unit
    d.assert_fresh_deadlines(case, t0, t1)
    assert case["id"] in d.ids({"unit": unit, "state": "dispatched"})
    assert case["id"] not in d.ids({"state": "registered"})
    other = d.create()
    other = d.act_ok(other, "withdraw")
    assert other["state"] == "withdrawn"


# --------------------------------------------------------------------------------------
# version, ids, errors, rid


def test_stale_version_is_a_conflict(desk):
    case = desk.dispatched()
    v = case["version"]
    r = desk.act_err(case["id"], "accept", "conflict", field="version", version=v - 1)
    assert str(v) in r.body["error"]["message"]
    desk.act_err(case["id"], "accept", "conflict", field="version", version=v + 1)
    assert desk.get(case["id"]) == case
    case = desk.act_ok(case, "accept")              # with version v
    # v is stale now, even for a note
    desk.act_err(case["id"], "note", "conflict", field="version", version=v, note="late")
    # the version is checked before the state
    desk.act_err(case["id"], "accept", "conflict", field="version", version=v)
    # without a version: acts on whatever is current
    desk.act_ok(case, "note", with_version=False, note="no version given")


def test_missing_case_is_not_found(desk):
    for action, f in action_bodies(1, "CITY-SUPERVISION").items():
        if action == "merge":
            f = {"into": 2}
        r = desk.act_err(50_000_000, action, "not_found", field="id", **f)
        assert "50000000" in r.body["error"]["message"]
    desk.act_err(50_000_000, "note", "not_found", field="id", note="x")


def test_parser_errors_reach_the_client(desk):
    case = desk.dispatched()
    r = desk.act_err(case["id"], "accept", "invalid_argument", field="reply", reply="x")
    assert r.body["error"]["message"] == "reply is not used by action accept"
    r = desk.act_err(case["id"], "resolve", "invalid_argument", field="reply")
    assert r.body["error"]["message"] == "reply is required by action resolve"
    desk.act_err(case["id"], "sign", "invalid_argument", field="action", contains="accept")
    desk.act_err(case["id"], "accept", "invalid_argument", field="version", version=0)
    desk.act_err(case["id"], "note", "invalid_argument", field="note")
    desk.act_err(case["id"], "callback", "invalid_argument", field="satisfaction",
                 satisfaction="meh")
    desk.act_err(case["id"], "accept", "invalid_argument", field="color", color="red")
    r = desk.c.call("case.act", {"action": "accept"})
    assert r.error_code == "invalid_argument" and r.error_field == "id", r.describe()
    r = desk.c.call("case.act", [case["id"], "accept"])
    assert r.error_code == "bad_request", r.describe()
    assert desk.get(case["id"]) == case


@pytest.mark.parametrize("rid", [7, "r-act-1", 2.5, True, -3, b"\x00\x01"])
def test_rid_is_echoed(desk, rid):
    case = desk.dispatched()
    b = {"id": case["id"], "action": "note", "note": "with a rid", "rid": rid}
    desk.c.send("case.act", b)
    r = desk.c.recv_reply()
    assert r is not None and r.ok, r
    assert "rid" in r.body and r.body["rid"] == rid, r.describe()
    # and on refusals
    for body in ({"id": case["id"], "action": "resolve", "reply": "x", "rid": rid},
                 {"id": case["id"], "action": "accept", "version": 1, "rid": rid},
                 {"id": 60_000_000, "action": "accept", "rid": rid},
                 {"id": case["id"], "action": "bogus", "rid": rid}):
        desk.c.send("case.act", body)
        r = desk.c.recv_reply()
        assert r is not None and not r.ok, r
        assert "rid" in r.body and r.body["rid"] == rid, r.describe()


def test_pipelined_actions_each_get_their_reply(desk):
    """Notes on ten cases, pipelined: every one is answered under its rid and applied
    once."""
    cases = [desk.dispatched() for _ in range(10)]
    reqs = [("case.act", {"id": c["id"], "action": "note", "note": f"n{i}"})
            for i, c in enumerate(cases)]
    replies = desk.c.pipeline(reqs)
    for i, (c, r) in enumerate(zip(cases, replies)):
        assert r.ok, r.describe()
        assert r.body["case"]["id"] == c["id"] and r.body["case"]["version"] == c["version"] + 1
        hist = desk.history(c["id"])
        assert [e["note"] for e in hist if e["type"] == "noted"] == [f"n{i}"]


def test_concurrent_versions_let_exactly_one_win(desk):
    """Two clients act on the same version: one wins, the other gets conflict."""
    case = desk.dispatched()
    reqs = [("case.act", {"id": case["id"], "action": a, "version": case["version"],
                          **({"note": "x"} if a == "note" else {})})
            for a in ("accept", "note", "urge", "supervise", "escalate")]
    replies = desk.c.pipeline(reqs)
    ok = [r for r in replies if r.ok]
    assert len(ok) == 1, [r.describe() for r in replies]
    assert all(r.error_code == "conflict" and r.error_field == "version"
               for r in replies if not r.ok), [r.describe() for r in replies]
    assert desk.get(case["id"])["version"] == case["version"] + 1
    assert len(desk.history(case["id"])) == 3


# --------------------------------------------------------------------------------------
# case.list follows


def test_list_follows_the_loop(desk):
    case = desk.dispatched()
    cid, unit = case["id"], case["unit"]

    def where():
        return {s for s in ("dispatched", "accepted", "resolved", "closed")
                if cid in desk.ids({"state": s})}

    assert where() == {"dispatched"}
    assert cid in desk.ids({"unit": unit, "state": "dispatched"})
    case = desk.act_ok(case, "accept")
    assert where() == {"accepted"}
    assert cid in desk.ids({"unit": unit, "state": "accepted"})
    assert cid not in desk.ids({"unit": unit, "state": "dispatched"})
    case = desk.act_ok(case, "resolve", reply="done")
    assert where() == {"resolved"}
    case = desk.act_ok(case, "callback", satisfaction="satisfied")
    assert where() == {"closed"}
    assert cid in desk.ids({"unit": unit})
    assert cid in desk.ids({"district": case["location"]["district"], "state": "closed"})
    assert cid in desk.ids({"state": "closed", "overdue": False})
