/*
 * mp_print: shows MessagePack replies to people and to scripts.
 *
 * mp_print_json writes any msgpack_object as JSON, so `gridline --json` can feed jq.
 * The other functions lay out the replies of the core services as text for a terminal:
 * a case list as aligned columns, one case as "key: value" lines, a history as a
 * table, the catalogue as sections.
 *
 * Text from the daemon is shown safely: control characters (which could move the
 * cursor or retitle the terminal) become spaces, bytes that are not UTF-8 become
 * U+FFFD, and columns are measured in terminal cells (CJK characters take two) so that
 * tables stay aligned; cells cut to fit end in "…" and are cut between characters.
 *
 * Every function returns 0, or -1 when writing to f failed or memory ran out.
 */
#ifndef MP_PRINT_H
#define MP_PRINT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Flags for mp_print_json. */
#define MP_PRINT_PRETTY 0x1u   /* one member per line, two-space indentation */

/* Writes o as JSON, without a trailing newline. Mapping: nil -> null; integers as
 * they are (the full 64-bit range); floats in the shortest form that reads back the
 * same, NaN and infinities -> null; str -> a JSON string (control characters, '"' and
 * '\' escaped, U+2028/U+2029 escaped, invalid UTF-8 bytes -> U+FFFD); bin -> a base64
 * string; ext -> {"ext": type, "base64": data}; map keys that are not strings are
 * written as strings holding their compact JSON (1 -> "1", true -> "true"). */
int mp_print_json(FILE *f, const msgpack_object *o, unsigned flags);

/* Cases (each a case map as in protocol.md, "The case") as one table with a header:
 * ID, CODE, STATE, CATEGORY, URGENCY, DISTRICT, UNIT, CREATED (UTC, YYYY-MM-DD HH:MM)
 * and TITLE (the description's start when the title is empty), the title cut so each
 * line fits in width columns (width <= 0: never cut). Entries that are not maps are
 * skipped. Nothing is written when n is 0. */
int mp_print_case_table(FILE *f, const msgpack_object *const *cases, size_t n, int width);

/* One case as "key: value" lines, keys aligned, in the map's order. Nested maps are
 * flattened ("location.district: D1"), lists of scalars joined with ", ", integer
 * times (keys ending in "_at" or "_by") shown as "YYYY-MM-DD HH:MM:SS UTC", nil as
 * "-". Multi-line text keeps its lines, indented under the value column. */
int mp_print_case(FILE *f, const msgpack_object *kase);

/* A case's events (protocol.md, "Events") as a table: SEQ, AT (UTC), TYPE, STATE,
 * UNIT, ACTOR, NOTE, the note cut to fit width (<= 0: never cut). */
int mp_print_history(FILE *f, const msgpack_object *events, int width);

/* A catalog.get reply (the map holding "categories", "units", "places", "sla") as four
 * sections: the categories with their SLA class per urgency, the units, the place tree
 * indented by level, and the SLA classes with their times as durations ("4h", "3d"). */
int mp_print_catalog(FILE *f, const msgpack_object *catalog, int width);

/* Writes ms since the epoch as UTC "YYYY-MM-DD HH:MM" (with_seconds: ":SS" too) into
 * out. Returns the length, or 0 when cap is too small or the time is out of range. */
size_t mp_print_time(char *out, size_t cap, int64_t ms, bool with_seconds);

/* The number of terminal columns p[0..n) takes once shown by these functions. */
size_t mp_print_width(const char *p, size_t n);

#endif
