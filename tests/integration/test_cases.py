"""case.create / case.get / case.list / catalog.get / mmi.service against the
real daemon, written only from shared/docs/protocol.md."""

import re
import time

import pytest

from gridline_harness import (CHANNELS, STATES, URGENCIES, case_body, fetch_catalog,
                              list_all, phone_matches, unique_request_id)

CODE_RE = re.compile(r"^GL-\d{8}-\d{6}$")

CASE_FIELDS = ["id", "code", "version", "state", "channel", "category", "urgency",
               "title", "description", "location", "reporter", "unit", "level",
               "accept_by", "resolve_by", "created_at", "updated_at", "supervised",
               "duplicate_of", "reopen_count", "satisfaction"]


def check_case_shape(case, sent=None):
    """The case fields of protocol.md "The case", with their types."""
    missing = [f for f in CASE_FIELDS if f not in case]
    assert not missing, f"case lacks {missing}: {case!r}"
    assert isinstance(case["id"], int) and not isinstance(case["id"], bool)
    assert isinstance(case["code"], str) and CODE_RE.match(case["code"]), case["code"]
    assert isinstance(case["version"], int) and case["version"] >= 1
    assert case["state"] in STATES, case["state"]
    assert case["channel"] is None or case["channel"] in CHANNELS
    assert case["category"] is None or isinstance(case["category"], str)
    assert case["urgency"] in URGENCIES
    assert case["title"] is None or isinstance(case["title"], str)
    assert isinstance(case["description"], str)
    assert isinstance(case["location"], dict) and isinstance(case["location"].get("district"), str)
    assert case["reporter"] is None or isinstance(case["reporter"], dict)
    assert case["unit"] is None or isinstance(case["unit"], str)
    assert isinstance(case["level"], int) and case["level"] >= 0
    for f in ("accept_by", "resolve_by"):
        assert case[f] is None or isinstance(case[f], int), (f, case[f])
    now = int(time.time() * 1000)
    assert isinstance(case["created_at"], int)
    assert abs(case["created_at"] - now) < 10 * 60 * 1000, \
        f"created_at {case['created_at']} is not milliseconds near now ({now})"
    assert isinstance(case["updated_at"], int) and case["updated_at"] >= case["created_at"]
    assert isinstance(case["supervised"], bool)
    assert case["duplicate_of"] is None or isinstance(case["duplicate_of"], int)
    assert isinstance(case["reopen_count"], int) and case["reopen_count"] >= 0
    assert case["satisfaction"] is None or isinstance(case["satisfaction"], str)
    if sent is not None:
        for f in ("channel", "category", "urgency", "title", "description"):
            if f in sent:
                assert case[f] == sent[f], f"{f}: sent {sent[f]!r}, case has {case[f]!r}"
        for k, v in sent.get("location", {}).items():
            assert case["location"].get(k) == v, \
                f"location.{k}: sent {v!r}, case has {case['location'].get(k)!r}"
        rep = sent.get("reporter")
        if rep:
            assert case["reporter"]["name"] == rep["name"]
            assert phone_matches(rep["phone"], case["reporter"].get("phone")), case["reporter"]


# -- catalogue and service discovery ---------------------------------------------

def test_catalog_shape(client):
    body = client.ok("catalog.get", {})
    for key in ("categories", "units", "places", "sla"):
        assert key in body, f"catalog.get lacks {key}"
    assert body["categories"] and all({"code", "name"} <= set(c) for c in body["categories"])
    assert body["units"] and all({"code", "name"} <= set(u) for u in body["units"])
    assert len(body["places"]) >= 2, "the default city should have at least 2 districts"
    cat = fetch_catalog(client)
    assert cat.full_paths(), "no district/street/community/grid path in the default city"


@pytest.mark.parametrize("name", ["case.create", "case.get", "case.list", "catalog.get"])
def test_mmi_200(client, name):
    r, body = client.mmi(name)
    assert r.well_formed, r.describe()
    assert r.service == "mmi.service", r.describe()
    assert body == "200", r.describe()


@pytest.mark.parametrize("name", ["no.such.service", "case.nope", "", "x" * 300])
def test_mmi_404(client, name):
    r, body = client.mmi(name)
    assert r.well_formed, r.describe()
    assert body == "404", r.describe()


@pytest.mark.parametrize("name", ["case.act", "feed.pull", "stats.query"])
def test_mmi_agrees_with_dispatch(client, name):
    """mmi.service says 200 exactly for the services that are served: a 404
    service answers unknown_service, a 200 one anything else."""
    r, mmi = client.mmi(name)
    assert mmi in ("200", "404"), r.describe()
    rep = client.call(name, {})
    assert rep.well_formed and rep.is_map(), rep.describe()
    if mmi == "404":
        assert rep.error_code == "unknown_service", f"mmi says 404 but {name} -> {rep.describe()}"
    else:
        assert rep.error_code != "unknown_service", f"mmi says 200 but {name} -> {rep.describe()}"


def test_unknown_service(client):
    r = client.call("no.such.service", {"x": 1})
    assert r.well_formed, r.describe()
    assert r.service == "no.such.service", r.describe()
    assert r.body["ok"] is False and r.error_code == "unknown_service", r.describe()
    assert isinstance(r.body["error"].get("message"), str)
    client.expect_silence()


def test_unknown_service_echoes_rid(client):
    r = client.call_rid("no.such.service", {}, rid="u-1")
    assert r.error_code == "unknown_service" and r.rid == "u-1", r.describe()


# -- create / get -----------------------------------------------------------------

def test_create_and_get(client, catalog):
    sent = case_body(catalog, attachments=["https://example.org/photo1.jpg"])
    r = client.call("case.create", sent)
    assert r.well_formed and r.service == "case.create", r.describe()
    assert r.ok, r.describe()
    assert not r.body.get("replayed"), "a first create must not say replayed"
    case = r.body["case"]
    check_case_shape(case, sent)
    assert case["version"] == 1
    assert case["state"] == "registered"

    by_id = client.ok("case.get", {"id": case["id"]})["case"]
    by_code = client.ok("case.get", {"code": case["code"]})["case"]
    assert by_id["id"] == by_code["id"] == case["id"]
    assert by_id["code"] == by_code["code"] == case["code"]
    for c in (by_id, by_code):
        check_case_shape(c, sent)
        assert c["created_at"] == case["created_at"]


def test_create_minimal_defaults(client, catalog):
    """Only the required fields: request_id, description, location.district."""
    d = catalog.districts[0]
    sent = {"request_id": unique_request_id("min"), "description": "Noise at night",
            "location": {"district": d}}
    case = client.ok("case.create", sent)["case"]
    check_case_shape(case, sent)
    assert case["urgency"] == "normal", "urgency defaults to normal"
    assert case["state"] == "registered" and case["version"] == 1


def test_create_every_channel_and_urgency(client, catalog):
    for ch in CHANNELS:
        for u in URGENCIES:
            sent = case_body(catalog, channel=ch, urgency=u)
            case = client.ok("case.create", sent)["case"]
            assert case["channel"] == ch and case["urgency"] == u


def test_codes_and_ids_unique(client, catalog):
    reqs = [("case.create", case_body(catalog)) for _ in range(40)]
    reps = client.pipeline(reqs)
    ids, codes = set(), set()
    for r in reps:
        assert r.ok, r.describe()
        ids.add(r.body["case"]["id"])
        codes.add(r.body["case"]["code"])
        assert CODE_RE.match(r.body["case"]["code"])
    assert len(ids) == 40 and len(codes) == 40


def test_history_has_created(client, catalog):
    case = client.ok("case.create", case_body(catalog))["case"]
    body = client.ok("case.get", {"id": case["id"], "history": True})
    assert body["case"]["id"] == case["id"]
    hist = body.get("history")
    assert isinstance(hist, list) and hist, f"no history: {body!r}"
    created = [e for e in hist if e.get("type") == "created"]
    assert len(created) == 1, hist
    ev = created[0]
    assert ev.get("case_id") == case["id"], ev
    assert ev.get("code") == case["code"], ev
    assert isinstance(ev.get("seq"), int) and isinstance(ev.get("at"), int), ev


def test_get_missing(client):
    r = client.call("case.get", {"id": 987654321})
    assert r.well_formed and r.error_code == "not_found", r.describe()
    r = client.call("case.get", {"code": "GL-19990101-999999"})
    assert r.error_code == "not_found", r.describe()
    client.expect_silence()


# -- idempotency ------------------------------------------------------------------

def test_replay_same_request_id(daemon):
    c = daemon.client()
    cat = fetch_catalog(c)
    sent = case_body(cat)
    first = c.ok("case.create", sent)
    assert not first.get("replayed")
    before = list_all(c)
    again = c.ok("case.create", sent)
    assert again.get("replayed") is True, f"replay lacks replayed: true: {again!r}"
    assert again["case"]["id"] == first["case"]["id"]
    assert again["case"]["code"] == first["case"]["code"]
    assert again["case"]["created_at"] == first["case"]["created_at"]
    after = list_all(c)
    assert len(after) == len(before) == 1, "a replay stored a new case"
    hist = c.ok("case.get", {"id": first["case"]["id"], "history": True})["history"]
    assert [e["type"] for e in hist].count("created") == 1, hist


def test_replay_with_a_different_rid(client, catalog):
    """rid is the transport's reply tag, not part of the submission: a retry
    that pipelines with a fresh rid is still the same request."""
    sent = case_body(catalog)
    a = client.call_rid("case.create", sent, rid=1001)
    assert a.ok, a.describe()
    b = client.call_rid("case.create", sent, rid=1002)
    assert b.ok, f"same request_id and body, another rid -> {b.describe()}"
    assert b.body.get("replayed") is True and b.body["case"]["id"] == a.body["case"]["id"]


def test_same_request_id_different_body_conflicts(client, catalog):
    sent = case_body(catalog)
    first = client.ok("case.create", sent)["case"]
    changed = dict(sent, description="Something else entirely")
    r = client.call("case.create", changed)
    assert r.well_formed and r.error_code == "conflict", r.describe()
    got = client.ok("case.get", {"id": first["id"]})["case"]
    assert got["description"] == sent["description"], "the original case changed"
    assert got["version"] == 1


# -- rid ----------------------------------------------------------------------------

@pytest.mark.parametrize("rid", [7, "abc-1", 2 ** 40, -3])
def test_rid_echoed(client, catalog, rid):
    r = client.call_rid("case.create", case_body(catalog), rid=rid)
    assert r.ok and r.rid == rid, r.describe()
    r = client.call_rid("case.get", {"id": r.body["case"]["id"]}, rid=rid)
    assert r.ok and r.rid == rid, r.describe()
    r = client.call_rid("case.get", {"id": 999999999}, rid=rid)
    assert r.error_code == "not_found" and r.rid == rid, r.describe()
    r = client.call_rid("case.create", {"description": "no request id"}, rid=rid)
    assert r.error_code == "invalid_argument" and r.rid == rid, r.describe()
    r = client.call_rid("case.list", {"limit": 1}, rid=rid)
    assert r.ok and r.rid == rid, r.describe()
    r = client.call_rid("catalog.get", {}, rid=rid)
    assert r.ok and r.rid == rid, r.describe()


def test_pipelined_all_answered(client, catalog):
    reqs = []
    for i in range(60):
        reqs.append(("case.create", case_body(catalog)))
        reqs.append(("case.get", {"id": 900000000 + i}))
        reqs.append(("case.list", {"limit": 3}))
    reps = client.pipeline(reqs, window=180)
    for (svc, _), r in zip(reqs, reps):
        assert r.well_formed and r.service == svc, r.describe()
        if svc == "case.get":
            assert r.error_code == "not_found", r.describe()
        else:
            assert r.ok, r.describe()
    client.expect_silence()


# -- list -----------------------------------------------------------------------------

def _ids(cases):
    return {c["id"] for c in cases}


def test_list_filters(daemon):
    c = daemon.client()
    cat = fetch_catalog(c)
    assert len(cat.categories) >= 2 and len(cat.districts) >= 2
    paths = cat.full_paths()
    # two full paths in different districts, and a second street in the first if any
    p1 = paths[0]
    p2 = next(p for p in paths if p[0] != p1[0])
    p1b = next((p for p in paths if p[0] == p1[0] and p[1] != p1[1]), None)
    p1c = next((p for p in paths if p[:2] == p1[:2] and p[2] != p1[2]), None)
    p1g = next((p for p in paths if p[:3] == p1[:3] and p[3] != p1[3]), None)
    variants = [p1, p2] + [p for p in (p1b, p1c, p1g) if p]
    cats = cat.categories[:3]

    sent = []  # (body, case)
    batch_a = []
    for i in range(20):
        d, s, cm, g = variants[i % len(variants)]
        loc = {"district": d}
        # vary how deep the location goes
        depth = i % 4
        if depth >= 1:
            loc["street"] = s
        if depth >= 2:
            loc["community"] = cm
        if depth >= 3:
            loc["grid"] = g
        body = case_body(cat, category=cats[i % len(cats)], channel=CHANNELS[i % 4],
                         location=loc,
                         reporter={"name": f"R{i}", "phone": f"1390000{i % 5:04d}"})
        batch_a.append(body)
    for b in batch_a:
        sent.append((b, c.ok("case.create", b)["case"]))
    time.sleep(0.05)
    batch_b = [dict(b, request_id=unique_request_id("b")) for b in batch_a[:7]]
    for b in batch_b:
        sent.append((b, c.ok("case.create", b)["case"]))

    all_cases = list_all(c, limit=4)
    assert _ids(all_cases) == {cs["id"] for _, cs in sent}

    def expect(pred):
        return {cs["id"] for b, cs in sent if pred(b)}

    def check(flt, pred):
        got = list_all(c, flt, limit=5)
        exp = expect(pred)
        assert exp, f"test data has no case for {flt}"
        assert _ids(got) == exp, (f"filter {flt}: missing {sorted(exp - _ids(got))}, "
                                  f"extra {sorted(_ids(got) - exp)}")

    check({"state": "registered"}, lambda b: True)
    assert list_all(c, {"state": "closed"}) == []
    for d in {v[0] for v in variants}:
        check({"district": d}, lambda b, d=d: b["location"]["district"] == d)
    for s in {v[1] for v in variants}:
        check({"street": s}, lambda b, s=s: b["location"].get("street") == s)
    for cm in {v[2] for v in variants}:
        check({"community": cm}, lambda b, cm=cm: b["location"].get("community") == cm)
    for g in {v[3] for v in variants}:
        check({"grid": g}, lambda b, g=g: b["location"].get("grid") == g)
    for k in cats:
        check({"category": k}, lambda b, k=k: b["category"] == k)
    for ch in CHANNELS[:4]:
        check({"channel": ch}, lambda b, ch=ch: b["channel"] == ch)
    for i in range(5):
        ph = f"1390000{i:04d}"
        check({"reporter_phone": ph}, lambda b, ph=ph: b["reporter"]["phone"] == ph)
    assert list_all(c, {"reporter_phone": "10000000000"}) == []
    # combined filters narrow (all of them hold)
    check({"district": p1[0], "category": cats[0]},
          lambda b: b["location"]["district"] == p1[0] and b["category"] == cats[0])

    # created_from / created_to split the two batches
    a_max = max(cs["created_at"] for b, cs in sent[:len(batch_a)])
    b_min = min(cs["created_at"] for b, cs in sent[len(batch_a):])
    assert b_min - a_max >= 20, "the two batches are not apart in created_at"
    mid = (a_max + b_min) // 2
    a_ids = {cs["id"] for _, cs in sent[:len(batch_a)]}
    b_ids = {cs["id"] for _, cs in sent[len(batch_a):]}
    assert _ids(list_all(c, {"created_from": mid})) == b_ids
    assert _ids(list_all(c, {"created_to": mid})) == a_ids
    assert _ids(list_all(c, {"created_from": mid, "created_to": mid + 10 ** 7})) == b_ids
    assert _ids(list_all(c, {"created_from": a_max + 10 ** 9})) == set()


def test_list_pagination(daemon):
    c = daemon.client()
    cat = fetch_catalog(c)
    reps = c.pipeline([("case.create", case_body(cat)) for _ in range(47)])
    created = {r.body["case"]["id"] for r in reps if r.ok}
    assert len(created) == 47
    for limit in (1, 5, 10, 47, 50, 500):
        got = list_all(c, limit=limit)
        assert len(got) == 47, f"limit {limit}: {len(got)} cases"
        assert _ids(got) == created, f"limit {limit}: gaps or strangers"
    # default limit is 50: one page with next nil
    body = c.ok("case.list", {})
    assert len(body["cases"]) == 47 and body["next"] is None
    # pages are the right size
    body = c.ok("case.list", {"limit": 10})
    assert len(body["cases"]) == 10 and body["next"] is not None
    # a page stays stable: reading it twice with the same cursor gives the same ids
    body2 = c.ok("case.list", {"limit": 10, "after": body["next"]})
    body3 = c.ok("case.list", {"limit": 10, "after": body["next"]})
    assert [x["id"] for x in body2["cases"]] == [x["id"] for x in body3["cases"]]
    assert not (_ids(body["cases"]) & _ids(body2["cases"]))


def test_list_pagination_while_creating(daemon):
    """Cases created while a client pages through must not make it skip or
    repeat the ones that were there before it began."""
    c = daemon.client()
    cat = fetch_catalog(c)
    first = {r.body["case"]["id"] for r in c.pipeline(
        [("case.create", case_body(cat)) for _ in range(30)])}
    seen = []
    after = None
    while True:
        req = {"limit": 7}
        if after is not None:
            req["after"] = after
        body = c.ok("case.list", req)
        seen += [x["id"] for x in body["cases"]]
        c.ok("case.create", case_body(cat))
        if body["next"] is None:
            break
        after = body["next"]
    assert len(seen) == len(set(seen)), "a case came twice"
    assert first <= set(seen), f"skipped {sorted(first - set(seen))}"


# -- restart --------------------------------------------------------------------------

def test_sigterm_and_restart(daemon):
    c = daemon.client()
    cat = fetch_catalog(c)
    sent = [case_body(cat, description=f"restart case {i}") for i in range(12)]
    cases = [c.ok("case.create", b)["case"] for b in sent]
    daemon.stop()  # SIGTERM; asserts exit code 0
    daemon.start()
    c = daemon.client()
    for b, cs in zip(sent, cases):
        got = c.ok("case.get", {"id": cs["id"]})["case"]
        assert got["code"] == cs["code"] and got["description"] == b["description"]
        check_case_shape(got, b)
        assert c.ok("case.get", {"code": cs["code"]})["case"]["id"] == cs["id"]
        rep = c.ok("case.create", b)
        assert rep.get("replayed") is True and rep["case"]["id"] == cs["id"], rep
    assert _ids(list_all(c)) == {cs["id"] for cs in cases}
    new = c.ok("case.create", case_body(cat))["case"]
    assert new["id"] not in {cs["id"] for cs in cases}
    assert new["code"] not in {cs["code"] for cs in cases}
