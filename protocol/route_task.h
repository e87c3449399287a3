/*
 * route_task: the work the daemon gives routing workers (service "gridline.route"),
 * and the decisions they send back, over the MDP/0.1 worker protocol.
 *
 * Task (the REQUEST body), a map:
 *   "now":   integer ms, the daemon's clock when it built the task
 *   "items": [ { "case": CASE (the wire map of protocol/README.md, with "returned_by"),
 *                "candidates": [ CANDIDATE, ... ] }, ... ]
 * CANDIDATE: an older open case of the same category that may be the same problem:
 *   { "id", "category", "grid" (or nil), "lat", "lon" (or nil), "created_at",
 *     "duplicate_of" (or nil) }
 *   The daemon sends the open cases of the same category (a duplicate among them with
 *   its duplicate_of), created within the city's duplicate window, oldest first: the oldest
 *   ROUTE_GRID_CANDIDATES in the same grid cell, then (when the case has coordinates)
 *   those with coordinates in the same district, ROUTE_MAX_CANDIDATES in all.
 *
 * Decisions (the REPLY body), a map:
 *   "decisions": [ { "id", "version" (the case version decided on), "unit" (a unit
 *                    code), "duplicate_of" (a case id, or nil), "reason" (text for the
 *                    event's note, e.g. "rule: street_lights in D01") }, ... ]
 * One decision per item. A decision for a case that has moved on (another version) is
 * discarded by the daemon; an item without a decision is given out again later.
 */
#ifndef ROUTE_TASK_H
#define ROUTE_TASK_H

#include "case_record.h"
#include "gl_error.h"
#include "mp_util.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#define ROUTE_SERVICE        "gridline.route"
#define ROUTE_MAX_ITEMS      1024   /* cases in one task */
#define ROUTE_MAX_CANDIDATES 32     /* candidates per case */
#define ROUTE_GRID_CANDIDATES 4     /* of which from the same grid cell */

typedef struct {
    uint64_t id;
    gl_str   category;
    gl_str   grid;
    bool     has_coords;
    double   lat, lon;
    int64_t  created_at;
    uint64_t duplicate_of;     /* 0 = nil */
} route_candidate;

typedef struct {
    case_record     c;
    route_candidate candidates[ROUTE_MAX_CANDIDATES];
    uint32_t        n_candidates;
} route_item;

typedef struct {
    uint64_t id;
    uint64_t version;
    gl_str   unit;
    uint64_t duplicate_of;     /* 0 = nil */
    gl_str   reason;
} route_decision;

/* Daemon side. Packs the task's header: {"now": now, "items": [ (n items follow) */
int route_task_pack_begin(msgpack_packer *pk, int64_t now, uint32_t n_items);
/* Packs one item: the case's raw wire map (copied as it is) and its candidates. */
int route_task_pack_item(msgpack_packer *pk, gl_str raw_case, const route_candidate *cands,
                         uint32_t n_cands);

/* Worker side. Reads a task: *items is allocated from zone (n_items of them); strings
 * borrow from the body. Returns 0, or GL_EBAD_REQUEST with err saying what is wrong. */
int route_task_unpack(const msgpack_object *body, msgpack_zone *zone, int64_t *now,
                      route_item **items, uint32_t *n_items, gl_error *err);

/* Worker side. Packs {"decisions": [...]}. Returns 0 or -1. */
int route_decisions_pack(msgpack_packer *pk, const route_decision *d, uint32_t n);

/* Daemon side. Reads the reply: at most cap decisions into out, *n set to how many.
 * Decisions that are not well-formed are skipped (their cases are given out again).
 * Returns 0, or GL_EBAD_REQUEST if the body is not a decisions map at all. */
int route_decisions_unpack(const msgpack_object *body, route_decision *out, uint32_t cap,
                           uint32_t *n, gl_error *err);

#endif
