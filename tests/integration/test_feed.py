"""feed.pull: the event log as agencies follow it (protocol.md, "feed.pull" and
"Events"). Dense sequence numbers, `after`/`limit`, long poll with `wait_ms`, filters,
and a subscriber that remembers the last sequence number it processed misses nothing
and repeats nothing, across its own restarts and the daemon's."""

import threading
import time

import pytest

from gridline_harness import running_daemon, unique_request_id

LOC = {"district": "D02", "street": "D02-S01", "community": "D02-S01-C01"}


@pytest.fixture
def daemon_with_router():
    with running_daemon(["--routers", "1", "--escalators", "0"]) as d:
        yield d


def create(c, category="roads", district="D02"):
    loc = dict(LOC) if district == "D02" else {"district": district}
    return c.ok("case.create", {"request_id": unique_request_id(), "channel": "web",
                                "category": category, "description": "feed test",
                                "location": loc})["case"]


def pull_all(c, after=0, **extra):
    """Every event after `after`, page by page, as a subscriber would."""
    events = []
    while True:
        body = {"after": after, "limit": 7}
        body.update(extra)
        r = c.ok("feed.pull", body)
        events += r["events"]
        if r["next"] == r["last"] or (not r["events"] and r["next"] == after):
            return events, r
        after = r["next"]


def test_sequence_numbers_are_dense_and_every_change_is_one_event(daemon):
    c = daemon.client()
    ids = [create(c)["id"] for _ in range(5)]
    c.ok("case.act", {"id": ids[0], "action": "supervise"})
    c.ok("case.act", {"id": ids[1], "action": "withdraw"})
    events, last = pull_all(c)
    assert [e["seq"] for e in events] == list(range(1, 8))
    assert last["last"] == 7
    assert [e["type"] for e in events] == ["created"] * 5 + ["supervised", "withdrawn"]
    for e in events:
        assert set(e) >= {"seq", "at", "case_id", "code", "type", "state", "unit", "district",
                          "category", "actor", "note"}, e


def test_after_and_limit_page_without_gaps_or_repeats(daemon):
    c = daemon.client()
    for _ in range(12):
        create(c)
    first = c.ok("feed.pull", {"after": 0, "limit": 5})
    assert [e["seq"] for e in first["events"]] == [1, 2, 3, 4, 5] and first["next"] == 5
    second = c.ok("feed.pull", {"after": 5, "limit": 5})
    assert [e["seq"] for e in second["events"]] == [6, 7, 8, 9, 10]
    rest = c.ok("feed.pull", {"after": 10})
    assert [e["seq"] for e in rest["events"]] == [11, 12] and rest["last"] == 12


def test_after_beyond_the_head_is_refused(daemon):
    c = daemon.client()
    create(c)
    r = c.call("feed.pull", {"after": 2})
    assert not r.ok and r.error_code == "invalid_argument" and r.body["error"]["field"] == "after"
    assert c.ok("feed.pull", {"after": 1})["events"] == []


@pytest.mark.parametrize("body,field", [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"wait_ms": 30001}, "wait_ms"),
    ({"after": -1}, "after"), ({"after": "x"}, "after"), ({"filter": 3}, "filter"),
    ({"filter": {"unit": ""}}, "filter.unit"), ({"filter": {"street": "x"}}, "filter.street"),
    ({"since": 1}, "since"),
])
def test_bad_pulls_are_refused_naming_the_field(daemon, body, field):
    r = daemon.client().call("feed.pull", body)
    assert not r.ok and r.error_code == "invalid_argument", r.describe()
    assert r.body["error"]["field"] == field


def test_long_poll_waits_for_the_next_event_and_times_out_empty(daemon):
    c = daemon.client()
    create(c)
    waiter = daemon.client()
    t0 = time.time()
    result = {}

    def wait():
        result["r"] = waiter.ok("feed.pull", {"after": 1, "wait_ms": 5000}, timeout=8)
        result["t"] = time.time() - t0

    th = threading.Thread(target=wait)
    th.start()
    time.sleep(0.4)
    create(c)
    th.join(8)
    assert [e["seq"] for e in result["r"]["events"]] == [2]
    assert 0.3 <= result["t"] < 2.0, result["t"]
    t1 = time.time()
    empty = c.ok("feed.pull", {"after": 2, "wait_ms": 600})
    assert empty["events"] == [] and empty["last"] == 2
    assert 0.5 <= time.time() - t1 < 2.0


def test_filters_by_district_category_and_unit(daemon_with_router):
    c = daemon_with_router.client()
    roads = create(c, "roads", "D02")
    create(c, "sanitation", "D02")
    create(c, "roads", "D01")
    time.sleep(1.0)   # routed: a dispatched event each
    unit = c.ok("case.get", {"id": roads["id"]})["case"]["unit"]
    got, _ = pull_all(c, filter={"district": "D02", "category": "roads"})
    assert {e["case_id"] for e in got} == {roads["id"]}
    assert [e["type"] for e in got] == ["created", "dispatched"]
    by_unit, _ = pull_all(c, filter={"unit": unit})
    assert by_unit and all(e["unit"] == unit for e in by_unit)
    assert roads["id"] in {e["case_id"] for e in by_unit}


def test_a_subscriber_restarting_mid_stream_misses_nothing_and_repeats_nothing(daemon):
    c = daemon.client()
    for _ in range(10):
        create(c)
    seen = []
    position = 0
    # first life: takes 4, "crashes" after acknowledging them
    r = c.ok("feed.pull", {"after": position, "limit": 4})
    seen += [e["seq"] for e in r["events"]]
    position = r["next"]
    for _ in range(5):
        create(c)
    # second life: a new connection, resumes from the saved position
    c2 = daemon.client()
    events, _ = pull_all(c2, after=position)
    seen += [e["seq"] for e in events]
    assert seen == list(range(1, 16))


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_the_daemon_restarting_mid_stream_loses_no_event(daemon, how):
    c = daemon.client()
    for _ in range(6):
        create(c)
    r = c.ok("feed.pull", {"after": 0, "limit": 3})
    position = r["next"]
    seen = [e["seq"] for e in r["events"]]
    if how == "sigterm":
        daemon.stop()
    else:
        daemon.kill9()
    daemon.start()
    c = daemon.client()
    for _ in range(3):
        create(c)
    events, last = pull_all(c, after=position)
    seen += [e["seq"] for e in events]
    assert seen == list(range(1, 10)) and last["last"] == 9
