"""The `gridline` command-line tool against the real daemon.

Runs $GRIDLINE_BUILD/gridline as a user or a script would (a subprocess, `--endpoint`
pointing at the test daemon) and checks what it prints and how it exits: 0 done, 1 the
daemon refused or did not answer, 2 the command line was wrong. What the tool says it
did is checked against the daemon itself through the harness's own client.
"""

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import time
import unicodedata

import pytest

from gridline_harness import (STATES, build_dir, case_body, fetch_catalog, free_port,
                              unique_request_id)

CREATED_RE = re.compile(
    r"^(created|replayed) (GL-\d{8}-\d{6}) \(id (\d+)\), request_id (\S+)")
RUN_TIMEOUT = 15


def gridline_binary():
    return os.path.join(build_dir(), "gridline")


class Run:
    """One finished run of gridline: exit code, stdout and stderr as text."""

    def __init__(self, args, proc, took):
        self.args = args
        self.rc = proc.returncode
        # Output must always be UTF-8, whatever the daemon stored.
        self.out = proc.stdout.decode("utf-8")
        self.err = proc.stderr.decode("utf-8")
        self.took = took

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return (f"gridline {' '.join(self.args)} -> rc {self.rc}\n"
                f"--- stdout ---\n{self.out[:3000]}\n--- stderr ---\n{self.err[:3000]}")


def gridline(*args, endpoint=None, env=None, timeout=RUN_TIMEOUT):
    """Runs gridline with the endpoint (when given) as --endpoint before the command."""
    argv = [gridline_binary()]
    if endpoint is not None:
        argv += ["--endpoint", endpoint]
    argv += list(args)
    e = dict(os.environ)
    e.pop("GRIDLINE_ENDPOINT", None)
    e.pop("COLUMNS", None)
    if env:
        e.update(env)
    t0 = time.monotonic()
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=e,
                          timeout=timeout)
    return Run(argv[1:], proc, time.monotonic() - t0)


def gridline_on_tty(endpoint, *args, cols=80):
    """Runs gridline with stdout on a pseudo-terminal of `cols` columns; returns
    (exit code, what the terminal received, with its \r\n turned back into \n)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    e = dict(os.environ)
    e.pop("COLUMNS", None)
    proc = subprocess.Popen([gridline_binary(), "--endpoint", endpoint, *args],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                            env=e)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:   # EIO: the other side is closed
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    rc = proc.wait(RUN_TIMEOUT)
    proc.stderr.close()
    return rc, b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def dead_endpoint():
    """An endpoint with nobody listening."""
    return f"tcp://127.0.0.1:{free_port()}"


def cells(s):
    """Terminal columns of s: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def without_rid(body):
    return {k: v for k, v in body.items() if k != "rid"}


@pytest.fixture
def cli(daemon):
    """A fresh daemon, its catalogue, a harness client and a runner bound to it."""
    c = daemon.client()

    class Cli:
        endpoint = daemon.endpoint
        client = c
        catalog = fetch_catalog(c)

        @staticmethod
        def run(*args, **kw):
            return gridline(*args, endpoint=daemon.endpoint, **kw)

        @staticmethod
        def create_direct(**over):
            """A case stored through the harness, not the tool; returns the case."""
            return c.ok("case.create", case_body(Cli.catalog, **over))["case"]

    return Cli


def create_args(cat, **over):
    """gridline create options for a valid case on the default city."""
    d, s, c, g = cat.full_paths()[0]
    opts = {"channel": "hotline", "category": cat.categories[0],
            "description": "Water leaking from the ceiling of the stairwell",
            "district": d, "street": s, "community": c, "grid": g,
            "title": "Stairwell leak"}
    opts.update(over)
    args = ["create"]
    for k, v in opts.items():
        if v is not None:
            args += [f"--{k}", v]
    return args


# What a case was registered with: fixed once it is created (state, unit and version
# may move on if something dispatches it meanwhile).
REGISTERED = ("id", "code", "request_id", "channel", "category", "urgency", "title",
              "description", "location", "reporter", "attachments", "reported_at",
              "resolved_on_spot", "created_at")


def same_registration(a, b):
    return {k: a.get(k) for k in REGISTERED} == {k: b.get(k) for k in REGISTERED}


def case_lines(text):
    """The `key: value` lines of one case as a dict."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_.\[\]0-9]+):\s+(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


# -- help and usage ----------------------------------------------------------------

def test_help_lists_every_command_and_exits_0():
    r = gridline("--help", endpoint=dead_endpoint())
    assert r.rc == 0, r
    for cmd in ("create", "get", "list", "catalog", "ping"):
        assert re.search(rf"^\s+{cmd}\s", r.out, re.M), r
    assert "--endpoint" in r.out and "--json" in r.out and "--timeout" in r.out
    assert r.err == ""


@pytest.mark.parametrize("args,needle", [
    (["create", "--help"], "--request-id"),
    (["get", "--help"], "--history"),
    (["list", "--help"], "--all"),
    (["catalog", "--help"], "catalog"),
    (["ping", "--help"], "mmi.service"),
    (["help", "list"], "--after"),
])
def test_command_help_exits_0_without_asking_the_daemon(args, needle):
    r = gridline(*args, endpoint=dead_endpoint(), timeout=5)
    assert r.rc == 0, r
    assert r.out.startswith("usage: gridline"), r
    assert needle in r.out, r
    assert r.took < 2, r


@pytest.mark.parametrize("args,needle", [
    ([], "usage: gridline"),
    (["frobnicate"], "frobnicate"),
    (["--bogus", "ping"], "--bogus"),
    (["--timeout", "soon", "ping"], "soon"),
    (["--timeout", "0", "ping"], "--timeout"),
    (["--endpoint", "", "ping"], "--endpoint"),
    (["ping", "--timeout"], "--timeout"),
    (["ping", "case.create", "extra"], "extra"),
    (["create", "--channel", "hotline"], "--description --district"),
    (["create", "--channel", "hotline", "--category", "roads", "--description", "x",
      "--district", "D", "--lat", "31.2"], "--lat and --lon"),
    (["create", "--channel", "hotline", "--category", "roads", "--description", "x",
      "--district", "D", "--lat", "north", "--lon", "1"], "north"),
    (["create", "--channel", "hotline", "--category", "roads", "--description", "x",
      "--district", "D", "--reported-at", "yesterday"], "yesterday"),
    (["create", "--unknown-option", "x"], "--unknown-option"),
    (["get"], "id or code"),
    (["get", "1", "2"], "'2'"),
    (["get", "99999999999999999999999"], "too large"),
    (["list", "--limit", "0"], "--limit"),
    (["list", "--limit", "many"], "many"),
    (["list", "--after", "-3"], "--after"),
    (["list", "--from", "today"], "--from"),
    (["list", "stray"], "stray"),
    (["list", "--limit"], "--limit needs a value"),
    (["--timeout"], "--timeout needs a value"),
    (["--timeout", "3600001", "ping"], "3600001"),
    (["catalog", "stray"], "stray"),
])
def test_usage_errors_exit_2_with_a_message_and_no_request(args, needle):
    # Nobody listens at the endpoint: a usage error is found before any request.
    r = gridline(*args, endpoint=dead_endpoint(), timeout=5)
    assert r.rc == 2, r
    assert needle in r.err, r
    assert r.out == "", r
    assert "unavailable" not in r.err, r
    assert r.took < 2, r


# -- ping ------------------------------------------------------------------------

def test_ping_exits_0_when_the_daemon_serves_case_create(cli):
    r = cli.run("ping")
    assert r.rc == 0, r
    assert cli.endpoint in r.out and "case.create" in r.out and "not served" not in r.out, r


def test_ping_of_a_service_not_served_exits_1(cli):
    r = cli.run("ping", "no.such.service")
    assert r.rc == 1, r
    assert "not served" in r.out, r


def test_ping_json_says_what_was_asked_and_the_answer(cli):
    r = cli.run("--json", "ping", "catalog.get")
    assert r.rc == 0, r
    assert r.json() == {"endpoint": cli.endpoint, "service": "catalog.get", "served": True}
    r = cli.run("--json", "ping", "no.such.service")
    assert r.rc == 1, r
    assert r.json()["served"] is False


def test_ping_without_a_daemon_exits_1_within_the_timeout():
    ep = dead_endpoint()
    r = gridline("--timeout", "300", "ping", endpoint=ep, timeout=10)
    assert r.rc == 1, r
    assert "unavailable" in r.err and ep in r.err, r
    assert 0.25 <= r.took < 3, r
    assert r.out == "", r


def test_short_options_work_like_long_ones(cli):
    r = gridline("-e", cli.endpoint, "-j", "-t", "2000", "ping")
    assert r.rc == 0, r
    assert r.json()["served"] is True


def test_endpoint_comes_from_the_environment_when_not_given(cli):
    r = gridline("ping", env={"GRIDLINE_ENDPOINT": cli.endpoint})
    assert r.rc == 0, r
    assert cli.endpoint in r.out, r
    # --endpoint wins over the environment.
    ep = dead_endpoint()
    r = gridline("--endpoint", ep, "--timeout", "200", "ping",
                 env={"GRIDLINE_ENDPOINT": cli.endpoint})
    assert r.rc == 1 and ep in r.err, r


# -- create ------------------------------------------------------------------------

def test_create_prints_the_code_and_a_fresh_request_id(cli):
    r = cli.run(*create_args(cli.catalog))
    assert r.rc == 0, r
    m = CREATED_RE.match(r.out.splitlines()[0])
    assert m, r
    verb, code, case_id, request_id = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    assert verb == "created"
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), r
    # The case is stored as printed.
    stored = cli.client.ok("case.get", {"id": case_id})["case"]
    assert stored["code"] == code
    assert stored["request_id"] == request_id
    assert stored["title"] == "Stairwell leak"
    assert stored["description"] == "Water leaking from the ceiling of the stairwell"
    assert stored["channel"] == "hotline"
    d, s, c, g = cli.catalog.full_paths()[0]
    assert stored["location"]["district"] == d and stored["location"]["grid"] == g
    # ... and shown below the first line as key: value lines.
    shown = case_lines(r.out)
    assert shown["code"] == code and shown["id"] == str(case_id)
    assert shown["location.district"] == d


def test_create_twice_without_request_id_makes_two_cases(cli):
    a = cli.run(*create_args(cli.catalog))
    b = cli.run(*create_args(cli.catalog))
    assert a.rc == 0 and b.rc == 0, (a, b)
    ma, mb = CREATED_RE.match(a.out), CREATED_RE.match(b.out)
    assert ma.group(4) != mb.group(4), "two runs made the same request_id"
    assert ma.group(2) != mb.group(2)


def test_create_again_with_the_printed_request_id_replays_the_same_case(cli):
    args = create_args(cli.catalog)
    first = cli.run(*args)
    assert first.rc == 0, first
    m = CREATED_RE.match(first.out)
    request_id = m.group(4)
    again = cli.run(*args, "--request-id", request_id)
    assert again.rc == 0, again
    m2 = CREATED_RE.match(again.out)
    assert m2 and m2.group(1) == "replayed", again
    assert m2.group(2) == m.group(2) and m2.group(3) == m.group(3)
    assert "already registered" in again.out
    again_json = cli.run("--json", *args, "--request-id", request_id)
    assert again_json.rc == 0, again_json
    body = again_json.json()
    assert body["replayed"] is True and body["case"]["id"] == int(m.group(3))
    # Stored once.
    listed = cli.client.ok("case.list", {"limit": 500})["cases"]
    assert [c["request_id"] for c in listed].count(request_id) == 1


def test_create_with_a_reused_request_id_and_another_body_is_a_conflict(cli):
    rid = unique_request_id("cli")
    assert cli.run(*create_args(cli.catalog), "--request-id", rid).rc == 0
    r = cli.run(*create_args(cli.catalog, description="Something else entirely"),
                "--request-id", rid)
    assert r.rc == 1, r
    assert "conflict" in r.err and "request_id" in r.err, r
    assert len(cli.client.ok("case.list", {})["cases"]) == 1


def test_create_json_is_the_reply_with_every_option_packed(cli):
    d, s, c, g = cli.catalog.full_paths()[0]
    args = create_args(cli.catalog, channel="window", urgency="urgent",
                       title="Broken bench \u8def\u706f", address="Building 3, east gate",
                       lat="31.2304", lon="121.4737", name="Li Wei",
                       phone="+86 138-0013-8000")
    args += ["--attachment", "https://img.example/1.jpg",
             "--attachment", "http://img.example/2.png",
             "--reported-at", "1700000000000", "--on-spot",
             "--request-id", "cli-json-1"]
    r = cli.run("--json", *args)
    assert r.rc == 0, r
    body = r.json()
    assert "rid" not in body, "the tool's own rid leaked into --json output"
    assert body["ok"] is True and body["replayed"] is False
    case = body["case"]
    assert same_registration(case, cli.client.ok("case.get", {"id": case["id"]})["case"])
    assert case["channel"] == "window" and case["urgency"] == "urgent"
    assert case["title"] == "Broken bench \u8def\u706f"
    assert case["location"] == {"district": d, "street": s, "community": c, "grid": g,
                                "address": "Building 3, east gate",
                                "lat": 31.2304, "lon": 121.4737}
    assert case["reporter"]["name"] == "Li Wei"
    assert case["attachments"] == ["https://img.example/1.jpg", "http://img.example/2.png"]
    assert case["reported_at"] == 1700000000000
    assert case["resolved_on_spot"] is True and case["state"] == "resolved"
    assert case["request_id"] == "cli-json-1"


@pytest.mark.parametrize("over,extra,field", [
    ({"category": "no_such_category"}, [], "category"),
    ({"district": "NO-SUCH-DISTRICT", "street": None, "community": None, "grid": None},
     [], "location.district"),
    ({"channel": "carrier_pigeon"}, [], "channel"),
    ({"urgency": "whenever"}, [], "urgency"),
    ({"phone": "call me"}, [], "reporter.phone"),
    ({}, ["--attachment", "https://ok.example/a", "--attachment", "ftp://x/y"],
     "attachments[1]"),
    ({"title": "T" * 201}, [], "title"),
    ({"description": ""}, [], "description"),
    # A byte that is not UTF-8, as a shell would pass it.
    ({"title": "bad \udcff byte"}, [], "title"),
])
def test_create_with_invalid_input_exits_1_naming_the_field(cli, over, extra, field):
    r = cli.run(*create_args(cli.catalog, **over), *extra)
    assert r.rc == 1, r
    assert "invalid_argument" in r.err, r
    assert f"(field {field})" in r.err, r
    assert r.out == "", r
    # It was an answer, so there is no "may or may not have been registered".
    assert "may or may not" not in r.err, r
    assert cli.client.ok("case.list", {})["cases"] == []


def test_create_with_invalid_input_and_json_prints_the_error_reply(cli):
    r = cli.run("--json", *create_args(cli.catalog, category="no_such_category"))
    assert r.rc == 1, r
    body = r.json()
    assert body["ok"] is False
    assert body["error"]["code"] == "invalid_argument"
    assert body["error"]["field"] == "category"


def test_create_without_a_daemon_says_how_to_retry_safely():
    r = gridline("--timeout", "300", "create", "--channel", "hotline", "--category", "roads",
                 "--description", "x", "--district", "D01", endpoint=dead_endpoint())
    assert r.rc == 1, r
    m = re.search(r"--request-id ([0-9a-f]{32})", r.err)
    assert m, r
    assert "unavailable" in r.err, r


def test_create_retried_after_no_reply_registers_the_case_once(cli, daemon):
    # The daemon is there but does not answer in time (stopped): the tool cannot know
    # whether the case was stored, and says how to retry without making two.
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        r = cli.run("--timeout", "300", *create_args(cli.catalog))
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
    assert r.rc == 1, r
    assert "unavailable" in r.err, r
    m = re.search(r"may or may not have been registered.*--request-id ([0-9a-f]{32})", r.err)
    assert m, r
    again = cli.run(*create_args(cli.catalog), "--request-id", m.group(1))
    assert again.rc == 0, again
    assert CREATED_RE.match(again.out), again
    listed = cli.client.ok("case.list", {})["cases"]
    assert [c["request_id"] for c in listed] == [m.group(1)]


def test_output_that_cannot_be_written_is_not_success(cli):
    cli.create_direct()
    for args in (["--help"], ["list"], ["--json", "catalog"]):
        with open("/dev/full", "wb") as full:
            proc = subprocess.run([gridline_binary(), "--endpoint", cli.endpoint, *args],
                                  stdin=subprocess.DEVNULL, stdout=full,
                                  stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
        assert proc.returncode == 1, (args, proc)
        assert b"cannot write" in proc.stderr, (args, proc.stderr)


# -- get ---------------------------------------------------------------------------

def test_get_by_id_and_by_code_show_the_same_case(cli):
    case = cli.create_direct(title="Fallen tree", description="A tree fell on the path")
    by_id = cli.run("get", str(case["id"]))
    by_code = cli.run("get", case["code"])
    assert by_id.rc == 0 and by_code.rc == 0, (by_id, by_code)
    for r in (by_id, by_code):
        shown = case_lines(r.out)
        assert shown["id"] == str(case["id"]), r
        assert shown["code"] == case["code"], r
        assert shown["title"] == "Fallen tree", r
        assert shown["description"] == "A tree fell on the path", r
        assert shown["location.district"] == case["location"]["district"], r
        assert shown["state"] in STATES, r
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown["created_at"]), r


def test_get_shows_coordinates_as_stored(cli):
    d = cli.catalog.full_paths()[0][0]
    case = cli.create_direct(location={"district": d, "lat": 31.230412, "lon": 121.473712})
    shown = case_lines(cli.run("get", str(case["id"])).out)
    assert shown["location.lat"] == "31.230412", shown
    assert shown["location.lon"] == "121.473712", shown


def test_get_json_by_id_and_by_code_is_the_stored_case(cli):
    case = cli.create_direct()
    a = cli.run("--json", "get", str(case["id"]))
    b = cli.run("--json", "get", case["code"])
    assert a.rc == 0 and b.rc == 0, (a, b)
    for r in (a, b):
        assert set(r.json()) == {"ok", "case"}, r
        assert r.json()["ok"] is True
        assert same_registration(r.json()["case"], case), r


def test_get_with_history_shows_the_events_oldest_first(cli):
    case = cli.create_direct()
    r = cli.run("get", str(case["id"]), "--history")
    assert r.rc == 0, r
    m = re.search(r"^History \((\d+) events?\)\n", r.out, re.M)
    assert m, r
    rows = r.out[m.end():].splitlines()
    assert re.match(r"^SEQ\s+AT \(UTC\)\s+TYPE\s+STATE\s+UNIT\s+ACTOR\s+NOTE$", rows[0]), r
    assert len(rows) - 1 == int(m.group(1)) >= 1, r
    first = rows[1].split()   # SEQ, AT (a date and a time), TYPE, STATE, ...
    assert first[3:5] == ["created", "registered"] and "dev" in first[5:], r
    j = cli.run("--json", "get", "--history", case["code"])
    assert j.rc == 0, j
    events = j.json()["history"]
    assert events[0]["type"] == "created" and events[0]["case_id"] == case["id"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


@pytest.mark.parametrize("which,field", [("424242", "id"), ("GL-20000101-000001", "code")])
def test_get_of_a_missing_case_exits_1_not_found(cli, which, field):
    r = cli.run("get", which)
    assert r.rc == 1, r
    assert "not_found" in r.err and f"(field {field})" in r.err, r
    assert r.out == ""
    j = cli.run("--json", "get", which)
    assert j.rc == 1, j
    assert j.json()["error"]["code"] == "not_found"


# -- list --------------------------------------------------------------------------

def test_list_table_shows_each_case_and_the_count(cli):
    cases = [cli.create_direct(title=f"Case number {i}") for i in range(3)]
    r = cli.run("list")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert re.match(r"^ID\s+CODE\s+STATE\s+CATEGORY\s+URGENCY\s+DISTRICT\s+UNIT\s+CREATED",
                    lines[0]), r
    assert lines[-1] == "3 cases", r
    rows = lines[1:-1]
    assert [row.split()[0] for row in rows] == [str(c["id"]) for c in cases]
    title_col = lines[0].index("TITLE")
    for row, c in zip(rows, cases):
        assert c["code"] in row
        assert row[title_col:] == c["title"], r


def test_list_of_nothing_says_so(cli):
    r = cli.run("list")
    assert r.rc == 0, r
    assert r.out == "no cases\n"
    j = cli.run("--json", "list", "--all")
    assert j.rc == 0, j
    assert j.json() == {"ok": True, "cases": [], "next": None}


def test_list_limit_above_the_daemons_is_refused_by_the_daemon(cli):
    r = cli.run("list", "--limit", "501")
    assert r.rc == 1, r
    assert "invalid_argument" in r.err and "(field limit)" in r.err, r


def test_list_json_is_one_page_as_the_daemon_sent_it(cli):
    for _ in range(3):
        cli.create_direct()
    r = cli.run("--json", "list", "--limit", "2")
    assert r.rc == 0, r
    body = r.json()
    direct = cli.client.ok("case.list", {"limit": 2})
    assert set(body) == {"ok", "cases", "next"}
    assert body["next"] == direct["next"] and body["next"] is not None
    assert len(body["cases"]) == 2
    for shown, stored in zip(body["cases"], direct["cases"]):
        assert same_registration(shown, stored)


def test_list_filters_reach_the_daemon(cli):
    paths = cli.catalog.full_paths()
    other = next(p for p in paths if p[0] != paths[0][0])
    d0 = paths[0]
    cat0, cat1 = cli.catalog.categories[0], cli.catalog.categories[1]
    a = cli.create_direct(category=cat0, channel="hotline",
                          reporter={"name": "A", "phone": "13800000001"})
    b = cli.create_direct(category=cat1, channel="web",
                          reporter={"name": "B", "phone": "13800000002"})
    c = cli.create_direct(category=cat1, channel="hotline",
                          location={"district": other[0], "street": other[1]},
                          reporter={"name": "C", "phone": "13800000003"})

    def ids(*args):
        r = cli.run("--json", "list", *args)
        assert r.rc == 0, r
        return [x["id"] for x in r.json()["cases"]]

    assert ids() == [a["id"], b["id"], c["id"]]
    assert ids("--district", d0[0]) == [a["id"], b["id"]]
    assert ids("--district", other[0]) == [c["id"]]
    assert ids("--street", other[1]) == [c["id"]]
    assert ids("--category", cat1) == [b["id"], c["id"]]
    assert ids("--category", cat1, "--channel", "hotline") == [c["id"]]
    assert ids("--phone", "13800000002") == [b["id"]]
    # A case may be dispatched meanwhile: compare with the daemon's own answer to the
    # same filter, asked just before, until the two agree.
    for _ in range(30):
        state = cli.client.ok("case.get", {"id": a["id"]})["case"]["state"]
        direct = [x["id"] for x in cli.client.ok(
            "case.list", {"filter": {"state": state}})["cases"]]
        shown = ids("--state", state)
        if shown == direct:
            break
        time.sleep(0.1)
    assert shown == direct and a["id"] in shown, (state, shown, direct)
    assert ids("--state", "closed") == []
    assert ids("--from", str(b["created_at"])) == [x["id"] for x in (a, b, c)
                                                    if x["created_at"] >= b["created_at"]]
    assert ids("--to", str(b["created_at"])) == [x["id"] for x in (a, b, c)
                                                  if x["created_at"] < b["created_at"]]
    # The table view filters the same way.
    r = cli.run("list", "--district", other[0])
    assert r.rc == 0 and r.out.splitlines()[-1] == "1 case", r


def test_list_with_an_invalid_filter_exits_1_naming_it(cli):
    r = cli.run("list", "--state", "on_fire")
    assert r.rc == 1, r
    assert "invalid_argument" in r.err and "filter.state" in r.err, r


def test_list_pages_follow_the_cursor_by_hand(cli):
    made = [cli.create_direct()["id"] for _ in range(5)]
    first = cli.run("--json", "list", "--limit", "2")
    assert first.rc == 0, first
    page1 = first.json()
    second = cli.run("--json", "list", "--limit", "2", "--after", str(page1["next"]))
    page2 = second.json()
    assert [c["id"] for c in page1["cases"] + page2["cases"]] == made[:4]
    # The table says where the next page starts.
    t = cli.run("list", "--limit", "2")
    assert t.rc == 0, t
    assert t.out.splitlines()[-1] == f"2 cases; more with --after {page1['next']}", t


def test_list_all_follows_every_page(cli):
    made = [cli.create_direct()["id"] for _ in range(7)]
    r = cli.run("--json", "list", "--all", "--limit", "2")
    assert r.rc == 0, r
    body = r.json()
    assert [c["id"] for c in body["cases"]] == made
    assert body["ok"] is True and body["next"] is None
    t = cli.run("list", "--all", "--limit", "3")
    assert t.rc == 0, t
    lines = t.out.splitlines()
    assert lines[-1] == "7 cases", t
    assert [row.split()[0] for row in lines[1:-1]] == [str(i) for i in made]
    assert "--after" not in t.out
    # Without a limit too (the tool picks its own page size).
    assert [c["id"] for c in cli.run("--json", "list", "--all").json()["cases"]] == made


def test_list_all_with_a_filter_keeps_only_matches_across_pages(cli):
    cat0, cat1 = cli.catalog.categories[0], cli.catalog.categories[1]
    want = []
    for i in range(6):
        c = cli.create_direct(category=cat1 if i % 2 else cat0)
        if i % 2:
            want.append(c["id"])
    r = cli.run("--json", "list", "--all", "--limit", "1", "--category", cat1)
    assert r.rc == 0, r
    assert [c["id"] for c in r.json()["cases"]] == want


def test_list_table_cuts_long_titles_to_columns(cli):
    long_title = "\u6c34\u7ba1\u7206\u88c2" * 12 + " and more words after the ideographs"
    cli.create_direct(title=long_title[:60])
    cli.create_direct(title="short")
    r = cli.run("list", env={"COLUMNS": "110"})
    assert r.rc == 0, r
    rows = r.out.splitlines()[:-1]
    for row in rows:
        assert cells(row) <= 110, f"{cells(row)} columns: {row!r}"
    assert rows[1].endswith("\u2026"), r
    assert rows[2].endswith("short"), r
    # Into a pipe with no COLUMNS, nothing is cut.
    whole = cli.run("list")
    assert long_title[:60] in whole.out


def test_on_a_terminal_tables_fit_its_width_and_json_is_indented(cli):
    cli.create_direct(title="A title long enough that it cannot fit in eighty columns "
                            "next to every other column of the table")
    rc, out = gridline_on_tty(cli.endpoint, "list", cols=120)
    assert rc == 0, out
    rows = out.splitlines()
    assert all(cells(row) <= 120 for row in rows), out
    assert rows[1].endswith("\u2026"), out
    rc, out = gridline_on_tty(cli.endpoint, "--json", "ping")
    assert rc == 0, out
    assert out.startswith("{\n  \""), out
    assert json.loads(out)["served"] is True


def test_text_output_neutralises_control_characters_from_the_daemon(cli):
    evil = "Lamp\x1b]0;pwned\x07 out\x1b[2J\r\x9b31m"
    case = cli.create_direct(title=evil, description="Line one\nLine two\x1b[H")
    for args in (["list"], ["get", str(case["id"])], ["get", case["code"], "--history"]):
        r = cli.run(*args)
        assert r.rc == 0, r
        bad = [ch for ch in r.out if (ord(ch) < 0x20 and ch != "\n") or 0x7f <= ord(ch) <= 0x9f]
        assert not bad, f"{args}: control characters {bad!r} reach the terminal:\n{r.out!r}"
        assert "Lamp ]0;pwned  out [2J" in r.out, r
    # --json keeps the text exactly, escaped.
    j = cli.run("--json", "get", str(case["id"]))
    assert j.json()["case"]["title"] == evil
    assert "\x1b" not in j.out and "\x9b" not in j.out and "\x07" not in j.out


# -- catalog -----------------------------------------------------------------------

def test_catalog_json_is_the_daemons_catalogue(cli):
    r = cli.run("--json", "catalog")
    assert r.rc == 0, r
    assert r.json() == without_rid(cli.catalog.body)


def test_catalog_table_shows_every_section(cli):
    r = cli.run("catalog")
    assert r.rc == 0, r
    body = cli.catalog.body
    for title, key in (("Categories", "categories"), ("Units", "units"),
                       ("SLA classes", "sla")):
        assert f"{title} ({len(body[key])})" in r.out, r
    assert f"Places ({len(body['places'])} districts)" in r.out, r
    for c in body["categories"]:
        assert re.search(rf"^\s+{re.escape(c['code'])}\s+", r.out, re.M), c["code"]
    for u in body["units"]:
        assert re.search(rf"^\s+{re.escape(u['code'])}\s+", r.out, re.M), u["code"]
    d, s, c, g = cli.catalog.full_paths()[0]
    places = r.out.split("Places (", 1)[1]
    indent = {code: re.search(rf"^( *){re.escape(code)}\s", places, re.M).group(1)
              for code in (d, s, c, g)}
    assert len(indent[s]) == len(indent[d]) + 2
    assert len(indent[c]) == len(indent[s]) + 2
    assert len(indent[g]) == len(indent[c]) + 2
