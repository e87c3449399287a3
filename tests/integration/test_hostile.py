"""Hostile input: every request that carries a return address gets exactly one
reply with the right error code, the daemon stays up, does not balloon, and
loses or corrupts no stored case (protocol.md "Replies and errors").

All tests share one daemon (module scope) so that damage accumulates; after each
hostile request the test checks that nothing more arrives and that a normal
request is still answered. The order matters only for the first and last tests
(memory baseline and the final check)."""

import itertools
import time

import msgpack
import pytest

from gridline_harness import MDPC, Reply, case_body, pack, unique_request_id

STATE = {}
FRAMING_NOTES = []  # what the replies to broken framing looked like
_alive_rids = itertools.count(1)


def alive(daemon, client):
    """The daemon is up and answers a normal request; no stray reply is pending."""
    assert daemon.alive(), "gridlined died\n" + daemon.stderr_tail()
    rid = f"alive-{next(_alive_rids)}"
    r = client.call_rid("case.get", {"id": STATE.get("ref_id", 1)}, rid=rid, timeout=5)
    assert r.well_formed and r.is_map(), r.describe()
    assert r.ok or r.error_code == "not_found", r.describe()
    assert not client.stash, f"stray replies: {client.stash!r}"


def exchange(daemon, client, frames, timeout=5.0):
    """Send raw frames; exactly one reply must come back; the daemon stays up."""
    client.send_frames(frames)
    r = client.recv_reply(timeout)
    assert r is not None, (f"no reply within {timeout}s to frames "
                           f"{[f[:80] for f in frames]!r}\n" + daemon.stderr_tail(20))
    client.expect_silence(0.15)
    alive(daemon, client)
    return r


def send_body(daemon, client, service, body_bytes, timeout=5.0):
    return exchange(daemon, client, [b"", MDPC, service.encode(), body_bytes], timeout)


def expect_error(r, codes, field=None, service=None):
    codes = (codes,) if isinstance(codes, str) else tuple(codes)
    assert r.well_formed, f"badly framed reply: {r.describe()}"
    if service is not None:
        assert r.service == service, f"reply service {r.service!r}: {r.describe()}"
    assert r.is_map(), f"reply body is not a map: {r.describe()}"
    assert r.body.get("ok") is False, r.describe()
    err = r.body.get("error")
    assert isinstance(err, dict), r.describe()
    assert err.get("code") in codes, f"expected {codes}, got {r.describe()}"
    assert isinstance(err.get("message"), str), r.describe()
    if field is not None:
        if callable(field):
            assert field(err.get("field")), f"error field {err.get('field')!r}: {r.describe()}"
        else:
            assert err.get("field") == field, \
                f"expected field {field!r}, got {err.get('field')!r}: {r.describe()}"


def invalid(daemon, client, service, body, field, codes="invalid_argument"):
    """Send a packed body; expect invalid_argument naming `field`."""
    payload = body if isinstance(body, bytes) else pack(body)
    r = send_body(daemon, client, service, payload)
    expect_error(r, codes, field, service)
    return r


def packed_raw(obj):
    """Pack with Python bytes as the MessagePack str type (to write invalid UTF-8)."""
    return msgpack.packb(obj, use_bin_type=False)


# -- set-up ------------------------------------------------------------------------

def test_00_baseline(mdaemon, client, catalog):
    """A reference case that must come out of the suite unchanged; the RSS baseline."""
    body = case_body(catalog, description="reference case: must survive the hostile suite")
    ref = client.ok("case.create", body)["case"]
    STATE["ref_id"] = ref["id"]
    STATE["ref"] = ref
    for _ in range(20):
        client.ok("case.create", case_body(catalog))
        client.ok("case.list", {"limit": 50})
    client.ok("catalog.get", {})
    STATE["rss0"] = mdaemon.rss_kb()


# -- not MessagePack / not a map ------------------------------------------------------

@pytest.mark.parametrize("payload", [
    b"\xc1",                       # the one byte MessagePack never uses
    b"\xc1\xc1\xc1garbage",
    b"hello, world",               # a fixint then trailing bytes
    b'{"request_id": "json"}',     # JSON
    b"\x81\xa1a\x01\xff\xff",      # a map followed by trailing bytes
], ids=["c1", "c1-garbage", "text", "json", "trailing"])
def test_not_msgpack(mdaemon, client, payload):
    r = send_body(mdaemon, client, "case.create", payload)
    expect_error(r, "bad_request", service="case.create")


def test_zero_length_body(mdaemon, client):
    r = send_body(mdaemon, client, "case.create", b"")
    expect_error(r, "bad_request")
    r = send_body(mdaemon, client, "case.get", b"")
    expect_error(r, "bad_request")


@pytest.mark.parametrize("obj", [[1, 2, 3], "case", 42, None, True, 1.5, b"bin", []],
                         ids=["array", "string", "int", "nil", "bool", "float", "bin",
                              "empty-array"])
def test_body_not_a_map(mdaemon, client, obj):
    r = send_body(mdaemon, client, "case.create", pack(obj))
    expect_error(r, "bad_request", service="case.create")


def test_map_with_non_string_keys(mdaemon, client):
    r = send_body(mdaemon, client, "case.create", pack({1: "a", 2: "b"}))
    expect_error(r, ("bad_request", "invalid_argument"))


def test_truncated(mdaemon, client, catalog):
    full = pack(case_body(catalog))
    for cut in (1, 2, 5, len(full) // 2, len(full) - 1):
        r = send_body(mdaemon, client, "case.create", full[:cut])
        expect_error(r, "bad_request")


# -- declared sizes far beyond the real length ----------------------------------------

HUGE_DECLARATIONS = {
    "array32-top": b"\xdd\xff\xff\xff\xff\x01\x02\x03",
    "map32-top": b"\xdf\xff\xff\xff\xff\xa1a\x01",
    "array32-in-map": b"\x82\xaarequest_id\xa1x\xabattachments\xdd\xff\xff\xff\xff\xa1u",
    "map32-in-map": b"\x81\xa8location\xdf\xff\xff\xff\xff\xa8district\xa1d",
    "str32-4GB": b"\x81\xabdescription\xdb\xff\xff\xff\xffabc",
    "bin32-4GB": b"\x81\xabdescription\xc6\xff\xff\xff\xffabc",
    "ext32-4GB": b"\x81\xabdescription\xc9\xff\xff\xff\xff\x01abc",
    "str32-key-4GB": b"\x81\xdb\xff\xff\xff\xffabc",
    "array16-short": b"\x81\xabattachments\xdc\xff\xff\xa1a",
    "map16-short": b"\xde\xff\xff\xa1a\x01",
    "nested-array32": b"\x81\xa1a" + b"\x91" * 50 + b"\xdd\xff\xff\xff\xff",
}


@pytest.mark.parametrize("name", sorted(HUGE_DECLARATIONS))
def test_huge_declared_sizes(mdaemon, client, name):
    before = mdaemon.rss_kb()
    r = send_body(mdaemon, client, "case.create", HUGE_DECLARATIONS[name])
    expect_error(r, "bad_request", service="case.create")
    grown = mdaemon.rss_kb() - before
    assert grown < 50 * 1024, f"RSS grew by {grown} kB on an 8-byte body"


# -- depth ----------------------------------------------------------------------------

def nested(depth, opener, leaf=b"\xc0"):
    return opener * depth + leaf


@pytest.mark.parametrize("depth", [10000, 100000])
@pytest.mark.parametrize("kind", ["array", "map"])
def test_deep_nesting(mdaemon, client, catalog, depth, kind):
    opener = b"\x91" if kind == "array" else b"\x81\xa1a"
    # a map at the top whose `location` holds the deep value
    payload = b"\x83" + pack("request_id") + pack(unique_request_id("deep")) + \
        pack("description") + pack("deep") + pack("location") + nested(depth, opener)
    r = send_body(mdaemon, client, "case.create", payload)
    # valid MessagePack but past any sane depth limit: refused as a bad body or a bad field
    expect_error(r, ("bad_request", "invalid_argument"))
    # and the bare deep value as the body (not a map)
    r = send_body(mdaemon, client, "case.get", nested(depth, opener))
    expect_error(r, "bad_request")


# -- UTF-8 -------------------------------------------------------------------------------

BAD_UTF8 = {
    "ff": b"abc\xff",
    "lone-continuation": b"\x80abc",
    "truncated-2byte": b"abc\xc3",
    "bad-continuation": b"\xc3\x28",
    "overlong-slash": b"\xc0\xaf",
    "overlong-3byte": b"\xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
    "f5": b"\xf5\x80\x80\x80",
}


@pytest.mark.parametrize("name", sorted(BAD_UTF8))
def test_invalid_utf8_description(mdaemon, client, catalog, name):
    b = case_body(catalog)
    b["description"] = BAD_UTF8[name]
    b = {k: (v.encode() if isinstance(v, str) else v) for k, v in b.items()}
    invalid(mdaemon, client, "case.create", packed_raw(b), "description")


@pytest.mark.parametrize("path", ["location.district", "location.address", "reporter.name",
                                  "title", "request_id", "category"])
def test_invalid_utf8_fields(mdaemon, client, catalog, path):
    b = case_body(catalog)
    if "." in path:
        outer, inner = path.split(".")
        b[outer] = dict(b[outer])
        b[outer][inner] = b"ok\xc3\x28"
    else:
        b[path] = b"ok\xc3\x28"

    def enc(v):
        if isinstance(v, str):
            return v.encode()
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        if isinstance(v, list):
            return [enc(x) for x in v]
        return v
    invalid(mdaemon, client, "case.create", packed_raw(enc(b)), path)


def test_invalid_utf8_key(mdaemon, client, catalog):
    body = pack(case_body(catalog))
    # add one more pair with a key that is not UTF-8
    n = body[0] & 0x0F
    payload = bytes([0x80 | (n + 1)]) + body[1:] + b"\xa2\xc3\x28" + pack(1)
    r = send_body(mdaemon, client, "case.create", payload)
    expect_error(r, ("bad_request", "invalid_argument"))


def test_invalid_utf8_in_list_and_get(mdaemon, client):
    r = send_body(mdaemon, client, "case.get", packed_raw({b"code": b"GL-\xff"}))
    expect_error(r, ("invalid_argument", "not_found"))
    r = send_body(mdaemon, client, "case.list",
                  packed_raw({b"filter": {b"district": b"\xed\xa0\x80"}}))
    expect_error(r, "invalid_argument", "filter.district")


def test_nul_in_text_round_trips(mdaemon, client, catalog):
    """A NUL inside a string is valid UTF-8: stored exactly, or refused; never cut."""
    b = case_body(catalog, description="before\x00after", title="t\x00t")
    r = send_body(mdaemon, client, "case.create", pack(b))
    if r.ok:
        got = client.ok("case.get", {"id": r.body["case"]["id"]})["case"]
        assert got["description"] == "before\x00after", got["description"]
        assert got["title"] == "t\x00t"
    else:
        expect_error(r, "invalid_argument", lambda f: f in ("description", "title"))


# -- wrong types ------------------------------------------------------------------------

WRONG_TYPES = [
    ("request_id", 42, "request_id"),
    ("request_id", None, "request_id"),
    ("description", 123, "description"),
    ("description", ["a"], "description"),
    ("description", b"bytes not text", "description"),
    ("title", {"a": 1}, "title"),
    ("channel", 1, "channel"),
    ("urgency", True, "urgency"),
    ("category", 5, "category"),
    ("location", "Dongcheng", "location"),
    ("location", [1, 2], "location"),
    ("reporter", [], "reporter"),
    ("attachments", "https://example.org/a.jpg", "attachments"),
    ("reported_at", "yesterday", "reported_at"),
    ("reported_at", 1.5e12, "reported_at"),
    ("resolved_on_spot", "yes", "resolved_on_spot"),
]


@pytest.mark.parametrize("key,value,field", WRONG_TYPES,
                         ids=[f"{k}-{type(v).__name__}" for k, v, _ in WRONG_TYPES])
def test_wrong_types_create(mdaemon, client, catalog, key, value, field):
    b = case_body(catalog)
    b[key] = value
    invalid(mdaemon, client, "case.create", b, field)


NESTED_WRONG = [
    ("location", "district", 7, "location.district"),
    ("location", "street", ["s"], "location.street"),
    ("location", "lat", "north", "location.lat"),
    ("location", "lon", {"x": 1}, "location.lon"),
    ("reporter", "phone", 13800138000, "reporter.phone"),
    ("reporter", "name", [1], "reporter.name"),
]


@pytest.mark.parametrize("outer,inner,value,field", NESTED_WRONG,
                         ids=[f for *_, f in NESTED_WRONG])
def test_wrong_types_nested(mdaemon, client, catalog, outer, inner, value, field):
    b = case_body(catalog)
    b[outer] = dict(b[outer])
    if inner in ("lat", "lon"):
        b[outer].update(lat=39.9, lon=116.4)  # a pair: only one of them is wrong
    b[outer][inner] = value
    invalid(mdaemon, client, "case.create", b, field)


def test_wrong_type_in_attachment_list(mdaemon, client, catalog):
    b = case_body(catalog, attachments=["https://example.org/a.jpg", 17])
    invalid(mdaemon, client, "case.create", b,
            lambda f: isinstance(f, str) and f.startswith("attachments"))


@pytest.mark.parametrize("service,body,field", [
    ("case.get", {"id": "12"}, "id"),
    ("case.get", {"id": 1.5}, "id"),
    ("case.get", {"code": 12}, "code"),
    ("case.get", {"id": 1, "history": "yes"}, "history"),
    ("case.list", {"limit": "10"}, "limit"),
    ("case.list", {"filter": "registered"}, "filter"),
    ("case.list", {"filter": {"created_from": "today"}}, "filter.created_from"),
    ("case.list", {"filter": {"district": 3}}, "filter.district"),
    ("case.list", {"after": {"x": 1}}, "after"),
], ids=["get-id-str", "get-id-float", "get-code-int", "get-history-str", "list-limit-str",
        "list-filter-str", "list-created_from-str", "list-district-int", "list-after-map"])
def test_wrong_types_other_services(mdaemon, client, service, body, field):
    invalid(mdaemon, client, service, body, field)


def test_get_without_id_or_code(mdaemon, client):
    r = send_body(mdaemon, client, "case.get", pack({}))
    expect_error(r, "invalid_argument")


@pytest.mark.parametrize("value", [-1, 0, 2 ** 63 - 1, 2 ** 64 - 1, -(2 ** 63)])
def test_get_extreme_ids(mdaemon, client, value):
    r = send_body(mdaemon, client, "case.get", pack({"id": value}))
    expect_error(r, ("not_found", "invalid_argument"))


# -- unknown fields, bad enums, missing fields --------------------------------------------

@pytest.mark.parametrize("service,mutate,field", [
    ("case.create", lambda b: b.update(colour="red"), "colour"),
    ("case.create", lambda b: b["location"].update(floor=3), "location.floor"),
    ("case.create", lambda b: b["reporter"].update(email="a@b.c"), "reporter.email"),
], ids=["top", "location", "reporter"])
def test_unknown_fields_create(mdaemon, client, catalog, service, mutate, field):
    b = case_body(catalog)
    b["location"] = dict(b["location"])
    b["reporter"] = dict(b["reporter"])
    mutate(b)
    invalid(mdaemon, client, service, b, field)


@pytest.mark.parametrize("service,body,field", [
    ("case.get", {"id": 1, "verbose": True}, "verbose"),
    ("case.list", {"sort": "asc"}, "sort"),
    ("case.list", {"filter": {"colour": "red"}}, "filter.colour"),
], ids=["get", "list", "list-filter"])
def test_unknown_fields_other(mdaemon, client, service, body, field):
    invalid(mdaemon, client, service, body, field)


@pytest.mark.parametrize("key,value", [("channel", "fax"), ("channel", ""),
                                       ("channel", "HOTLINE"), ("urgency", "asap"),
                                       ("urgency", "")])
def test_bad_enums(mdaemon, client, catalog, key, value):
    invalid(mdaemon, client, "case.create", case_body(catalog, **{key: value}), key)


@pytest.mark.parametrize("key,value", [("state", "open"), ("channel", "fax")])
def test_bad_enum_filters(mdaemon, client, key, value):
    invalid(mdaemon, client, "case.list", {"filter": {key: value}}, f"filter.{key}")


@pytest.mark.parametrize("drop", ["request_id", "description", "location.district"])
def test_missing_required(mdaemon, client, catalog, drop):
    b = case_body(catalog)
    b["location"] = dict(b["location"])
    if drop == "location.district":
        del b["location"]["district"]
    else:
        del b[drop]
    invalid(mdaemon, client, "case.create", b, drop)


def test_missing_location(mdaemon, client, catalog):
    b = case_body(catalog)
    del b["location"]
    invalid(mdaemon, client, "case.create", b, lambda f: f in ("location", "location.district"))


def test_request_id_length(mdaemon, client, catalog):
    invalid(mdaemon, client, "case.create", case_body(catalog, request_id="r" * 129),
            "request_id")
    invalid(mdaemon, client, "case.create", case_body(catalog, request_id=""), "request_id")
    # 43 three-byte characters: 43 characters but 129 bytes
    invalid(mdaemon, client, "case.create", case_body(catalog, request_id="\u20ac" * 43),
            "request_id")
    # 128 bytes is allowed, in ASCII and in multi-byte text
    r = send_body(mdaemon, client, "case.create",
                  pack(case_body(catalog, request_id="a" * 122 + unique_request_id("")[-6:])))
    assert r.ok, r.describe()
    r = send_body(mdaemon, client, "case.create",
                  pack(case_body(catalog, request_id="\u20ac" * 40 + f"{time.time_ns() % 10**8:08d}")))
    assert r.ok, r.describe()


def test_oversized_body(mdaemon, client, catalog):
    """A 1 MiB description: an error reply, not a crash or a hang."""
    before = mdaemon.rss_kb()
    for key in ("description", "title"):
        b = case_body(catalog, **{key: "x" * (1 << 20)})
        r = send_body(mdaemon, client, "case.create", pack(b), timeout=10)
        expect_error(r, ("invalid_argument", "bad_request"), service="case.create")
        if r.error_code == "invalid_argument":
            assert r.error_field == key, r.describe()
    r = send_body(mdaemon, client, "case.create",
                  pack(case_body(catalog, attachments=["https://e.org/" + "a" * 100] * 20000)),
                  timeout=10)
    assert r.is_map(), r.describe()  # accepted or refused, but answered
    grown = mdaemon.rss_kb() - before
    assert grown < 50 * 1024, f"RSS grew by {grown} kB on 1-2 MiB bodies"


# -- the catalogue and the place tree ------------------------------------------------------

def test_unknown_category(mdaemon, client, catalog):
    invalid(mdaemon, client, "case.create", case_body(catalog, category="no-such-category"),
            "category")


def test_unknown_district(mdaemon, client, catalog):
    b = case_body(catalog, location={"district": "no-such-district"})
    invalid(mdaemon, client, "case.create", b, "location.district")


def test_place_tree_consistency(mdaemon, client, catalog):
    paths = catalog.full_paths()
    p1 = paths[0]
    p2 = next(p for p in paths if p[0] != p1[0])
    # a street of another district
    invalid(mdaemon, client, "case.create",
            case_body(catalog, location={"district": p1[0], "street": p2[1]}), "location.street")
    # a community of another street
    other_c = next(p for p in paths if p[1] != p1[1])
    invalid(mdaemon, client, "case.create",
            case_body(catalog, location={"district": p1[0], "street": p1[1],
                                         "community": other_c[2]}), "location.community")
    # a grid of another community
    other_g = next(p for p in paths if p[2] != p1[2])
    invalid(mdaemon, client, "case.create",
            case_body(catalog, location={"district": p1[0], "street": p1[1],
                                         "community": p1[2], "grid": other_g[3]}),
            "location.grid")
    invalid(mdaemon, client, "case.create",
            case_body(catalog, location={"district": p1[0], "street": "no-such-street"}),
            "location.street")


@pytest.mark.parametrize("limit", [0, 501, -1, 2 ** 32])
def test_list_limit_bounds(mdaemon, client, limit):
    invalid(mdaemon, client, "case.list", {"limit": limit}, "limit")


def test_list_limit_edges_ok(mdaemon, client):
    assert client.ok("case.list", {"limit": 1})
    assert client.ok("case.list", {"limit": 500})


# -- broken MDP framing ------------------------------------------------------------------

def framing_case(mdaemon, client, name, frames, expect_codes=("bad_request",), allow_ok=False):
    client.send_frames(frames)
    r = client.recv_reply(5.0)
    assert r is not None, f"{name}: no reply to {frames!r}"
    client.expect_silence(0.15)
    FRAMING_NOTES.append((name, [f[:60] for f in frames], [f[:80] for f in r.frames], r.body))
    alive(mdaemon, client)
    if frames[0] != b"" and len(r.frames) == 3 and r.frames[0] == MDPC:
        # The request had no empty delimiter frame; a reply that mirrors that
        # (MDPC01, service, body: no delimiter) is the consistent answer.
        r = Reply([b""] + r.frames)
    assert r.well_formed, f"{name}: reply is not ['', MDPC01, service, body]: {r.describe()}"
    if allow_ok and r.ok:
        return r
    expect_error(r, expect_codes)
    return r


BODY1 = pack({"id": 1})
FRAMINGS = [
    # name, frames, accepted error codes, may it be served (ok) instead
    ("MDPC02", [b"", b"MDPC02", b"case.get", BODY1], ("bad_request",), False),
    ("MDPW01", [b"", b"MDPW01", b"case.get", BODY1], ("bad_request",), False),
    ("empty-header", [b"", b"", b"case.get", BODY1], ("bad_request",), False),
    ("no-body", [b"", MDPC, b"case.get"], ("bad_request",), False),
    ("header-only", [b"", MDPC], ("bad_request",), False),
    ("delimiter-only", [b""], ("bad_request",), False),
    ("extra-frame", [b"", MDPC, b"case.list", pack({"limit": 1}), b"extra"],
     ("bad_request",), True),
    ("extra-frames-x5", [b"", MDPC, b"case.list", pack({"limit": 1})] + [b"x"] * 5,
     ("bad_request",), True),
    ("no-delimiter", [MDPC, b"case.get", BODY1], ("bad_request",), False),
    ("body-only", [BODY1], ("bad_request",), False),
    ("two-delimiters", [b"", b"", MDPC, b"case.get", BODY1], ("bad_request",), False),
    ("empty-service", [b"", MDPC, b"", pack({})], ("unknown_service", "bad_request"), False),
    ("long-service", [b"", MDPC, b"s" * 10000, pack({})], ("unknown_service", "bad_request"),
     False),
    ("non-utf8-service", [b"", MDPC, b"case.\xff", pack({})],
     ("unknown_service", "bad_request"), False),
]


@pytest.mark.parametrize("name,frames,codes,allow_ok", FRAMINGS, ids=[f[0] for f in FRAMINGS])
def test_framing(mdaemon, client, name, frames, codes, allow_ok):
    framing_case(mdaemon, client, name, frames, codes, allow_ok)


def test_many_hostile_quickly(mdaemon, client, catalog):
    """A burst of mixed bad requests, pipelined: one reply each, in any order."""
    bodies = list(HUGE_DECLARATIONS.values()) + [b"", b"\xc1", pack([1]), pack("s")]
    n = 0
    for _ in range(25):
        for b in bodies:
            client.send_frames([b"", MDPC, b"case.create", b])
            n += 1
    got = 0
    while got < n:
        r = client.recv_reply(5.0)
        assert r is not None, f"only {got} of {n} replies"
        expect_error(r, "bad_request")
        got += 1
    client.expect_silence(0.3)
    alive(mdaemon, client)


# -- the end -------------------------------------------------------------------------------

def test_zz_memory_and_reference_case(mdaemon, client, catalog):
    """Repeat the amplifying inputs, then: RSS within ~50 MB of the baseline, the
    reference case unchanged."""
    deep = b"\x81\xa1a" + nested(10000, b"\x91")
    big = pack(case_body(catalog, description="y" * (1 << 20)))
    for i in range(300):
        for payload in (HUGE_DECLARATIONS["array32-top"], HUGE_DECLARATIONS["str32-4GB"],
                        HUGE_DECLARATIONS["map32-in-map"], deep):
            client.send_frames([b"", MDPC, b"case.create", payload])
        if i % 10 == 0:
            client.send_frames([b"", MDPC, b"case.create", big])
        if i % 50 == 49:
            while client.recv_reply(0.3) is not None:
                pass
    while client.recv_reply(0.5) is not None:
        pass
    alive(mdaemon, client)
    rss = mdaemon.rss_kb()
    grown = rss - STATE["rss0"]
    print(f"RSS baseline {STATE['rss0']} kB, after the suite {rss} kB, grew {grown} kB")
    for note in FRAMING_NOTES:
        print("framing:", note)
    assert grown < 50 * 1024, f"RSS grew by {grown} kB over the hostile suite"
    got = client.ok("case.get", {"id": STATE["ref_id"]})["case"]
    assert got == STATE["ref"], f"reference case changed:\n{STATE['ref']!r}\n{got!r}"
