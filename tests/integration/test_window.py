"""The one-stop window (一门式): a request settled at the counter is registered already
resolved and can be evaluated on the spot; one that needs a higher office's approval is
handled on the resident's behalf (代办): dispatched by the usual rules, with the
community that follows it recorded as `agent`."""

import time

import pytest

from gridline_harness import running_daemon, unique_request_id, wait_dispatched


@pytest.fixture(scope="module")
def window():
    with running_daemon(["--routers", "1", "--escalators", "0"]) as d:
        yield d


@pytest.fixture
def c(window):
    return window.client()


def body(**over):
    b = {
        "request_id": unique_request_id(),
        "channel": "window",
        "category": "social_security",
        "description": "Pension certificate",
        "location": {"district": "D01", "street": "D01-S01", "community": "D01-S01-C01"},
        "reporter": {"name": "Zhao", "phone": "13900000001"},
    }
    b.update(over)
    return b


def test_settled_at_the_counter_is_resolved_and_evaluated_on_the_spot(c):
    case = c.ok("case.create", body(resolved_on_spot=True))["case"]
    assert case["state"] == "resolved" and case["resolved_on_spot"] is True
    assert case["resolved_at"] == case["created_at"]
    time.sleep(0.3)
    # not routed: nothing for a unit to do
    again = c.ok("case.get", {"id": case["id"]})["case"]
    assert again["state"] == "resolved" and again["unit"] is None
    closed = c.ok("case.act", {"id": case["id"], "action": "callback",
                               "satisfaction": "satisfied"})["case"]
    assert closed["state"] == "closed" and closed["satisfaction"] == "satisfied"


def test_handled_on_the_residents_behalf_is_dispatched_with_its_agent(c):
    case = c.ok("case.create", body(agent="D01-S01-C01"))["case"]
    assert case["agent"] == "D01-S01-C01" and case["state"] == "registered"
    routed = wait_dispatched(c, case["id"])
    assert routed["agent"] == "D01-S01-C01" and routed["unit"] is not None
    # the agent stays with the case through the loop
    accepted = c.ok("case.act", {"id": case["id"], "action": "accept"})["case"]
    assert accepted["agent"] == "D01-S01-C01"


@pytest.mark.parametrize("agent", ["D01", "D01-S01", "NO-SUCH-PLACE", ""])
def test_agent_must_be_a_community(c, agent):
    r = c.call("case.create", body(agent=agent))
    assert not r.ok and r.error_code == "invalid_argument", r.describe()
    assert r.body["error"]["field"] == "agent"


def test_agent_and_resolved_on_spot_do_not_go_together(c):
    r = c.call("case.create", body(agent="D01-S01-C01", resolved_on_spot=True))
    assert not r.ok and r.error_code == "invalid_argument"
    assert r.body["error"]["field"] == "agent"


def test_agent_is_part_of_the_request_for_idempotency(c):
    b = body(agent="D01-S01-C01")
    first = c.ok("case.create", b)["case"]
    assert c.ok("case.create", b)["replayed"] is True
    other = dict(b, agent="D01-S01-C02")
    r = c.call("case.create", other)
    assert not r.ok and r.error_code == "conflict", r.describe()
    assert first["id"] == c.ok("case.create", b)["case"]["id"]
