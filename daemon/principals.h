/*
 * principals: who may talk to the daemon. The keys file (`gridlined --keys FILE`) maps
 * each client's CURVE public key to a principal: a name (the actor of its changes and
 * the scope of its request_ids), a role and a scope, and its limits.
 *
 *     clients = (
 *       { name = "hotline-desk-1"; key = "<40 Z85 characters>"; role = "hotline"; },
 *       { name = "d1-sanitation";  key_file = "keys/d1-sanitation.pub";
 *         role = "unit"; scope = "U-D1-SAN"; },
 *       { name = "d1-supervision"; key = "..."; role = "supervisor"; scope = "D1";
 *         rate = 200; burst = 400; max_in_flight = 64; }
 *     );
 *
 * Roles (access.h says what each may do): hotline, window, grid, unit, supervisor,
 * observer, admin. Scope: for `unit`, the unit's code (required); for the others but
 * admin, optionally the code of a place (district, street, community or grid cell), which
 * limits them to cases there; none means the whole city. `reporter` (true/false) overrides
 * whether the role sees reporters' names and phone numbers. `rate` (requests a second;
 * 0 = no limit, the default) and `burst` (default 2 x rate) bound the principal's
 * requests; `max_in_flight` bounds its writes waiting for a commit (default 1024).
 * key_file paths are relative to the keys file's folder.
 *
 * Without a keys file (development mode) there is one principal, "dev", an admin.
 */
#ifndef PRINCIPALS_H
#define PRINCIPALS_H

#include "city.h"
#include "keyfile.h"
#include "mp_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ROLE_HOTLINE, ROLE_WINDOW, ROLE_GRID, ROLE_UNIT, ROLE_SUPERVISOR, ROLE_OBSERVER,
    ROLE_ADMIN,
    ROLE_COUNT
} principal_role;

const char *principal_role_name(principal_role r);
int principal_role_parse(gl_str s);   /* the role, or -1 */

#define PRINCIPAL_MAX_NAME 64

typedef struct {
    char           name[PRINCIPAL_MAX_NAME + 1];
    char           key[KEYFILE_Z85_LEN + 1];   /* "" for the development principal */
    principal_role role;
    int            unit;           /* the city unit it is (role unit), or -1 */
    int            place;          /* the city place it is limited to, or -1 = the city */
    bool           sees_reporter;  /* reporters' names and phones shown, not masked */
    double         rate, burst;    /* requests a second and bucket size; rate 0 = none */
    uint32_t       max_in_flight;
    /* Kept by the server, on the loop thread. */
    double         tokens;
    uint64_t       refilled_ms;
    uint32_t       in_flight;
} principal;

typedef struct principals principals;

/* Reads the keys file, checking every scope against the city. Returns NULL with a message
 * naming the file and line (or the client entry) in err. */
principals *principals_load(const char *path, const city *c, char *err, size_t errlen);

/* The development-mode table: one admin named "dev". NULL when out of memory. */
principals *principals_dev(void);

/* Frees *p and sets it to NULL; safe twice. */
void principals_destroy(principals **p);

/* Whether the table came from a keys file (false: development mode). */
bool principals_secure(const principals *p);
size_t principals_count(const principals *p);

/* Look-ups; NULL when there is no such principal. by_key takes the 40-character Z85
 * form of a public key. */
principal *principals_by_key(principals *p, const char *z85);
principal *principals_by_name(principals *p, gl_str name);

/* The development principal, or the only one; NULL in a keyed table. */
principal *principals_dev_principal(principals *p);

#endif
