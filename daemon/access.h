/*
 * access: what each principal may do, checked on every request (protocol/README.md,
 * "Security" has the table for clients). The policy is the table in access.c: for each
 * role, the services and the case.act actions it may use; the scope (principals.h)
 * then limits which cases it sees:
 *   unit        the cases it handles now (the case's unit is the principal's unit);
 *   grid        the cases it registered itself (created_by), within its place if any;
 *   the others  the cases at their place (every case when they have none).
 * Each call returns 0 when allowed, or GL_EFORBIDDEN with a message that says what the
 * principal may do instead; a refusal changes nothing.
 */
#ifndef ACCESS_H
#define ACCESS_H

#include "city.h"
#include "gl_error.h"
#include "principals.h"
#include "request.h"

typedef enum {
    SVC_CREATE, SVC_GET, SVC_LIST, SVC_ACT, SVC_FEED, SVC_STATS, SVC_CATALOG,
    SVC_COUNT
} access_service;

/* The service by its wire name ("case.create", ...), or -1. */
int access_service_parse(gl_str name);

int access_service_allowed(const principal *p, access_service s, gl_error *err);
int access_action(const principal *p, case_action a, gl_error *err);

/* Whether p may see (and so act on, given the action) case c. */
int access_case(const principal *p, const city *town, const case_record *c, gl_error *err);

/* A create at loc: within the principal's place, if it has one. */
int access_create(const principal *p, const city *town, const case_location *loc,
                  gl_error *err);

/* Narrows a case.list filter to p's scope (the unit or the place is filled in), or
 * refuses (GL_EFORBIDDEN) a filter that asks for what lies outside it: another unit, or
 * a place at any level that neither contains the scope nor lies within it. */
int access_list(const principal *p, const city *town, request_filter *f, gl_error *err);

/* Narrows a feed.pull filter the same way: to the unit, or to the district of the
 * principal's place. A place below a district (street, community, grid cell) is not in
 * the events: access_feed_by_case says so, and each event's case is then checked with
 * access_case. */
int access_feed(const principal *p, const city *town, request_feed *f, gl_error *err);

/* Whether p's feed must be checked case by case (a place scope below a district). */
bool access_feed_by_case(const principal *p, const city *town);

/* Whether p may subscribe to the live tap: it carries every event of the city and a PUB
 * socket cannot cut it per subscriber, so only principals that may pull the whole feed
 * may connect. */
bool access_tap(const principal *p);

/* case_record_pack flags for what p may not see (reporter's name and phone). */
unsigned access_pack_flags(const principal *p);

#endif
