/* principals: the keys file, as a table of principals (see principals.h). */
#include "principals.h"

#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_IN_FLIGHT 1024
#define MAX_PRINCIPALS        100000

struct principals {
    principal  *all;
    size_t      n;
    principal **by_name;   /* sorted by name */
    principal **by_key;    /* sorted by key */
    bool        secure;
};

static const char *const role_names[ROLE_COUNT] = {
    "hotline", "window", "grid", "unit", "supervisor", "observer", "admin"
};

/* Who sees reporters' names and phones unless the keys file says otherwise: those who
 * talk to the resident (hotline, window, the handling unit, the gateway that reported
 * it) and admins; supervisors and observers follow cases, not people. */
static const bool role_sees_reporter[ROLE_COUNT] = {
    [ROLE_HOTLINE] = true, [ROLE_WINDOW] = true, [ROLE_GRID] = true, [ROLE_UNIT] = true,
    [ROLE_ADMIN] = true
};

const char *principal_role_name(principal_role r)
{
    return (unsigned)r < ROLE_COUNT ? role_names[r] : "?";
}

int principal_role_parse(gl_str s)
{
    for (int i = 0; i < ROLE_COUNT; i++) {
        if (gl_str_eq(s, role_names[i])) {
            return i;
        }
    }
    return -1;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(principal *const *)a)->name, (*(principal *const *)b)->name);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((*(principal *const *)a)->key, (*(principal *const *)b)->key);
}

static principals *table_new(size_t n)
{
    principals *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->all = calloc(n > 0 ? n : 1, sizeof *p->all);
    p->by_name = calloc(n > 0 ? n : 1, sizeof *p->by_name);
    p->by_key = calloc(n > 0 ? n : 1, sizeof *p->by_key);
    if (p->all == NULL || p->by_name == NULL || p->by_key == NULL) {
        principals_destroy(&p);
        return NULL;
    }
    return p;
}

principals *principals_dev(void)
{
    principals *p = table_new(1);
    if (p == NULL) {
        return NULL;
    }
    principal *d = &p->all[0];
    snprintf(d->name, sizeof d->name, "dev");
    d->role = ROLE_ADMIN;
    d->unit = -1;
    d->place = -1;
    d->sees_reporter = true;
    d->max_in_flight = UINT32_MAX;   /* the bench and the tests run as dev, unthrottled */
    p->n = 1;
    p->by_name[0] = p->by_key[0] = d;
    return p;
}

/* A string setting of an entry, or NULL. */
static const char *entry_str(config_setting_t *e, const char *name)
{
    const char *v = NULL;
    return config_setting_lookup_string(e, name, &v) == CONFIG_TRUE ? v : NULL;
}

/* The type each setting must have: a setting of another type is refused rather than
 * ignored, since an ignored `scope = 310101;` would widen a principal to the city. */
static const struct {
    const char *name;
    int         type;     /* CONFIG_TYPE_*; CONFIG_TYPE_FLOAT also takes an integer */
} entry_settings[] = {
    { "name", CONFIG_TYPE_STRING }, { "key", CONFIG_TYPE_STRING },
    { "key_file", CONFIG_TYPE_STRING }, { "role", CONFIG_TYPE_STRING },
    { "scope", CONFIG_TYPE_STRING }, { "reporter", CONFIG_TYPE_BOOL },
    { "rate", CONFIG_TYPE_FLOAT }, { "burst", CONFIG_TYPE_FLOAT },
    { "max_in_flight", CONFIG_TYPE_INT },
};

static const char *type_name(int type)
{
    return type == CONFIG_TYPE_STRING ? "a string in quotes"
           : type == CONFIG_TYPE_BOOL ? "true or false"
           : type == CONFIG_TYPE_INT ? "a whole number" : "a number";
}

/* Refuses unknown settings and settings of the wrong type. */
static int check_settings(config_setting_t *e, const char *path, int line, char *err,
                          size_t errlen)
{
    const char *who = NULL;
    if (config_setting_lookup_string(e, "name", &who) != CONFIG_TRUE) {
        who = "(no name)";
    }
    for (int i = 0; i < config_setting_length(e); i++) {
        config_setting_t *s = config_setting_get_elem(e, (unsigned)i);
        const char *k = config_setting_name(s);
        int type = config_setting_type(s);
        int at = (int)config_setting_source_line(s) > 0 ? (int)config_setting_source_line(s)
                                                         : line;
        size_t j = 0;
        while (j < sizeof entry_settings / sizeof entry_settings[0]
               && (k == NULL || strcmp(k, entry_settings[j].name) != 0)) {
            j++;
        }
        if (j == sizeof entry_settings / sizeof entry_settings[0]) {
            snprintf(err, errlen, "%s:%d: client \"%s\": unknown setting \"%s\" (known: name, "
                     "key, key_file, role, scope, reporter, rate, burst, max_in_flight)", path,
                     at, who, k != NULL ? k : "?");
            return -1;
        }
        int want = entry_settings[j].type;
        bool ok = type == want || (want == CONFIG_TYPE_FLOAT && (type == CONFIG_TYPE_INT
                                                                || type == CONFIG_TYPE_INT64))
                  || (want == CONFIG_TYPE_INT && type == CONFIG_TYPE_INT64);
        if (!ok) {
            snprintf(err, errlen, "%s:%d: client \"%s\": %s must be %s", path, at, who, k,
                     type_name(want));
            return -1;
        }
    }
    return 0;
}

/* Fills pr from the keys file's entry i. Returns 0 or -1 with err set. */
static int read_entry(config_setting_t *e, const char *path, const char *dir, const city *c,
                      principal *pr, char *err, size_t errlen)
{
    int line = config_setting_source_line(e);
    if (check_settings(e, path, line, err, errlen) != 0) {
        return -1;
    }
    const char *name = entry_str(e, "name"), *key = entry_str(e, "key");
    const char *key_file = entry_str(e, "key_file"), *role = entry_str(e, "role");
    const char *scope = entry_str(e, "scope");

    if (name == NULL || name[0] == '\0' || strlen(name) > PRINCIPAL_MAX_NAME) {
        snprintf(err, errlen, "%s:%d: each client needs a name of 1-%d bytes", path, line,
                 PRINCIPAL_MAX_NAME);
        return -1;
    }
    for (const char *q = name; *q != '\0'; q++) {
        if ((unsigned char)*q < 0x21 || *q == 0x7f) {
            snprintf(err, errlen, "%s:%d: client \"%s\": a name has no spaces or control "
                     "characters", path, line, name);
            return -1;
        }
    }
    snprintf(pr->name, sizeof pr->name, "%s", name);
    if ((key == NULL) == (key_file == NULL)) {
        snprintf(err, errlen, "%s:%d: client \"%s\": give its public key as key = \"...\" or "
                 "key_file = \"x.pub\" (one of the two)", path, line, name);
        return -1;
    }
    if (key != NULL) {
        if (!keyfile_z85_valid(key)) {
            snprintf(err, errlen, "%s:%d: client \"%s\": key must be 40 Z85 characters (the "
                     "public line of `gridline keygen`'s .pub file)", path, line, name);
            return -1;
        }
        snprintf(pr->key, sizeof pr->key, "%s", key);
    } else {
        char full[PATH_MAX];
        keyfile_keys k;
        gl_error ge;
        snprintf(full, sizeof full, "%s%s%s", key_file[0] == '/' ? "" : dir,
                 key_file[0] == '/' ? "" : "/", key_file);
        if (keyfile_read(full, false, &k, &ge) != 0) {
            snprintf(err, errlen, "%s:%d: client \"%s\": %s", path, line, name, ge.message);
            return -1;
        }
        memcpy(pr->key, k.public_key, sizeof pr->key);
    }
    int r = role != NULL ? principal_role_parse(gl_str_c(role)) : -1;
    if (r < 0) {
        snprintf(err, errlen, "%s:%d: client \"%s\": role must be one of hotline, window, "
                 "grid, unit, supervisor, observer, admin", path, line, name);
        return -1;
    }
    pr->role = (principal_role)r;
    pr->unit = -1;
    pr->place = -1;
    if (pr->role == ROLE_UNIT) {
        pr->unit = scope != NULL ? city_unit_find(c, gl_str_c(scope)) : -1;
        if (pr->unit < 0) {
            snprintf(err, errlen, "%s:%d: client \"%s\": a unit's scope must be one of the "
                     "city's unit codes (`gridlined --check-config` lists them)%s%s%s", path,
                     line, name, scope != NULL ? "; \"" : "", scope != NULL ? scope : "",
                     scope != NULL ? "\" is not" : "");
            return -1;
        }
    } else if (scope != NULL) {
        if (pr->role == ROLE_ADMIN) {
            snprintf(err, errlen, "%s:%d: client \"%s\": an admin has no scope (it sees the "
                     "whole city); use supervisor or observer for a place", path, line, name);
            return -1;
        }
        pr->place = city_place_find(c, gl_str_c(scope));
        if (pr->place < 0) {
            snprintf(err, errlen, "%s:%d: client \"%s\": scope \"%s\" is not a place of the "
                     "city (a district, street, community or grid code)", path, line, name,
                     scope);
            return -1;
        }
    }
    int b;
    pr->sees_reporter = config_setting_lookup_bool(e, "reporter", &b) == CONFIG_TRUE
                        ? b != 0 : role_sees_reporter[pr->role];
    double rate = 0, burst = 0;
    int ival;
    if (config_setting_lookup_float(e, "rate", &rate) != CONFIG_TRUE
        && config_setting_lookup_int(e, "rate", &ival) == CONFIG_TRUE) {
        rate = ival;
    }
    if (config_setting_lookup_float(e, "burst", &burst) != CONFIG_TRUE
        && config_setting_lookup_int(e, "burst", &ival) == CONFIG_TRUE) {
        burst = ival;
    }
    if (rate < 0 || burst < 0 || rate > 1e7 || burst > 1e8) {
        snprintf(err, errlen, "%s:%d: client \"%s\": rate and burst are 0 or more (rate 0 = "
                 "no limit)", path, line, name);
        return -1;
    }
    pr->rate = rate;
    pr->burst = burst > 0 ? burst : 2 * rate;
    if (pr->burst < 1 && rate > 0) {
        pr->burst = 1;
    }
    pr->tokens = pr->burst;
    pr->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    if (config_setting_lookup_int(e, "max_in_flight", &ival) == CONFIG_TRUE) {
        if (ival < 1) {
            snprintf(err, errlen, "%s:%d: client \"%s\": max_in_flight must be 1 or more",
                     path, line, name);
            return -1;
        }
        pr->max_in_flight = (uint32_t)ival;
    }
    return 0;
}

principals *principals_load(const char *path, const city *c, char *err, size_t errlen)
{
    config_t cf;
    principals *p = NULL;
    char dirbuf[PATH_MAX];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    const char *dir = dirname(dirbuf);

    config_init(&cf);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        if (config_error_type(&cf) == CONFIG_ERR_FILE_IO) {
            snprintf(err, errlen, "cannot read the keys file %s: %s", path, strerror(errno));
        } else {
            snprintf(err, errlen, "%s:%d: %s", path, config_error_line(&cf),
                     config_error_text(&cf));
        }
        goto fail;
    }
    config_setting_t *list = config_lookup(&cf, "clients");
    if (list == NULL || !config_setting_is_list(list) || config_setting_length(list) == 0) {
        snprintf(err, errlen, "%s: expected clients = ( { name = ...; key = ...; role = ...; "
                 "}, ... ); with at least one client", path);
        goto fail;
    }
    size_t n = (size_t)config_setting_length(list);
    if (n > MAX_PRINCIPALS) {
        snprintf(err, errlen, "%s: %zu clients; at most %d", path, n, MAX_PRINCIPALS);
        goto fail;
    }
    p = table_new(n);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        if (!config_setting_is_group(e)) {
            snprintf(err, errlen, "%s:%d: each client is a group { ... }", path,
                     config_setting_source_line(e));
            goto fail;
        }
        if (read_entry(e, path, dir, c, &p->all[i], err, errlen) != 0) {
            goto fail;
        }
        p->by_name[i] = p->by_key[i] = &p->all[i];
    }
    p->n = n;
    p->secure = true;
    qsort(p->by_name, n, sizeof *p->by_name, cmp_name);
    qsort(p->by_key, n, sizeof *p->by_key, cmp_key);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(p->by_name[i - 1]->name, p->by_name[i]->name) == 0) {
            snprintf(err, errlen, "%s: two clients are named \"%s\"", path, p->by_name[i]->name);
            goto fail;
        }
        if (strcmp(p->by_key[i - 1]->key, p->by_key[i]->key) == 0) {
            snprintf(err, errlen, "%s: clients \"%s\" and \"%s\" have the same key", path,
                     p->by_key[i - 1]->name, p->by_key[i]->name);
            goto fail;
        }
    }
    config_destroy(&cf);
    return p;

fail:
    config_destroy(&cf);
    principals_destroy(&p);
    return NULL;
}

void principals_destroy(principals **pp)
{
    if (pp == NULL || *pp == NULL) {
        return;
    }
    free((*pp)->all);
    free((*pp)->by_name);
    free((*pp)->by_key);
    free(*pp);
    *pp = NULL;
}

bool principals_secure(const principals *p)
{
    return p->secure;
}

size_t principals_count(const principals *p)
{
    return p->n;
}

principal *principals_by_key(principals *p, const char *z85)
{
    principal probe, *pp = &probe;
    snprintf(probe.key, sizeof probe.key, "%s", z85);
    principal **hit = bsearch(&pp, p->by_key, p->n, sizeof *p->by_key, cmp_key);
    return hit != NULL && p->secure ? *hit : NULL;
}

principal *principals_by_name(principals *p, gl_str name)
{
    if (name.n == 0 || name.n > PRINCIPAL_MAX_NAME) {
        return NULL;
    }
    principal probe, *pp = &probe;
    memcpy(probe.name, name.p, name.n);
    probe.name[name.n] = '\0';
    principal **hit = bsearch(&pp, p->by_name, p->n, sizeof *p->by_name, cmp_name);
    return hit != NULL ? *hit : NULL;
}

principal *principals_dev_principal(principals *p)
{
    return p->secure ? NULL : &p->all[0];
}
