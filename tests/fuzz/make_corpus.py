#!/usr/bin/python3
"""Writes the fuzzers' seed corpus and dictionaries (tests/fuzz/README.md).

    /usr/bin/python3 tests/fuzz/make_corpus.py

Regenerates tests/fuzz/corpus/<harness>/ from scratch and tests/fuzz/<harness>.dict;
the output is committed, so CI and the replay tests need no Python. Seeds are small and
each shows one thing: a valid request of every kind, the edges of the limits, and the
hostile shapes the guard exists for, so the fuzzer starts from inputs that already
reach deep into the parsers instead of rediscovering MessagePack from random bytes.
Inputs a fuzzer found interesting do not go here (this script would delete them): a
crash goes to regressions/<harness>/.

Needs python3-msgpack (Debian's, as the integration tests use).
"""

import os
import shutil
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))

# The clock fuzz_request.c gives the parsers (2026-11-26T00:00:00Z).
NOW_MS = 1795651200000
DAY_MS = 24 * 3600 * 1000

# fuzz_request.c: the first byte, modulo 8, picks the decoder.
T_CREATE, T_GET, T_LIST, T_ACT, T_STATS, T_FEED, T_RECORD, T_EVENT = range(8)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


# ---- raw MessagePack pieces the Python packer will not write ------------------------

def str32(s):
    b = s.encode()
    return b"\xdb" + struct.pack(">I", len(b)) + b


def fixmap_raw(pairs):
    """A map from already-packed keys and values, which may repeat keys."""
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def nested_arrays(depth):
    return b"\x91" * (depth - 1) + b"\x90"


# ---- MDP frames ---------------------------------------------------------------------

def frames(*fs):
    """fuzz_mdp.c's encoding: frame count, then a length byte before each frame but
    the last, which takes the rest."""
    fs = [f.encode() if isinstance(f, str) else f for f in fs]
    out = bytes([len(fs)])
    for f in fs[:-1]:
        assert len(f) < 256
        out += bytes([len(f)]) + f
    if fs:
        out += fs[-1]
    return out


# ---- request bodies -----------------------------------------------------------------

CREATE_FULL = {
    "rid": 7,
    "request_id": "5f0c8a2e-hotline-000123",
    "channel": "hotline",
    "category": "street_lights",
    "urgency": "urgent",
    "title": "Street light out",
    "description": "Street light out at the gate of building 3",
    "location": {
        "district": "D01", "street": "D01-S01", "community": "D01-S01-C01",
        "grid": "D01-S01-C01-G01", "address": "No. 3, Lane 5", "lat": 31.2304, "lon": 121.4737,
    },
    "reporter": {"name": "Wang", "phone": "138 1234-5678"},
    "attachments": ["https://img.example/1.jpg", "http://img.example/2.png"],
    "reported_at": NOW_MS - DAY_MS,
    "resolved_on_spot": False,
    "agent": "D01-S01-C01",
}

CREATE_MIN = {"request_id": "r1", "description": "x", "location": {"district": "D01"}}

RECORD = {
    "id": 1, "code": "GL-20261126-000001", "version": 3, "state": "dispatched",
    "channel": "hotline", "category": "street_lights", "urgency": "normal",
    "title": "Street light out", "description": "Street light out at the gate of building 3",
    "location": {"district": "D01", "street": "D01-S01", "community": "D01-S01-C01",
                 "grid": None, "address": "No. 3", "lat": 31.23, "lon": 121.47},
    "reporter": {"name": "王", "phone": "13812345678"},
    "attachments": ["https://img.example/1.jpg"], "request_id": "5f0c",
    "reported_at": None, "resolved_on_spot": False, "unit": "U-D01-LIGHTS", "level": 0,
    "accept_by": NOW_MS + 3600000, "resolve_by": NOW_MS + 3 * DAY_MS,
    "created_at": NOW_MS, "updated_at": NOW_MS + 1000, "supervised": False,
    "duplicate_of": None, "reopen_count": 0, "return_count": 1, "returned_by": ["U-D01-ROADS"],
    "satisfaction": None, "reply": None, "extension_until": None, "agent": None,
    "dispatched_at": NOW_MS + 10, "accepted_at": None, "resolved_at": None,
    "warn_at": NOW_MS + 1800000, "deadlines_fired": 0, "deadlines_at": NOW_MS + 10,
}

EVENT = {
    "seq": 42, "at": NOW_MS, "case_id": 1, "code": "GL-20261126-000001", "type": "dispatched",
    "state": "dispatched", "unit": "U-D01-LIGHTS", "district": "D01",
    "category": "street_lights", "actor": "router", "note": None,
}


def act(action, **fields):
    body = {"id": 12, "action": action}
    body.update(fields)
    return body


def request_seeds():
    s = {}

    def add(name, target, body):
        s[name] = bytes([target]) + (body if isinstance(body, bytes) else pack(body))

    # case.create
    add("create_full", T_CREATE, CREATE_FULL)
    add("create_minimal", T_CREATE, CREATE_MIN)
    add("create_window_resolved_on_spot", T_CREATE,
        dict(CREATE_MIN, channel="window", resolved_on_spot=True))
    add("create_nil_optionals", T_CREATE,
        dict(CREATE_MIN, channel=None, category=None, title=None, reporter=None,
             attachments=None, agent=None, rid=None))
    add("create_unicode", T_CREATE,
        dict(CREATE_MIN, description="小区门口路灯不亮", reporter={"name": "王女士"}))
    add("create_float32_coords", T_CREATE,
        b"\x83" + pack("request_id") + pack("r") + pack("description") + pack("d")
        + pack("location") + b"\x83" + pack("district") + pack("D01")
        + pack("lat") + b"\xca" + struct.pack(">f", 31.5)
        + pack("lon") + b"\xca" + struct.pack(">f", 121.5))
    add("create_unknown_field", T_CREATE, dict(CREATE_MIN, colour="red"))
    add("create_unknown_nested_field", T_CREATE,
        dict(CREATE_MIN, location={"district": "D01", "floor": 3}))
    add("create_unknown_field_bad_utf8", T_CREATE,
        fixmap_raw([(pack("request_id"), pack("r")), (b"\xa3\xff\xfe\x01", pack(1))]))
    add("create_duplicate_key", T_CREATE,
        fixmap_raw([(pack("request_id"), pack("a")), (pack("request_id"), pack("b"))]))
    add("create_int_key", T_CREATE, fixmap_raw([(pack(1), pack("a"))]))
    add("create_description_surrogate", T_CREATE,
        fixmap_raw([(pack("request_id"), pack("r")), (pack("description"), b"\xa3\xed\xa0\x80"),
                    (pack("location"), pack({"district": "D01"}))]))
    add("create_description_nul", T_CREATE, dict(CREATE_MIN, description="a\x00b"))
    add("create_request_id_129", T_CREATE, dict(CREATE_MIN, request_id="r" * 129))
    add("create_request_id_128", T_CREATE, dict(CREATE_MIN, request_id="r" * 128))
    add("create_attachments_17", T_CREATE,
        dict(CREATE_MIN, attachments=["https://a/%d" % i for i in range(17)]))
    add("create_attachment_not_url", T_CREATE, dict(CREATE_MIN, attachments=["ftp://a"]))
    add("create_lat_without_lon", T_CREATE,
        dict(CREATE_MIN, location={"district": "D01", "lat": 1.0}))
    add("create_lat_nan", T_CREATE,
        dict(CREATE_MIN, location={"district": "D01", "lat": float("nan"), "lon": 1.0}))
    add("create_phone_letters", T_CREATE, dict(CREATE_MIN, reporter={"phone": "call me"}))
    add("create_agent_and_on_spot", T_CREATE,
        dict(CREATE_MIN, agent="C01", resolved_on_spot=True))
    add("create_reported_in_future", T_CREATE, dict(CREATE_MIN, reported_at=NOW_MS + DAY_MS))
    add("create_reported_u64_max", T_CREATE, dict(CREATE_MIN, reported_at=2 ** 64 - 1))
    add("create_bad_channel", T_CREATE, dict(CREATE_MIN, channel="fax"))
    add("create_location_not_map", T_CREATE, dict(CREATE_MIN, location="D01"))
    add("create_long_unknown_key", T_CREATE, dict(CREATE_MIN, **{"键" * 40: 1}))
    add("create_body_array", T_CREATE, [1, 2, 3])

    # case.get
    add("get_by_id", T_GET, {"id": 1, "history": True})
    add("get_by_code", T_GET, {"code": "GL-20261126-000001", "rid": "a"})
    add("get_both", T_GET, {"id": 1, "code": "GL-1"})
    add("get_neither", T_GET, {})
    add("get_id_zero", T_GET, {"id": 0})
    add("get_id_negative", T_GET, {"id": -1})

    # case.list
    add("list_empty", T_LIST, {})
    add("list_full_filter", T_LIST, {
        "filter": {"state": "registered", "unit": "U1", "district": "D01", "street": "S1",
                   "community": "C1", "grid": "G1", "category": "roads",
                   "channel": "grid", "overdue": True, "supervised": False,
                   "reporter_phone": "13812345678", "created_from": NOW_MS - DAY_MS,
                   "created_to": NOW_MS},
        "after": 100, "limit": 500})
    add("list_range_backwards", T_LIST, {"filter": {"created_from": 2, "created_to": 1}})
    add("list_limit_0", T_LIST, {"limit": 0})
    add("list_limit_501", T_LIST, {"limit": 501})
    add("list_bad_state", T_LIST, {"filter": {"state": "lost"}})
    add("list_negative_times", T_LIST,
        {"filter": {"created_from": -(2 ** 63), "created_to": -1}})

    # case.act: every action with what it needs, and a few refusals
    add("act_accept", T_ACT, act("accept", version=3))
    add("act_note", T_ACT, act("note", note="called the resident"))
    add("act_resolve", T_ACT, act("resolve", reply="Replaced the lamp", note="done"))
    add("act_return", T_ACT, act("return", reason="not ours"))
    add("act_extend", T_ACT, act("extend", reason="parts on order", until=NOW_MS + DAY_MS))
    add("act_approve_extension", T_ACT, act("approve_extension"))
    add("act_reject_extension", T_ACT, act("reject_extension"))
    add("act_urge", T_ACT, act("urge"))
    add("act_supervise", T_ACT, act("supervise"))
    add("act_escalate", T_ACT, act("escalate"))
    add("act_reassign", T_ACT, act("reassign", unit="U-D01-ROADS"))
    add("act_merge", T_ACT, act("merge", into=3))
    add("act_callback", T_ACT, act("callback", satisfaction="basically_satisfied"))
    add("act_withdraw", T_ACT, act("withdraw", rid=[1]))
    add("act_resolve_without_reply", T_ACT, act("resolve"))
    add("act_accept_with_reply", T_ACT, act("accept", reply="x"))
    add("act_merge_into_itself", T_ACT, act("merge", into=12))
    add("act_extend_into_past", T_ACT, act("extend", reason="r", until=1))
    add("act_extend_u64_max", T_ACT, act("extend", reason="r", until=2 ** 64 - 1))
    add("act_unknown_action", T_ACT, act("delete"))

    # stats.query
    for g in ("unit", "district", "category", "street", "community"):
        add("stats_by_" + g, T_STATS, {"group_by": g})
    add("stats_range", T_STATS, {"group_by": "unit", "from": NOW_MS - DAY_MS, "to": NOW_MS})
    add("stats_range_backwards", T_STATS, {"group_by": "unit", "from": 2, "to": 1})
    add("stats_missing_group_by", T_STATS, {"from": 1})

    # feed.pull
    add("feed_empty", T_FEED, {})
    add("feed_full", T_FEED, {"after": 41, "limit": 1000, "wait_ms": 30000,
                              "filter": {"unit": "U1", "district": "D01", "category": "roads"}})
    add("feed_limit_1001", T_FEED, {"limit": 1001})
    add("feed_wait_30001", T_FEED, {"wait_ms": 30001})
    add("feed_filter_not_map", T_FEED, {"filter": ["D01"]})

    # the case and event codecs
    add("record_full", T_RECORD, RECORD)
    add("record_minimal", T_RECORD, {"id": 1})
    add("record_bad_channel", T_RECORD, dict(RECORD, channel="fax"))
    add("record_negative_numbers", T_RECORD,
        dict(RECORD, id=-1, level=-1, duplicate_of=5, created_at=-5, reopen_count=2 ** 40))
    add("record_lat_only", T_RECORD, dict(RECORD, location={"district": "D01", "lat": 1.5}))
    add("record_many_attachments", T_RECORD,
        dict(RECORD, attachments=["a"] * 20, returned_by=["u"] * 10))
    add("record_wrong_types", T_RECORD,
        dict(RECORD, code=1, reporter="x", attachments="y", satisfaction=3, unit=[1]))
    add("event_full", T_EVENT, EVENT)
    add("event_no_seq", T_EVENT, dict(EVENT, seq=None))
    add("event_unknown_type", T_EVENT, dict(EVENT, type="exploded"))
    add("event_nil_strings", T_EVENT,
        dict(EVENT, unit=None, district=None, category=None, actor=None, note=None))

    # rid: every form it may take, and what is not a rid
    add("rid_str32", T_GET, b"\x82" + str32("rid") + pack("r-1") + pack("id") + pack(1))
    add("rid_bin", T_GET, {"rid": b"\x00\x01", "id": 1})
    add("rid_float", T_GET, {"rid": 1.5, "id": 1})
    add("rid_64_bytes", T_GET, {"rid": "r" * 62, "id": 1})
    add("rid_65_bytes", T_GET, {"rid": "r" * 63, "id": 1})
    add("rid_map", T_GET, {"rid": {"a": 1}, "id": 1})
    add("rid_after_int_key", T_GET, fixmap_raw([(pack(5), pack(5)), (pack("rid"), pack(9))]))
    add("rid_twice", T_GET, fixmap_raw([(pack("rid"), pack(1)), (pack("rid"), pack(2))]))
    add("rid_map16_body", T_GET, b"\xde\x00\x02" + pack("rid") + pack(3) + pack("id") + pack(1))

    # hostile shapes: what mp_guard must stop before msgpack-c allocates
    add("hostile_array32_count", T_CREATE, b"\x81" + pack("rid") + b"\xdd\xff\xff\xff\xff")
    add("hostile_map32_count", T_LIST, b"\xdf\xff\xff\xff\xff")
    add("hostile_str32_length", T_GET, b"\x81" + pack("code") + b"\xdb\xff\xff\xff\xff")
    add("hostile_depth_9", T_CREATE,
        b"\x81" + pack("location") + b"\x81" + pack("x") + nested_arrays(7))
    add("hostile_trailing_byte", T_GET, pack({"id": 1}) + b"\xc0")
    add("hostile_truncated", T_GET, pack({"id": 1})[:-1])
    add("hostile_c1", T_GET, b"\x81\xa2id\xc1")
    add("empty_body", T_STATS, b"")
    return s


def mdp_seeds():
    create = pack(CREATE_MIN)
    return {
        "create": frames("", "MDPC01", "case.create", create),
        "get": frames("", "MDPC01", "case.get", pack({"id": 1})),
        "mmi_service": frames("", "MDPC01", "mmi.service", "case.get"),
        "empty_body": frames("", "MDPC01", "case.get", ""),
        "undelimited": frames("MDPC01", "case.get", pack({"id": 1})),
        "undelimited_long_service": frames("MDPC01", "s" * 65, "x"),
        "wrong_header": frames("", "MDPC02", "case.get", "x"),
        "worker_header": frames("", "MDPW01", "\x01", "gridline.route"),
        "empty_service": frames("", "MDPC01", "", "x"),
        "service_64": frames("", "MDPC01", "s" * 64, "x"),
        "service_65": frames("", "MDPC01", "s" * 65, "x"),
        "missing_body": frames("", "MDPC01", "case.get"),
        "missing_service": frames("", "MDPC01"),
        "only_delimiter": frames(""),
        "no_frames": frames(),
        "too_many_frames": frames("", "MDPC01", "case.get", "x", "y"),
        "eight_frames": frames("", "MDPC01", "case.get", "x", "y", "z", "", "w"),
    }


def mp_guard_seeds():
    s = {
        "nil": b"\xc0", "true": b"\xc3", "false": b"\xc2",
        "fixint": b"\x7f", "negative_fixint": b"\xe0",
        "uint8": b"\xcc\xff", "uint16": b"\xcd\xff\xff", "uint32": b"\xce\xff\xff\xff\xff",
        "uint64": b"\xcf" + b"\xff" * 8, "int8": b"\xd0\x80", "int16": b"\xd1\x80\x00",
        "int32": b"\xd2\x80\x00\x00\x00", "int64": b"\xd3\x80" + b"\x00" * 7,
        "float32": b"\xca" + struct.pack(">f", 1.5), "float64": pack(2.5),
        "fixstr": pack("abc"), "str8": b"\xd9\x03abc", "str16": b"\xda\x00\x03abc",
        "str32": str32("abc"), "bin8": b"\xc4\x02\x00\x01", "bin16": b"\xc5\x00\x01\x00",
        "bin32": b"\xc6\x00\x00\x00\x01\x00",
        "fixext1": b"\xd4\x01\x00", "fixext2": b"\xd5\x01" + b"\x00" * 2,
        "fixext4": b"\xd6\x01" + b"\x00" * 4, "fixext8": b"\xd7\x01" + b"\x00" * 8,
        "fixext16": b"\xd8\x01" + b"\x00" * 16, "ext8": b"\xc7\x01\x05\x00",
        "ext16": b"\xc8\x00\x01\x05\x00", "ext32": b"\xc9\x00\x00\x00\x01\x05\x00",
        "fixarray": pack([1, [2, [3]]]), "array16": b"\xdc\x00\x02\xc0\xc0",
        "array32": b"\xdd\x00\x00\x00\x01\xc0", "fixmap": pack({"a": {"b": 1}}),
        "map16": b"\xde\x00\x01\xa1a\xc0", "map32": b"\xdf\x00\x00\x00\x01\xa1a\xc0",
        "empty_containers": pack([[], {}, b"", ""]),
        "create_body": pack(CREATE_FULL),
        "record": pack(RECORD),
        # Refused: each for its own reason.
        "empty": b"",
        "c1": b"\xc1",
        "trailing": b"\xc0\xc0",
        "truncated_array": b"\x92\x01",
        "truncated_uint32": b"\xce\x00\x00",
        "truncated_map16_head": b"\xde\x00",
        "array32_huge_count": b"\xdd\xff\xff\xff\xff",
        "map32_huge_count": b"\xdf\xff\xff\xff\xff",
        "map16_count_one_short": b"\xde\x00\x02\xc0\xc0\xc0",
        "str32_huge_length": b"\xdb\xff\xff\xff\xff",
        "ext32_huge_length": b"\xc9\xff\xff\xff\xff\x01",
        "depth_8": nested_arrays(8),
        "depth_9": nested_arrays(9),
        "depth_33": nested_arrays(33),
        "depth_65": nested_arrays(65),
        "depth_200": nested_arrays(200),
        "items_4096": b"\xdc" + struct.pack(">H", 4095) + b"\xc0" * 4095,
        "items_4097": b"\xdc" + struct.pack(">H", 4096) + b"\xc0" * 4096,
    }
    return s


# ---- dictionaries (libFuzzer -dict) ------------------------------------------------

def dict_entry(b):
    return '"' + "".join(chr(c) if 0x20 <= c < 0x7f and c not in (0x22, 0x5c)
                         else "\\x%02x" % c for c in b) + '"'


REQUEST_WORDS = [
    "rid", "request_id", "channel", "category", "urgency", "title", "description",
    "location", "district", "street", "community", "grid", "address", "lat", "lon",
    "reporter", "name", "phone", "attachments", "reported_at", "resolved_on_spot", "agent",
    "id", "code", "history", "filter", "after", "limit", "state", "unit", "overdue",
    "supervised", "reporter_phone", "created_from", "created_to", "action", "version",
    "note", "reply", "reason", "until", "into", "satisfaction", "group_by", "from", "to",
    "wait_ms", "seq", "at", "case_id", "type", "actor", "level", "accept_by", "resolve_by",
    "created_at", "updated_at", "duplicate_of", "reopen_count", "return_count",
    "returned_by", "extension_until", "dispatched_at", "accepted_at", "resolved_at",
    "warn_at", "deadlines_fired", "deadlines_at",
    # enumerations
    "hotline", "window", "web", "app", "transfer", "emergency", "urgent", "normal",
    "registered", "dispatched", "accepted", "resolved", "closed", "returned", "merged",
    "withdrawn", "accept", "resolve", "return", "extend", "approve_extension",
    "reject_extension", "urge", "supervise", "escalate", "reassign", "merge", "callback",
    "withdraw", "satisfied", "basically_satisfied", "unsatisfied", "created", "noted",
    "extension_requested", "extension_approved", "extension_rejected", "urged", "warned",
    "escalated", "reassigned", "reopened", "https://", "http://",
]

MP_TOKENS = [
    b"\xdc\xff\xff", b"\xdd\xff\xff\xff\xff", b"\xde\xff\xff", b"\xdf\xff\xff\xff\xff",
    b"\xdb\x00\x01\x00\x00", b"\xdb\x00\x01\x00\x01", b"\xc9\xff\xff\xff\xff",
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", b"\xdc\x10\x00", b"\xdc\x0f\xff",
]


def write_dict(name, entries):
    path = os.path.join(HERE, name + ".dict")
    with open(path, "w") as f:
        f.write("# libFuzzer dictionary for fuzz_%s; written by make_corpus.py\n" % name)
        for e in entries:
            f.write(dict_entry(e) + "\n")


def write_corpus(harness, seeds):
    d = os.path.join(HERE, "corpus", harness)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print("%-9s %3d seeds" % (harness, len(seeds)))


def main():
    write_corpus("mdp", mdp_seeds())
    write_corpus("mp_guard", mp_guard_seeds())
    write_corpus("request", request_seeds())
    write_dict("mdp", [b"MDPC01", b"MDPW01", b"mmi.", b"mmi.service", b"case.create",
                       b"case.get", b"case.list", b"case.act", b"feed.pull", b"stats.query",
                       b"catalog.get"])
    write_dict("mp_guard", MP_TOKENS)
    words = [pack(w) for w in REQUEST_WORDS] + [w.encode() for w in REQUEST_WORDS]
    write_dict("request", words + MP_TOKENS)


if __name__ == "__main__":
    main()
