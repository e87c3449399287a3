/* Shared by the daemon's unit tests: a store on a fresh temporary directory and a
 * valid create request. */
#ifndef STORE_FIXTURE_H
#define STORE_FIXTURE_H

#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *fixture_tmpdir(void)
{
    char tmpl[] = "/tmp/gridline-test-XXXXXX";
    char *dir = mkdtemp(tmpl);
    return dir != NULL ? strdup(dir) : NULL;
}

static inline void fixture_rmdir(char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    free(dir);
}

static inline request_create fixture_request(const char *request_id, const char *district,
                                             const char *category, const char *phone)
{
    request_create r;
    memset(&r, 0, sizeof r);
    r.request_id = gl_str_c(request_id);
    r.channel = CHANNEL_HOTLINE;
    r.category = gl_str_c(category);
    r.urgency = URGENCY_NORMAL;
    r.title = gl_str_c("title");
    r.description = gl_str_c("description");
    r.location.district = gl_str_c(district);
    r.reporter_phone = gl_str_c(phone);
    return r;
}

#endif
