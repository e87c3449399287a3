/*
 * city: the city a daemon serves, as data: the place tree (city -> district -> street
 * office -> community -> grid cell), the catalogue of categories, the handling units,
 * the SLA classes, the routing rules, what makes two cases duplicates, the business
 * calendar that working-time SLA classes count on, and the thresholds by which
 * communities are rated with stars.
 *
 * It is read from a libconfig file. With no file, the built-in default (a small city,
 * default_city.cfg compiled in) is used; a file replaces, section by section, the
 * parts of the default it names (a file with only `units = (...)` keeps the default's
 * places, categories, SLA classes and rules). Every error names the file and line.
 *
 * Shared by the daemon (validation, catalog.get) and by the workers (routing, SLA
 * policy), which read the same file.
 */
#ifndef CITY_H
#define CITY_H

#include "calendar.h"
#include "case_record.h"
#include "gl_error.h"
#include "mp_util.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PLACE_DISTRICT, PLACE_STREET, PLACE_COMMUNITY, PLACE_GRID } place_level;

typedef struct {
    char       *code;       /* unique across the whole tree */
    char       *name;
    place_level level;
    int         parent;     /* index into city.places; -1 for a district */
} city_place;

typedef struct {
    char   *code;            /* e.g. "emergency", "standard" */
    int64_t accept_ms;       /* sign for within this long after dispatch */
    int64_t resolve_ms;      /* resolve within this long after dispatch */
    bool    working_time;    /* count only working hours of the business calendar */
    double  warn_ratio;      /* warn when this share of the time is used (0.8) */
} city_sla;

typedef struct {
    char *code;              /* e.g. "street_light" */
    char *name;
    int   sla[URGENCY_COUNT]; /* index into city.sla, per urgency */
} city_category;

typedef enum {
    UNIT_DEPARTMENT,         /* a district department (civil affairs, housing, ...) */
    UNIT_STREET_OFFICE,      /* 街道办 */
    UNIT_COMMUNITY_CENTRE,   /* 社区服务中心 */
    UNIT_SUPERVISION         /* the city's supervision office (督办) */
} unit_kind;

const char *unit_kind_name(unit_kind k);   /* "department", "street_office", ... */

typedef struct {
    char     *code;
    char     *name;
    unit_kind kind;
    int       place;         /* index into city.places; -1 = city-wide */
    int      *categories;    /* indexes into city.categories; none = every category */
    size_t    n_categories;
} city_unit;

typedef struct {
    int category;            /* index into city.categories; -1 = any */
    int place;               /* index into city.places; -1 = anywhere */
    int unit;                /* index into city.units */
} city_rule;

/* What a community must reach over a period to be rated with a number of stars: every
 * rate at least its threshold (the rates of protocol.md, "Rates", each in [0, 1]) and at
 * least min_cases cases, so that a handful of cases cannot earn five stars. */
typedef struct {
    double   response_rate;      /* signed for before accept_by / dispatched */
    double   on_time_rate;       /* resolved before resolve_by / resolved */
    double   satisfaction_rate;  /* satisfied or basically satisfied / callbacks */
    uint32_t min_cases;          /* cases received in the period */
} city_stars;

/* The star ratings that have thresholds: three, four and five stars. A community that
 * reaches none of them is not rated. */
#define CITY_STARS_MIN 3
#define CITY_STARS_MAX 5

typedef struct city {
    char          *name;
    char          *code_prefix;      /* "GL": case codes are GL-YYYYMMDD-NNNNNN */
    int            utc_offset_min;   /* the city's clock: case codes' dates, the calendar */
    uint32_t       max_returns;      /* returns before the supervision unit decides */
    int64_t        dup_window_ms;    /* duplicates: the older case is at most this old */
    double         dup_distance_m;   /* duplicates: at most this far apart (coordinates) */
    city_place    *places;     size_t n_places;
    city_sla      *sla;        size_t n_sla;
    city_category *categories; size_t n_categories;
    city_unit     *units;      size_t n_units;
    city_rule     *rules;      size_t n_rules;
    /* The business calendar in the city's clock (utc_offset_min), for SLA classes with
     * working_time; its date arrays are the city's, freed by city_destroy. Without a
     * calendar section: Monday to Friday, 09:00-12:00 and 13:30-17:30, no holidays. */
    calendar       calendar;
    /* stars[n - CITY_STARS_MIN]: what n stars take. Each level asks at least as much as
     * the one below it (every rate and min_cases), so a rater may try five, then four,
     * then three, and stop at the first reached. */
    city_stars     stars[CITY_STARS_MAX - CITY_STARS_MIN + 1];
    char          *source;           /* "built-in" or the file's path */
    void          *index;            /* private: sorted code indexes for look-ups */
} city;

/* Reads the city: the built-in default, with path's sections replacing it when path is
 * not NULL. Returns NULL on failure with a message in err naming the file and line,
 * e.g. "city.cfg:12: unit \"D9-X\": place \"D9\" is not in places". */
city *city_new(const char *path, char *err, size_t errlen);

/* Frees c and sets *c to NULL; safe to call twice. */
void city_destroy(city **c);

/* Look-ups by code, in O(log n). Each returns the index, or -1 if there is none. */
int city_place_find(const city *c, gl_str code);
int city_category_find(const city *c, gl_str code);
int city_unit_find(const city *c, gl_str code);
int city_sla_find(const city *c, gl_str code);

/* Checks a case's location against the tree: the district exists and is a district;
 * the street, if given, is a street of that district; the community, if given, belongs
 * to the street (a community without a street is refused: "location.street" is
 * required with a community), the grid to the community. Returns 0 or GL_EINVALID with
 * err->field set ("location.street", ...). */
int city_location_check(const city *c, const case_location *loc, gl_error *err);

/* Packs four key/value pairs for catalog.get (the caller has opened the map):
 * "categories": [{code, name, sla: {emergency, urgent, normal}}],
 * "units":      [{code, name, kind, place (nil = city-wide), categories: [...]}],
 * "places":     [{code, name, streets: [{code, name, communities: [{code, name,
 *                 grids: [{code, name}]}]}]}],
 * "sla":        [{code, accept_within_ms, resolve_within_ms, clock: "wall"|"working",
 *                 warn_ratio}].
 * Returns 0, or -1 if the packer's writer failed. */
int city_pack_catalog(const city *c, msgpack_packer *pk);

#endif
