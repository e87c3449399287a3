/*
 * request: every rule of case.act as request_parse_act checks it (protocol/README.md,
 * "case.act"): the action names, id, version, the fields each action requires and the
 * ones it refuses, the bounds of until, into, satisfaction, note, reply, reason and
 * unit, unknown and duplicate fields, and the field's name at the head of every
 * message.
 *
 * Bodies are packed by msgpack-c, passed through mp_guard and msgpack_unpack_next as the
 * daemon does, then parsed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mp_guard.h"
#include "request.h"

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS INT64_C(1764000000000)
#define CASE_ID 7

#include "mp_build.h"

/* ---- bodies ----------------------------------------------------------------------- */

static msgpack_sbuffer  sb;
static msgpack_unpacked unpacked;
static gl_error         err;
static request_act      ra;

static int
setup(void **state)
{
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&unpacked);
    memset(&err, 0, sizeof err);
    memset(&ra, 0xa5, sizeof ra);   /* garbage: the parser must set every field */
    return 0;
}

static int
teardown(void **state)
{
    msgpack_unpacked_destroy(&unpacked);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

/* Guards and unpacks what is in sb, as the daemon does; returns the body. */
static const msgpack_object *
unpack_sb(void)
{
    size_t      off = 0;
    const char *why = NULL;

    if (mp_guard_check(sb.data, sb.size, &mp_guard_request_limits, &why) != 0) {
        fail_msg("test body refused by mp_guard: %s", why);
    }
    msgpack_unpacked_destroy(&unpacked);
    msgpack_unpacked_init(&unpacked);
    assert_int_equal(msgpack_unpack_next(&unpacked, sb.data, sb.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb.size);
    return &unpacked.data;
}

/* Parses a body packed from fmt alone. */
static int
parse_fmt(const char *fmt, ...)
{
    msgpack_packer pk;
    fmt_state      st;
    va_list        ap;

    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    va_start(ap, fmt);
    st.fmt = fmt;
    va_copy(st.ap, ap);
    pack_value(&pk, &st);
    va_end(st.ap);
    va_end(ap);
    return request_parse_act(unpack_sb(), NOW_MS, &ra, &err);
}

/* The action-specific fields; each action's own ones with a valid value. */
enum { F_REPLY, F_REASON, F_UNTIL, F_UNIT, F_INTO, F_SATISFACTION, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "reply", "reason", "until", "unit", "into", "satisfaction"
};

static const char *const action_names[ACT_COUNT] = {
    "accept", "note", "resolve", "return", "extend", "approve_extension",
    "reject_extension", "urge", "supervise", "escalate", "reassign", "merge", "callback",
    "withdraw"
};

/* Whether action a requires field f (the contract's table). */
static bool
uses(int a, int f)
{
    switch (f) {
    case F_REPLY:        return a == ACT_RESOLVE;
    case F_REASON:       return a == ACT_RETURN || a == ACT_EXTEND;
    case F_UNTIL:        return a == ACT_EXTEND;
    case F_UNIT:         return a == ACT_REASSIGN;
    case F_INTO:         return a == ACT_MERGE;
    case F_SATISFACTION: return a == ACT_CALLBACK;
    default:             return false;
    }
}

static void
pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void
pack_field_value(msgpack_packer *pk, int f)
{
    switch (f) {
    case F_REPLY:        pack_cstr(pk, "The light was fixed on Tuesday."); break;
    case F_REASON:       pack_cstr(pk, "Not ours: the street office handles it."); break;
    case F_UNTIL:        msgpack_pack_int64(pk, NOW_MS + 86400000); break;
    case F_UNIT:         pack_cstr(pk, "D01-HOUSING"); break;
    case F_INTO:         msgpack_pack_uint64(pk, 42); break;
    case F_SATISFACTION: pack_cstr(pk, "basically_satisfied"); break;
    default:             fail();
    }
}

/*
 * The body {"id": 7, "action": NAME} with: the fields action a requires (with a valid
 * value) except those in the bit set `drop`, plus the field `add` (-1: none) with a
 * valid value, plus "note": "checked" for the note action, plus the key/value pairs
 * of extra (a format without the enclosing braces). Parses it into ra.
 */
static int
act_ex(int a, unsigned drop, int add, const char *extra, ...)
{
    msgpack_packer pk;
    fmt_state      st;
    va_list        ap;
    uint32_t       n = 2 + fmt_count(extra) / 2;
    bool           note = a == ACT_NOTE && (drop & (1u << F_COUNT)) == 0;
    int            f;

    for (f = 0; f < F_COUNT; f++) {
        n += (uses(a, f) && (drop & (1u << f)) == 0) || f == add;
    }
    n += note;
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    pack_cstr(&pk, "id");
    msgpack_pack_uint64(&pk, CASE_ID);
    pack_cstr(&pk, "action");
    pack_cstr(&pk, action_names[a]);
    for (f = 0; f < F_COUNT; f++) {
        if ((uses(a, f) && (drop & (1u << f)) == 0) || f == add) {
            pack_cstr(&pk, field_names[f]);
            pack_field_value(&pk, f);
        }
    }
    if (note) {
        pack_cstr(&pk, "note");
        pack_cstr(&pk, "checked");
    }
    va_start(ap, extra);
    st.fmt = extra;
    va_copy(st.ap, ap);
    pack_items(&pk, &st, '\0');
    va_end(st.ap);
    va_end(ap);
    return request_parse_act(unpack_sb(), NOW_MS, &ra, &err);
}

/* Action a with its own fields and extra pairs. */
#define ACT(a, ...) act_ex((a), 0, -1, __VA_ARGS__)
#define DROP(f)     (1u << (f))
#define DROP_NOTE   (1u << F_COUNT)

static void
assert_invalid(int rc, const char *field, const char *message_part)
{
    if (rc != GL_EINVALID || strcmp(err.field, field) != 0
        || (message_part != NULL && strstr(err.message, message_part) == NULL)) {
        fail_msg("expected invalid %s (\"%s\"), got rc %d field \"%s\" message \"%s\"", field,
                 message_part != NULL ? message_part : "", rc, err.field, err.message);
    }
    assert_int_equal(err.code, GL_EINVALID);
}

/* The refusal names its field first: "reply is required by action resolve". */
static void
assert_message(const char *expected)
{
    assert_string_equal(err.message, expected);
}

static char *
repeat(char c, size_t n)
{
    static char buf[8192];

    assert_true(n < sizeof buf);
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* ---- the action names ------------------------------------------------------------- */

static void
test_every_action_name_is_accepted(void **state)
{
    for (int a = 0; a < ACT_COUNT; a++) {
        memset(&ra, 0xa5, sizeof ra);
        if (ACT(a, "") != 0) {
            fail_msg("action %s refused: field \"%s\" message \"%s\"", action_names[a],
                     err.field, err.message);
        }
        assert_int_equal(ra.action, a);
        assert_true(ra.id == CASE_ID);
        assert_true(ra.version == 0);
        assert_string_equal(case_action_name((case_action)a), action_names[a]);
        /* the fields the action does not take are left empty */
        assert_int_equal(ra.reply.n, uses(a, F_REPLY) ? 31 : 0);
        assert_int_equal(ra.reason.n, uses(a, F_REASON) ? 39 : 0);
        assert_true(ra.until == (uses(a, F_UNTIL) ? NOW_MS + 86400000 : 0));
        assert_int_equal(ra.unit.n, uses(a, F_UNIT) ? 11 : 0);
        assert_true(ra.into == (uses(a, F_INTO) ? 42u : 0u));
        assert_int_equal(ra.satisfaction,
                         uses(a, F_SATISFACTION) ? SATISFACTION_BASICALLY_SATISFIED
                                                 : SATISFACTION_NONE);
        assert_int_equal(ra.note.n, a == ACT_NOTE ? 7 : 0);
    }
}

static void
test_action_fields_are_filled(void **state)
{
    assert_int_equal(ACT(ACT_RESOLVE, ""), 0);
    assert_true(gl_str_eq(ra.reply, "The light was fixed on Tuesday."));
    assert_int_equal(ACT(ACT_EXTEND, ""), 0);
    assert_true(gl_str_eq(ra.reason, "Not ours: the street office handles it."));
    assert_true(ra.until == NOW_MS + 86400000);
    assert_int_equal(ACT(ACT_REASSIGN, ""), 0);
    assert_true(gl_str_eq(ra.unit, "D01-HOUSING"));
    assert_int_equal(ACT(ACT_NOTE, ""), 0);
    assert_true(gl_str_eq(ra.note, "checked"));
}

static void
test_strings_borrow_from_the_body_buffer(void **state)
{
    assert_int_equal(ACT(ACT_RESOLVE, "s:s", "note", "done"), 0);
    assert_true(ra.reply.p >= sb.data && ra.reply.p < sb.data + sb.size);
    assert_true(ra.note.p >= sb.data && ra.note.p < sb.data + sb.size);
}

static void
test_unknown_action_lists_every_action(void **state)
{
    assert_invalid(parse_fmt("{s:i, s:s}", "id", 7, "action", "close"), "action", NULL);
    assert_message("action must be one of accept, note, resolve, return, extend, "
                   "approve_extension, reject_extension, urge, supervise, escalate, reassign, "
                   "merge, callback, withdraw");
}

static void
test_action_names_are_exact(void **state)
{
    assert_invalid(parse_fmt("{s:i, s:s}", "id", 7, "action", "Accept"), "action", "one of");
    assert_invalid(parse_fmt("{s:i, s:s}", "id", 7, "action", "accept "), "action", "one of");
    assert_invalid(parse_fmt("{s:i, s:s}", "id", 7, "action", ""), "action", "one of");
    assert_invalid(parse_fmt("{s:i, s:S}", "id", 7, "action", "accept\0x", (size_t)8),
                   "action", "one of");
    assert_invalid(parse_fmt("{s:i, s:s}", "id", 7, "action", "approve"), "action", "one of");
}

static void
test_action_that_is_not_a_string_is_invalid(void **state)
{
    assert_invalid(parse_fmt("{s:i, s:i}", "id", 7, "action", 0), "action", "one of");
    assert_invalid(parse_fmt("{s:i, s:[s]}", "id", 7, "action", "accept"), "action", "one of");
}

/* ---- id, action, version ---------------------------------------------------------- */

static void
test_id_is_required(void **state)
{
    assert_invalid(parse_fmt("{s:s}", "action", "accept"), "id", NULL);
    assert_message("id is required");
    assert_invalid(parse_fmt("{s:n, s:s}", "id", "action", "accept"), "id", "is required");
}

static void
test_id_must_be_a_positive_integer(void **state)
{
    assert_invalid(parse_fmt("{s:i, s:s}", "id", 0, "action", "accept"), "id", NULL);
    assert_message("id must be a positive integer");
    assert_invalid(parse_fmt("{s:i, s:s}", "id", -7, "action", "accept"), "id",
                   "positive integer");
    assert_invalid(parse_fmt("{s:s, s:s}", "id", "7", "action", "accept"), "id",
                   "positive integer");
    assert_invalid(parse_fmt("{s:d, s:s}", "id", 7.0, "action", "accept"), "id",
                   "positive integer");
    assert_invalid(parse_fmt("{s:b, s:s}", "id", 1, "action", "accept"), "id",
                   "positive integer");
}

static void
test_largest_id_passes(void **state)
{
    assert_int_equal(parse_fmt("{s:u, s:s}", "id", UINT64_MAX, "action", "urge"), 0);
    assert_true(ra.id == UINT64_MAX);
    assert_int_equal(ra.action, ACT_URGE);
}

static void
test_action_is_required(void **state)
{
    assert_invalid(parse_fmt("{s:i}", "id", 7), "action", NULL);
    assert_message("action is required");
    assert_invalid(parse_fmt("{s:i, s:n}", "id", 7, "action"), "action", "is required");
}

static void
test_id_is_checked_before_action(void **state)
{
    /* Whatever order the keys come in, the first field in the contract's order wins. */
    assert_invalid(parse_fmt("{s:s, s:i}", "action", "bogus", "id", 0), "id", NULL);
    assert_invalid(parse_fmt("{s:i, s:s}", "id", 0, "action", "bogus"), "id", NULL);
    assert_invalid(parse_fmt("{s:i, s:s, s:i}", "version", 0, "action", "bogus", "id", 7),
                   "action", NULL);
}

static void
test_version_is_kept(void **state)
{
    assert_int_equal(ACT(ACT_ACCEPT, "s:i", "version", 3), 0);
    assert_true(ra.version == 3);
    assert_int_equal(ACT(ACT_ACCEPT, "s:i", "version", 1), 0);
    assert_true(ra.version == 1);
    assert_int_equal(ACT(ACT_ACCEPT, "s:I", "version", INT64_MAX), 0);
    assert_true(ra.version == (uint64_t)INT64_MAX);
}

static void
test_nil_version_is_absent(void **state)
{
    assert_int_equal(ACT(ACT_ACCEPT, "s:n", "version"), 0);
    assert_true(ra.version == 0);
}

static void
test_version_must_be_positive(void **state)
{
    assert_invalid(ACT(ACT_ACCEPT, "s:i", "version", 0), "version", NULL);
    assert_message("version must be a positive integer");
    assert_invalid(ACT(ACT_ACCEPT, "s:i", "version", -1), "version", "positive integer");
    assert_invalid(ACT(ACT_ACCEPT, "s:u", "version", UINT64_MAX), "version",
                   "positive integer");
    assert_invalid(ACT(ACT_ACCEPT, "s:s", "version", "3"), "version", "positive integer");
    assert_invalid(ACT(ACT_ACCEPT, "s:d", "version", 3.0), "version", "positive integer");
}

/* ---- each action's own fields ----------------------------------------------------- */

static void
test_each_required_field_is_required(void **state)
{
    static const struct {
        int         a;
        int         f;
        const char *message;
    } cases[] = {
        { ACT_RESOLVE,  F_REPLY,        "reply is required by action resolve" },
        { ACT_RETURN,   F_REASON,       "reason is required by action return" },
        { ACT_EXTEND,   F_UNTIL,        "until is required by action extend" },
        { ACT_EXTEND,   F_REASON,       "reason is required by action extend" },
        { ACT_REASSIGN, F_UNIT,         "unit is required by action reassign" },
        { ACT_MERGE,    F_INTO,         "into is required by action merge" },
        { ACT_CALLBACK, F_SATISFACTION, "satisfaction is required by action callback" },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_invalid(act_ex(cases[i].a, DROP(cases[i].f), -1, ""), field_names[cases[i].f],
                       NULL);
        assert_message(cases[i].message);
    }
}

static void
test_extend_without_until_and_reason_names_one(void **state)
{
    int rc = act_ex(ACT_EXTEND, DROP(F_UNTIL) | DROP(F_REASON), -1, "");

    assert_int_equal(rc, GL_EINVALID);
    assert_true(strcmp(err.field, "until") == 0 || strcmp(err.field, "reason") == 0);
    assert_non_null(strstr(err.message, "is required by action extend"));
}

static void
test_nil_required_field_is_missing(void **state)
{
    assert_invalid(act_ex(ACT_RESOLVE, DROP(F_REPLY), -1, "s:n", "reply"), "reply",
                   "is required by action resolve");
    assert_invalid(act_ex(ACT_MERGE, DROP(F_INTO), -1, "s:n", "into"), "into",
                   "is required by action merge");
    assert_invalid(act_ex(ACT_CALLBACK, DROP(F_SATISFACTION), -1, "s:n", "satisfaction"),
                   "satisfaction", "is required by action callback");
}

static void
test_note_is_required_by_note(void **state)
{
    assert_invalid(act_ex(ACT_NOTE, DROP_NOTE, -1, ""), "note", NULL);
    assert_message("note is required by action note");
    assert_invalid(act_ex(ACT_NOTE, DROP_NOTE, -1, "s:s", "note", ""), "note",
                   "is required by action note");
    assert_invalid(act_ex(ACT_NOTE, DROP_NOTE, -1, "s:n", "note"), "note",
                   "is required by action note");
}

static void
test_every_field_is_refused_on_actions_that_do_not_use_it(void **state)
{
    char expected[128];
    int  refused = 0;

    for (int a = 0; a < ACT_COUNT; a++) {
        for (int f = 0; f < F_COUNT; f++) {
            if (uses(a, f)) {
                continue;
            }
            assert_invalid(act_ex(a, 0, f, ""), field_names[f], NULL);
            snprintf(expected, sizeof expected, "%s is not used by action %s", field_names[f],
                     action_names[a]);
            assert_message(expected);
            refused++;
        }
    }
    assert_int_equal(refused, ACT_COUNT * F_COUNT - 7);
}

static void
test_unused_field_is_refused_whatever_its_value(void **state)
{
    /* A misplaced field is refused whatever its value: it is not ignored silently. */
    assert_invalid(ACT(ACT_ACCEPT, "s:s", "reply", ""), "reply", "is not used by action accept");
    assert_invalid(ACT(ACT_RESOLVE, "s:i", "until", -5), "until",
                   "is not used by action resolve");
    assert_invalid(ACT(ACT_EXTEND, "s:i", "satisfaction", 3), "satisfaction",
                   "is not used by action extend");
}

static void
test_nil_unused_field_is_absent(void **state)
{
    /* Nil means absent, for a field an action does not use as for any optional one. */
    assert_int_equal(ACT(ACT_ACCEPT, "s:n, s:n, s:n", "reply", "until", "into"), 0);
    assert_int_equal(ra.action, ACT_ACCEPT);
}

static void
test_note_goes_with_every_action(void **state)
{
    for (int a = 0; a < ACT_COUNT; a++) {
        if (a == ACT_NOTE) {
            continue;
        }
        if (ACT(a, "s:s", "note", "called the resident") != 0) {
            fail_msg("note refused on %s: %s", action_names[a], err.message);
        }
        assert_true(gl_str_eq(ra.note, "called the resident"));
    }
}

static void
test_empty_note_passes_on_other_actions(void **state)
{
    assert_int_equal(ACT(ACT_ACCEPT, "s:s", "note", ""), 0);
    assert_int_equal(ra.note.n, 0);
}

/* ---- until ------------------------------------------------------------------------ */

static void
test_until_in_the_past_or_now_is_refused(void **state)
{
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:I", "until", NOW_MS - 1), "until",
                   NULL);
    assert_message("until must be a time in the future, at most a year ahead, in ms since the epoch");
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:I", "until", NOW_MS), "until",
                   "in the future");
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:i", "until", 0), "until",
                   "in the future");
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:i", "until", -1), "until",
                   "in the future");
}

static void
test_until_just_ahead_passes(void **state)
{
    assert_int_equal(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:I", "until", NOW_MS + 1), 0);
    assert_true(ra.until == NOW_MS + 1);
    assert_int_equal(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:I", "until",
                            NOW_MS + REQUEST_MAX_EXTENSION_MS), 0);
    assert_true(ra.until == NOW_MS + REQUEST_MAX_EXTENSION_MS);
    /* A year and a day ahead is too far: an extension is not a way to park a case. */
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:I", "until",
                          NOW_MS + REQUEST_MAX_EXTENSION_MS + 1), "until", "a year");
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:I", "until", INT64_MAX), "until",
                   "a year");
}

static void
test_until_of_another_type_is_refused(void **state)
{
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:u", "until", UINT64_MAX), "until",
                   "in the future");
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:d", "until",
                          (double)(NOW_MS + 86400000)),
                   "until", "in the future");
    assert_invalid(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:s", "until", "tomorrow"), "until",
                   "in the future");
}

/* ---- into ------------------------------------------------------------------------- */

static void
test_merge_into_itself_is_refused(void **state)
{
    assert_invalid(act_ex(ACT_MERGE, DROP(F_INTO), -1, "s:i", "into", CASE_ID), "into", NULL);
    assert_message("into must be another case");
}

static void
test_into_must_be_a_positive_integer(void **state)
{
    assert_invalid(act_ex(ACT_MERGE, DROP(F_INTO), -1, "s:i", "into", 0), "into", NULL);
    assert_message("into must be a positive integer");
    assert_invalid(act_ex(ACT_MERGE, DROP(F_INTO), -1, "s:i", "into", -3), "into",
                   "positive integer");
    assert_invalid(act_ex(ACT_MERGE, DROP(F_INTO), -1, "s:s", "into", "3"), "into",
                   "positive integer");
}

static void
test_into_another_case_passes(void **state)
{
    assert_int_equal(act_ex(ACT_MERGE, DROP(F_INTO), -1, "s:i", "into", CASE_ID + 1), 0);
    assert_true(ra.into == CASE_ID + 1);
    assert_int_equal(act_ex(ACT_MERGE, DROP(F_INTO), -1, "s:u", "into", UINT64_MAX), 0);
    assert_true(ra.into == UINT64_MAX);
}

/* ---- satisfaction ----------------------------------------------------------------- */

static void
test_every_satisfaction_is_accepted(void **state)
{
    static const struct {
        const char       *name;
        case_satisfaction v;
    } s[] = {
        { "satisfied", SATISFACTION_SATISFIED },
        { "basically_satisfied", SATISFACTION_BASICALLY_SATISFIED },
        { "unsatisfied", SATISFACTION_UNSATISFIED },
    };

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(act_ex(ACT_CALLBACK, DROP(F_SATISFACTION), -1, "s:s", "satisfaction",
                                s[i].name),
                         0);
        assert_int_equal(ra.satisfaction, s[i].v);
    }
}

static void
test_unknown_satisfaction_lists_the_three(void **state)
{
    static const char *const bad[] = { "none", "", "Satisfied", "very_satisfied", "null" };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_invalid(act_ex(ACT_CALLBACK, DROP(F_SATISFACTION), -1, "s:s", "satisfaction",
                              bad[i]),
                       "satisfaction", NULL);
        assert_message("satisfaction must be one of satisfied, basically_satisfied, "
                       "unsatisfied");
    }
    assert_invalid(act_ex(ACT_CALLBACK, DROP(F_SATISFACTION), -1, "s:i", "satisfaction", 1),
                   "satisfaction", "must be one of");
    assert_invalid(act_ex(ACT_CALLBACK, DROP(F_SATISFACTION), -1, "s:b", "satisfaction", 1),
                   "satisfaction", "must be one of");
}

/* ---- lengths and encodings -------------------------------------------------------- */

static void
test_note_of_2000_bytes_passes_and_2001_does_not(void **state)
{
    assert_int_equal(ACT(ACT_URGE, "s:s", "note", repeat('n', REQUEST_MAX_NOTE)), 0);
    assert_int_equal(ra.note.n, 2000);
    assert_invalid(ACT(ACT_URGE, "s:s", "note", repeat('n', REQUEST_MAX_NOTE + 1)), "note",
                   NULL);
    assert_message("note is 2001 bytes; at most 2000");
    assert_invalid(act_ex(ACT_NOTE, DROP_NOTE, -1, "s:s", "note",
                          repeat('n', REQUEST_MAX_NOTE + 1)),
                   "note", "at most 2000");
}

static void
test_note_limit_is_in_bytes(void **state)
{
    /* 667 CJK characters are 2001 bytes */
    char buf[3 * 667 + 1];

    for (int i = 0; i < 667; i++) {
        memcpy(buf + 3 * i, "\xe5\x8a\x9e", 3);   /* 办 */
    }
    buf[3 * 667] = '\0';
    assert_invalid(ACT(ACT_URGE, "s:s", "note", buf), "note", "is 2001 bytes");
    buf[3 * 666] = '\0';
    assert_int_equal(ACT(ACT_URGE, "s:s", "note", buf), 0);
    assert_int_equal(ra.note.n, 1998);
}

static void
test_note_that_is_not_a_string_is_invalid(void **state)
{
    assert_invalid(ACT(ACT_URGE, "s:i", "note", 5), "note", NULL);
    assert_message("note must be a string of at most 2000 bytes");
    assert_invalid(ACT(ACT_URGE, "s:[s]", "note", "x"), "note", "must be a string");
}

static void
test_strings_with_invalid_utf8_are_invalid(void **state)
{
    assert_invalid(ACT(ACT_URGE, "s:S", "note", "ab\xff", (size_t)3), "note", "UTF-8");
    assert_invalid(ACT(ACT_URGE, "s:S", "note", "a\0b", (size_t)3), "note", "UTF-8");
    assert_invalid(act_ex(ACT_RESOLVE, DROP(F_REPLY), -1, "s:S", "reply", "\xed\xa0\x80",
                          (size_t)3),
                   "reply", "UTF-8");
    assert_invalid(act_ex(ACT_RETURN, DROP(F_REASON), -1, "s:S", "reason", "\xc3", (size_t)1),
                   "reason", "UTF-8");
    assert_invalid(act_ex(ACT_REASSIGN, DROP(F_UNIT), -1, "s:S", "unit", "U\xc0\x80",
                          (size_t)3),
                   "unit", "UTF-8");
}

static void
test_reply_bounds(void **state)
{
    assert_int_equal(act_ex(ACT_RESOLVE, DROP(F_REPLY), -1, "s:s", "reply",
                            repeat('r', REQUEST_MAX_REPLY)),
                     0);
    assert_int_equal(ra.reply.n, 4000);
    assert_invalid(act_ex(ACT_RESOLVE, DROP(F_REPLY), -1, "s:s", "reply",
                          repeat('r', REQUEST_MAX_REPLY + 1)),
                   "reply", NULL);
    assert_message("reply is 4001 bytes; at most 4000");
    assert_invalid(act_ex(ACT_RESOLVE, DROP(F_REPLY), -1, "s:s", "reply", ""), "reply", NULL);
    assert_message("reply must not be empty");
    assert_invalid(act_ex(ACT_RESOLVE, DROP(F_REPLY), -1, "s:i", "reply", 1), "reply",
                   "must be a string of 1 to 4000 bytes");
}

static void
test_reason_bounds(void **state)
{
    for (int a = ACT_RETURN; a <= ACT_EXTEND; a++) {
        assert_int_equal(act_ex(a, DROP(F_REASON), -1, "s:s", "reason",
                                repeat('w', REQUEST_MAX_NOTE)),
                         0);
        assert_int_equal(ra.reason.n, 2000);
        assert_invalid(act_ex(a, DROP(F_REASON), -1, "s:s", "reason",
                              repeat('w', REQUEST_MAX_NOTE + 1)),
                       "reason", NULL);
        assert_message("reason is 2001 bytes; at most 2000");
        assert_invalid(act_ex(a, DROP(F_REASON), -1, "s:s", "reason", ""), "reason",
                       "reason must not be empty");
    }
}

static void
test_unit_bounds(void **state)
{
    assert_int_equal(act_ex(ACT_REASSIGN, DROP(F_UNIT), -1, "s:s", "unit",
                            repeat('U', REQUEST_MAX_CODE)),
                     0);
    assert_int_equal(ra.unit.n, 64);
    assert_invalid(act_ex(ACT_REASSIGN, DROP(F_UNIT), -1, "s:s", "unit",
                          repeat('U', REQUEST_MAX_CODE + 1)),
                   "unit", NULL);
    assert_message("unit is 65 bytes; at most 64");
    assert_invalid(act_ex(ACT_REASSIGN, DROP(F_UNIT), -1, "s:s", "unit", ""), "unit",
                   "unit must not be empty");
    assert_invalid(act_ex(ACT_REASSIGN, DROP(F_UNIT), -1, "s:i", "unit", 12), "unit",
                   "must be a string");
}

/* ---- the body --------------------------------------------------------------------- */

static void
test_unknown_field_is_named(void **state)
{
    assert_invalid(ACT(ACT_ACCEPT, "s:i", "priority", 1), "priority", NULL);
    assert_message("priority unknown field");
    /* fields of the case or of other services are not fields of case.act */
    assert_invalid(ACT(ACT_EXTEND, "s:i", "extension_until", 1), "extension_until",
                   "unknown field");
    assert_invalid(ACT(ACT_ACCEPT, "s:s", "request_id", "r-1"), "request_id", "unknown field");
    assert_invalid(ACT(ACT_ACCEPT, "s:s", "state", "accepted"), "state", "unknown field");
    assert_invalid(ACT(ACT_ACCEPT, "s:s", "Note", "x"), "Note", "unknown field");
}

static void
test_unknown_field_with_invalid_utf8_is_named_safely(void **state)
{
    assert_invalid(ACT(ACT_ACCEPT, "S:i", "k\xff", (size_t)2, 1), "k?", "unknown field");
}

static void
test_unknown_field_wins_over_a_bad_action(void **state)
{
    assert_invalid(parse_fmt("{s:i, s:s, s:i}", "id", 7, "action", "bogus", "zzz", 1), "zzz",
                   "unknown field");
}

static void
test_duplicate_field_is_invalid(void **state)
{
    assert_invalid(parse_fmt("{s:i, s:s, s:s}", "id", 7, "action", "accept", "action",
                             "urge"),
                   "action", NULL);
    assert_message("action appears more than once");
    assert_invalid(ACT(ACT_URGE, "s:s, s:s", "note", "a", "note", "b"), "note",
                   "appears more than once");
}

static void
test_rid_is_allowed_with_any_action(void **state)
{
    assert_int_equal(ACT(ACT_WITHDRAW, "s:i", "rid", 99), 0);
    assert_int_equal(ra.action, ACT_WITHDRAW);
    assert_int_equal(ACT(ACT_NOTE, "s:s", "rid", "abc"), 0);
    assert_int_equal(ACT(ACT_NOTE, "s:[i]", "rid", 1), 0);
}

static void
test_body_that_is_not_a_map_is_bad_request(void **state)
{
    assert_int_equal(parse_fmt("[s, s]", "id", "action"), GL_EBAD_REQUEST);
    assert_int_equal(err.code, GL_EBAD_REQUEST);
    assert_string_equal(err.message, "body must be a MessagePack map");
    assert_int_equal(parse_fmt("n"), GL_EBAD_REQUEST);
    assert_int_equal(request_parse_act(NULL, NOW_MS, &ra, &err), GL_EBAD_REQUEST);
}

static void
test_map_with_a_key_that_is_not_a_string_is_bad_request(void **state)
{
    assert_int_equal(parse_fmt("{s:i, s:s, i:i}", "id", 7, "action", "accept", 1, 2),
                     GL_EBAD_REQUEST);
    assert_int_equal(err.code, GL_EBAD_REQUEST);
}

static void
test_empty_map_asks_for_the_id(void **state)
{
    assert_invalid(parse_fmt("{}"), "id", "id is required");
}

/* The message starts with the field's name, once: "reply is not used ...". */
static void
assert_named_first(int rc, const char *field)
{
    size_t n = strlen(field);

    assert_int_equal(rc, GL_EINVALID);
    assert_string_equal(err.field, field);
    if (strncmp(err.message, field, n) != 0 || err.message[n] != ' ') {
        fail_msg("message for %s does not start with its name: \"%s\"", field, err.message);
    }
    if (strncmp(err.message + n + 1, field, n) == 0) {
        fail_msg("message names %s twice: \"%s\"", field, err.message);
    }
}

static void
test_every_refusal_names_its_field_first(void **state)
{
    assert_named_first(parse_fmt("{s:s, s:s}", "id", "x", "action", "accept"), "id");
    assert_named_first(parse_fmt("{s:i, s:s}", "id", 7, "action", "x"), "action");
    assert_named_first(ACT(ACT_ACCEPT, "s:i", "version", -2), "version");
    assert_named_first(ACT(ACT_ACCEPT, "s:s", "reply", "x"), "reply");
    assert_named_first(act_ex(ACT_RETURN, DROP(F_REASON), -1, ""), "reason");
    assert_named_first(act_ex(ACT_EXTEND, DROP(F_UNTIL), -1, "s:i", "until", 5), "until");
    assert_named_first(act_ex(ACT_REASSIGN, DROP(F_UNIT), -1, "s:s", "unit", ""), "unit");
    assert_named_first(act_ex(ACT_MERGE, DROP(F_INTO), -1, "s:i", "into", CASE_ID), "into");
    assert_named_first(act_ex(ACT_CALLBACK, DROP(F_SATISFACTION), -1, "s:s", "satisfaction",
                              "meh"),
                       "satisfaction");
    assert_named_first(ACT(ACT_URGE, "s:i", "note", 1), "note");
    assert_named_first(ACT(ACT_URGE, "s:i", "zzz", 1), "zzz");
}

static void
test_parse_without_err_does_not_crash(void **state)
{
    msgpack_packer pk;

    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "id");
    msgpack_pack_int(&pk, 0);
    assert_int_equal(request_parse_act(unpack_sb(), NOW_MS, &ra, NULL), GL_EINVALID);
}

static void
test_refusal_leaves_no_stale_fields(void **state)
{
    /* A parse that fails after a successful one does not report the earlier fields. */
    assert_int_equal(ACT(ACT_REASSIGN, ""), 0);
    assert_int_equal(ra.unit.n, 11);
    assert_invalid(ACT(ACT_ACCEPT, "s:s", "unit", "x"), "unit", NULL);
    assert_int_equal(ACT(ACT_ACCEPT, ""), 0);
    assert_int_equal(ra.unit.n, 0);
    assert_int_equal(ra.into, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_every_action_name_is_accepted),
        T(test_action_fields_are_filled),
        T(test_strings_borrow_from_the_body_buffer),
        T(test_unknown_action_lists_every_action),
        T(test_action_names_are_exact),
        T(test_action_that_is_not_a_string_is_invalid),
        T(test_id_is_required),
        T(test_id_must_be_a_positive_integer),
        T(test_largest_id_passes),
        T(test_action_is_required),
        T(test_id_is_checked_before_action),
        T(test_version_is_kept),
        T(test_nil_version_is_absent),
        T(test_version_must_be_positive),
        T(test_each_required_field_is_required),
        T(test_extend_without_until_and_reason_names_one),
        T(test_nil_required_field_is_missing),
        T(test_note_is_required_by_note),
        T(test_every_field_is_refused_on_actions_that_do_not_use_it),
        T(test_unused_field_is_refused_whatever_its_value),
        T(test_nil_unused_field_is_absent),
        T(test_note_goes_with_every_action),
        T(test_empty_note_passes_on_other_actions),
        T(test_until_in_the_past_or_now_is_refused),
        T(test_until_just_ahead_passes),
        T(test_until_of_another_type_is_refused),
        T(test_merge_into_itself_is_refused),
        T(test_into_must_be_a_positive_integer),
        T(test_into_another_case_passes),
        T(test_every_satisfaction_is_accepted),
        T(test_unknown_satisfaction_lists_the_three),
        T(test_note_of_2000_bytes_passes_and_2001_does_not),
        T(test_note_limit_is_in_bytes),
        T(test_note_that_is_not_a_string_is_invalid),
        T(test_strings_with_invalid_utf8_are_invalid),
        T(test_reply_bounds),
        T(test_reason_bounds),
        T(test_unit_bounds),
        T(test_unknown_field_is_named),
        T(test_unknown_field_with_invalid_utf8_is_named_safely),
        T(test_unknown_field_wins_over_a_bad_action),
        T(test_duplicate_field_is_invalid),
        T(test_rid_is_allowed_with_any_action),
        T(test_body_that_is_not_a_map_is_bad_request),
        T(test_map_with_a_key_that_is_not_a_string_is_bad_request),
        T(test_empty_map_asks_for_the_id),
        T(test_every_refusal_names_its_field_first),
        T(test_parse_without_err_does_not_crash),
        T(test_refusal_leaves_no_stale_fields),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
