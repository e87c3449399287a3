/* stats: counts and rates over a created range, grouped (see stats.h). */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

/* --- counting --- */

void stats_count_case(stats_counts *k, const case_record *c)
{
    k->received++;
    if (c->dispatched_at != 0) {
        k->dispatched++;
    }
    if (c->accepted_at != 0 && c->accept_by != 0 && c->accepted_at <= c->accept_by) {
        k->accepted_in_time++;
    }
    if (c->resolved_at != 0) {
        k->resolved++;
        if (c->resolve_by != 0 && c->resolved_at <= c->resolve_by) {
            k->resolved_on_time++;
        }
    }
    if (c->state == CASE_RESOLVED || c->state == CASE_CLOSED) {
        k->resolved_or_closed++;
    }
    if (c->state == CASE_CLOSED) {
        k->closed++;
    }
    switch (c->satisfaction) {
    case SATISFACTION_SATISFIED:           k->satisfied++; k->callbacks++; break;
    case SATISFACTION_BASICALLY_SATISFIED: k->basically_satisfied++; k->callbacks++; break;
    case SATISFACTION_UNSATISFIED:         k->unsatisfied++; k->callbacks++; break;
    default:                               break;
    }
}

/* The four rates of k, in the order of rate_names; has[i] false when the denominator
 * is 0 (packed as nil). */
enum { RATE_RESPONSE, RATE_ON_TIME, RATE_RESOLUTION, RATE_SATISFACTION, RATE_COUNT };
static const char *const rate_names[RATE_COUNT] = {
    "response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate"
};

static void rates_of(const stats_counts *k, double rate[RATE_COUNT], bool has[RATE_COUNT])
{
    const uint64_t num[RATE_COUNT] = {
        k->accepted_in_time, k->resolved_on_time, k->resolved_or_closed,
        k->satisfied + k->basically_satisfied
    };
    const uint64_t den[RATE_COUNT] = {
        k->dispatched, k->resolved, k->received, k->callbacks
    };
    for (int i = 0; i < RATE_COUNT; i++) {
        has[i] = den[i] != 0;
        rate[i] = has[i] ? (double)num[i] / (double)den[i] : 0.0;
    }
}

/* --- the groups: an open-addressing hash map from key to counts --- */

typedef struct {
    char        *key;          /* NULL: an empty slot */
    uint32_t     key_n;
    uint64_t     hash;
    stats_counts k;
} group;

typedef struct {
    group *slots;
    size_t cap;                /* a power of two, or 0 before the first key */
    size_t n;
} group_map;

static int map_grow(group_map *m)
{
    size_t cap = m->cap != 0 ? m->cap * 2 : 64;
    group *slots = calloc(cap, sizeof *slots);
    if (slots == NULL) {
        return GL_EINTERNAL;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == NULL) {
            continue;
        }
        size_t j = (size_t)m->slots[i].hash & (cap - 1);
        while (slots[j].key != NULL) {
            j = (j + 1) & (cap - 1);
        }
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* The group of key, added (with its key copied) if new; NULL when memory runs out or
 * the map already holds STATS_MAX_GROUPS keys (*full set). */
static group *map_get(group_map *m, gl_str key, bool *full)
{
    uint64_t h = mp_fnv1a64(MP_FNV1A64_INIT, key.p, key.n);
    *full = false;
    if (m->cap == 0 || (m->n + 1) * 4 > m->cap * 3) {
        if (map_grow(m) != 0) {
            return NULL;
        }
    }
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i].key != NULL) {
        group *g = &m->slots[i];
        if (g->hash == h && g->key_n == key.n && memcmp(g->key, key.p, key.n) == 0) {
            return g;
        }
        i = (i + 1) & (m->cap - 1);
    }
    if (m->n >= STATS_MAX_GROUPS) {
        *full = true;
        return NULL;
    }
    group *g = &m->slots[i];
    g->key = malloc(key.n + 1);
    if (g->key == NULL) {
        return NULL;
    }
    memcpy(g->key, key.p, key.n);
    g->key[key.n] = '\0';
    g->key_n = key.n;
    g->hash = h;
    memset(&g->k, 0, sizeof g->k);
    m->n++;
    return g;
}

static void map_free(group_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
    }
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int group_cmp(const void *a, const void *b)
{
    const group *x = *(const group *const *)a, *y = *(const group *const *)b;
    uint32_t n = x->key_n < y->key_n ? x->key_n : y->key_n;
    int d = memcmp(x->key, y->key, n);
    if (d != 0) {
        return d;
    }
    return x->key_n < y->key_n ? -1 : x->key_n > y->key_n ? 1 : 0;
}

/* --- the scan --- */

typedef struct {
    stats_group by;
    group_map   map;
    uint64_t    scanned, ungrouped;
    uint32_t    max_cases;
    bool        too_many_cases, too_many_groups;
} scan;

static gl_str key_of(stats_group by, const case_record *c)
{
    switch (by) {
    case STATS_BY_UNIT:      return c->unit;
    case STATS_BY_DISTRICT:  return c->location.district;
    case STATS_BY_CATEGORY:  return c->category;
    case STATS_BY_STREET:    return c->location.street;
    case STATS_BY_COMMUNITY: return c->location.community;
    default:                 return GL_STR_NULL;
    }
}

static int scan_case(void *arg, gl_str raw, const case_record *c)
{
    scan *sc = arg;
    bool full = false;
    (void)raw;
    if (++sc->scanned > sc->max_cases) {
        sc->too_many_cases = true;
        return GL_EINVALID;   /* stops the list */
    }
    gl_str key = key_of(sc->by, c);
    if (key.n == 0) {
        sc->ungrouped++;
        return STORE_LIST_SKIP;
    }
    group *g = map_get(&sc->map, key, &full);
    if (g == NULL) {
        sc->too_many_groups = full;
        return full ? GL_EINVALID : GL_EINTERNAL;
    }
    stats_count_case(&g->k, c);
    return STORE_LIST_SKIP;
}

/* --- stars --- */

/* A threshold of 0 asks nothing; any other needs a rate (a denominator) that reaches it. */
static bool meets(bool has, double rate, double threshold)
{
    return threshold <= 0.0 || (has && rate >= threshold);
}

int stats_stars(const city *c, const stats_counts *k)
{
    double rate[RATE_COUNT];
    bool has[RATE_COUNT];

    rates_of(k, rate, has);
    /* Each level asks at least as much as the one below (city.h): the first reached,
     * from the top, is the rating. */
    for (int n = CITY_STARS_MAX; n >= CITY_STARS_MIN; n--) {
        const city_stars *t = &c->stars[n - CITY_STARS_MIN];
        if (k->received >= t->min_cases
            && meets(has[RATE_RESPONSE], rate[RATE_RESPONSE], t->response_rate)
            && meets(has[RATE_ON_TIME], rate[RATE_ON_TIME], t->on_time_rate)
            && meets(has[RATE_SATISFACTION], rate[RATE_SATISFACTION], t->satisfaction_rate)) {
            return n;
        }
    }
    return 0;
}

/* --- the reply --- */

static const char *name_of(const city *c, stats_group by, gl_str key)
{
    int i;
    switch (by) {
    case STATS_BY_UNIT:
        i = city_unit_find(c, key);
        return i >= 0 ? c->units[i].name : NULL;
    case STATS_BY_CATEGORY:
        i = city_category_find(c, key);
        return i >= 0 ? c->categories[i].name : NULL;
    default:
        i = city_place_find(c, key);
        return i >= 0 ? c->places[i].name : NULL;
    }
}

static int pack_count(msgpack_packer *pk, const char *name, uint64_t v)
{
    return mp_pack_cstr(pk, name) | msgpack_pack_uint64(pk, v);
}

static int pack_row(msgpack_packer *pk, const city *c, stats_group by, const group *g)
{
    const stats_counts *k = &g->k;
    double rate[RATE_COUNT];
    bool has[RATE_COUNT];
    bool with_stars = by == STATS_BY_COMMUNITY;
    const char *name = name_of(c, by, gl_str_of(g->key, g->key_n));
    int bad;

    rates_of(k, rate, has);
    bad = msgpack_pack_map(pk, 2 + 11 + RATE_COUNT + (with_stars ? 1 : 0));
    bad |= mp_pack_cstr(pk, "key") | mp_pack_str(pk, gl_str_of(g->key, g->key_n));
    bad |= mp_pack_cstr(pk, "name");
    bad |= name != NULL ? mp_pack_cstr(pk, name) : msgpack_pack_nil(pk);
    bad |= pack_count(pk, "received", k->received);
    bad |= pack_count(pk, "dispatched", k->dispatched);
    bad |= pack_count(pk, "accepted_in_time", k->accepted_in_time);
    bad |= pack_count(pk, "resolved", k->resolved);
    bad |= pack_count(pk, "resolved_on_time", k->resolved_on_time);
    bad |= pack_count(pk, "resolved_or_closed", k->resolved_or_closed);
    bad |= pack_count(pk, "closed", k->closed);
    bad |= pack_count(pk, "callbacks", k->callbacks);
    bad |= pack_count(pk, "satisfied", k->satisfied);
    bad |= pack_count(pk, "basically_satisfied", k->basically_satisfied);
    bad |= pack_count(pk, "unsatisfied", k->unsatisfied);
    for (int i = 0; i < RATE_COUNT; i++) {
        bad |= mp_pack_cstr(pk, rate_names[i]);
        bad |= has[i] ? msgpack_pack_double(pk, rate[i]) : msgpack_pack_nil(pk);
    }
    if (with_stars) {
        int stars = stats_stars(c, k);
        bad |= mp_pack_cstr(pk, "stars");
        bad |= stars > 0 ? msgpack_pack_int(pk, stars) : msgpack_pack_nil(pk);
    }
    return bad != 0 ? GL_EINTERNAL : 0;
}

static int pack_reply(msgpack_packer *pk, const city *c, const request_stats *q, const scan *sc,
                      gl_error *err)
{
    group **rows = NULL;
    size_t n = 0;
    int bad;

    if (sc->map.n > 0) {
        rows = malloc(sc->map.n * sizeof *rows);
        if (rows == NULL) {
            return gl_error_set(err, GL_EINTERNAL, NULL, "out of memory");
        }
        for (size_t i = 0; i < sc->map.cap; i++) {
            if (sc->map.slots[i].key != NULL) {
                rows[n++] = &sc->map.slots[i];
            }
        }
        qsort(rows, n, sizeof *rows, group_cmp);
    }
    bad = mp_pack_cstr(pk, "rows") | msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n && bad == 0; i++) {
        bad |= pack_row(pk, c, q->group_by, rows[i]);
    }
    free(rows);
    bad |= mp_pack_cstr(pk, "group_by") | mp_pack_cstr(pk, stats_group_name(q->group_by));
    bad |= mp_pack_cstr(pk, "from");
    bad |= q->has_from ? msgpack_pack_int64(pk, q->from) : msgpack_pack_nil(pk);
    bad |= mp_pack_cstr(pk, "to");
    bad |= q->has_to ? msgpack_pack_int64(pk, q->to) : msgpack_pack_nil(pk);
    bad |= mp_pack_cstr(pk, "ungrouped") | msgpack_pack_uint64(pk, sc->ungrouped);
    if (bad != 0) {
        return gl_error_set(err, GL_EINTERNAL, NULL, "out of memory");
    }
    return 0;
}

int stats_query(store *s, const city *c, const request_stats *q, uint32_t max_cases,
                msgpack_packer *pk, gl_error *err)
{
    request_filter f;
    store_reader *r = NULL;
    scan sc;
    uint64_t next = 0;
    int rc;

    memset(&f, 0, sizeof f);
    f.state = -1;
    f.channel = -1;
    f.overdue = -1;
    f.supervised = -1;
    f.created_from = q->from;
    f.created_to = q->to;
    memset(&sc, 0, sizeof sc);
    sc.by = q->group_by;
    sc.max_cases = max_cases;

    /* A transaction of its own: the scan runs in the thread pool, off the loop. */
    if (store_read_begin_private(s, &r) != 0) {
        return gl_error_set(err, GL_EINTERNAL, NULL, "cannot read the store");
    }
    /* No limit and no scan budget: the scan_case count is the bound. */
    rc = store_list(r, &f, 0, UINT32_MAX, 0, UINT32_MAX, scan_case, &sc, &next);
    store_read_end(&r);
    if (sc.too_many_cases) {
        rc = gl_error_set(err, GL_EINVALID, "from", "the range holds more than %u cases, "
                          "more than one query may count: ask for a narrower range with "
                          "from and to", max_cases);
    } else if (sc.too_many_groups) {
        rc = gl_error_set(err, GL_EINVALID, "from", "the range holds more than %u distinct "
                          "%s values: ask for a narrower range with from and to",
                          STATS_MAX_GROUPS, stats_group_name(q->group_by));
    } else if (rc != 0 || next != 0) {
        rc = gl_error_set(err, GL_EINTERNAL, NULL, "cannot read the cases");
    } else {
        rc = pack_reply(pk, c, q, &sc, err);
    }
    map_free(&sc.map);
    return rc;
}
