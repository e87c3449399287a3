/* gl_feed: a feed.pull consumer with its position on disk (gl_feed.h). */
#include "gl_feed.h"

#include "mp_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FEED_MAX_LIMIT   1000
#define FEED_MAX_WAIT_MS 30000

struct gl_feed {
    gl_client *client;
    char      *path;        /* NULL: in memory only */
    char      *tmp_path;
    char      *dir_path;
    char      *unit, *district, *category;
    uint64_t   position;
    bool       has_pending;
    uint64_t   pending_after, pending_next;
    uint32_t   limit;
    int        timeout_ms;
    gl_error   err;
};

static char *dup_or_null(const char *s, bool *failed)
{
    char *d;

    if (s == NULL) {
        return NULL;
    }
    d = strdup(s);
    if (d == NULL) {
        *failed = true;
    }
    return d;
}

/* Reads the saved position: 0 when the file does not exist. */
static int read_position(const char *path, uint64_t *out, char *err, size_t errlen)
{
    char    buf[64];
    FILE   *fp = fopen(path, "r");
    size_t  n;
    char   *end;

    *out = 0;
    if (fp == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    if (ferror(fp)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        fclose(fp);
        return -1;
    }
    fclose(fp);
    buf[n] = '\0';
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    while (*end == '\n' || *end == ' ' || *end == '\r') {
        end++;
    }
    if (n == 0 || buf[0] < '0' || buf[0] > '9' || errno != 0 || *end != '\0') {
        snprintf(err, errlen, "%s does not hold a feed position (a sequence number)", path);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* Replaces the position file whole: temporary file, fsync, rename, fsync the folder. */
static int save_position(gl_feed *f, uint64_t seq)
{
    char    text[32];
    int     fd, n;
    ssize_t w;

    if (f->path == NULL) {
        return 0;
    }
    n = snprintf(text, sizeof(text), "%" PRIu64 "\n", seq);
    fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return gl_error_set(&f->err, GL_EINTERNAL, NULL, "cannot create %s: %s", f->tmp_path,
                            strerror(errno));
    }
    w = write(fd, text, (size_t)n);
    if (w != n || fsync(fd) != 0) {
        int e = w < 0 || w == n ? errno : EIO;

        close(fd);
        unlink(f->tmp_path);
        return gl_error_set(&f->err, GL_EINTERNAL, NULL, "cannot write %s: %s", f->tmp_path,
                            strerror(e));
    }
    if (close(fd) != 0) {
        unlink(f->tmp_path);
        return gl_error_set(&f->err, GL_EINTERNAL, NULL, "cannot write %s: %s", f->tmp_path,
                            strerror(errno));
    }
    if (rename(f->tmp_path, f->path) != 0) {
        int e = errno;

        unlink(f->tmp_path);
        return gl_error_set(&f->err, GL_EINTERNAL, NULL, "cannot rename %s to %s: %s",
                            f->tmp_path, f->path, strerror(e));
    }
    fd = open(f->dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;

        if (fd >= 0) {
            close(fd);
        }
        return gl_error_set(&f->err, GL_EINTERNAL, NULL, "cannot sync the folder %s: %s",
                            f->dir_path, strerror(e));
    }
    close(fd);
    return 0;
}

gl_feed *gl_feed_new(gl_client *c, const char *position_file, const gl_feed_filter *flt,
                     char *err, size_t errlen)
{
    char     dummy[8];
    bool     failed = false;
    gl_feed *f;

    if (err == NULL) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (c == NULL) {
        snprintf(err, errlen, "gl_feed_new needs a client");
        return NULL;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->client = c;
    f->limit = GL_FEED_DEFAULT_LIMIT;
    f->timeout_ms = GL_FEED_DEFAULT_TIMEOUT_MS;
    if (flt != NULL) {
        f->unit = dup_or_null(flt->unit, &failed);
        f->district = dup_or_null(flt->district, &failed);
        f->category = dup_or_null(flt->category, &failed);
    }
    if (position_file != NULL) {
        size_t      n = strlen(position_file);
        const char *slash = strrchr(position_file, '/');

        f->path = strdup(position_file);
        f->tmp_path = malloc(n + 5);
        if (slash == NULL) {
            f->dir_path = strdup(".");
        } else if (slash == position_file) {
            f->dir_path = strdup("/");
        } else {
            f->dir_path = strndup(position_file, (size_t)(slash - position_file));
        }
        if (f->path == NULL || f->tmp_path == NULL || f->dir_path == NULL) {
            failed = true;
        } else {
            memcpy(f->tmp_path, position_file, n);
            memcpy(f->tmp_path + n, ".tmp", 5);
        }
    }
    if (failed) {
        snprintf(err, errlen, "out of memory");
        gl_feed_destroy(&f);
        return NULL;
    }
    if (f->path != NULL && read_position(f->path, &f->position, err, errlen) != 0) {
        gl_feed_destroy(&f);
        return NULL;
    }
    return f;
}

void gl_feed_destroy(gl_feed **fp)
{
    gl_feed *f;

    if (fp == NULL || *fp == NULL) {
        return;
    }
    f = *fp;
    free(f->path);
    free(f->tmp_path);
    free(f->dir_path);
    free(f->unit);
    free(f->district);
    free(f->category);
    free(f);
    *fp = NULL;
}

uint64_t gl_feed_position(const gl_feed *f)
{
    return f->position;
}

int gl_feed_set_position(gl_feed *f, uint64_t seq)
{
    int rc = save_position(f, seq);

    if (rc == 0) {
        f->position = seq;
        f->has_pending = false;
    }
    return rc;
}

void gl_feed_set_limit(gl_feed *f, uint32_t limit)
{
    f->limit = limit < 1 ? 1 : limit > FEED_MAX_LIMIT ? FEED_MAX_LIMIT : limit;
}

void gl_feed_set_timeout(gl_feed *f, int timeout_ms)
{
    f->timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
}

void gl_feed_batch_free(gl_feed_batch *b)
{
    if (b == NULL) {
        return;
    }
    if (b->buf_ != NULL) {
        msgpack_unpacked_destroy(&b->u_);
        free(b->buf_);
    }
    memset(b, 0, sizeof(*b));
}

static int pack_pull(const gl_feed *f, msgpack_packer *pk, int wait_ms)
{
    uint32_t nf = (f->unit != NULL) + (f->district != NULL) + (f->category != NULL);
    int      bad = msgpack_pack_map(pk, 3 + (nf > 0));

    bad |= mp_pack_cstr(pk, "after") | msgpack_pack_uint64(pk, f->position);
    bad |= mp_pack_cstr(pk, "limit") | msgpack_pack_uint32(pk, f->limit);
    bad |= mp_pack_cstr(pk, "wait_ms") | msgpack_pack_int(pk, wait_ms);
    if (nf > 0) {
        bad |= mp_pack_cstr(pk, "filter") | msgpack_pack_map(pk, nf);
        if (f->unit != NULL) {
            bad |= mp_pack_cstr(pk, "unit") | mp_pack_cstr(pk, f->unit);
        }
        if (f->district != NULL) {
            bad |= mp_pack_cstr(pk, "district") | mp_pack_cstr(pk, f->district);
        }
        if (f->category != NULL) {
            bad |= mp_pack_cstr(pk, "category") | mp_pack_cstr(pk, f->category);
        }
    }
    return bad != 0 ? -1 : 0;
}

static bool get_u64(const msgpack_object *body, const char *key, uint64_t *out)
{
    const msgpack_object *o = mp_map_get(body, key);

    if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        /* 0 packs as a positive integer in msgpack-c; anything else is not a seq. */
        return false;
    }
    *out = o->via.u64;
    return true;
}

int gl_feed_next(gl_feed *f, int wait_ms, gl_feed_batch *out)
{
    msgpack_sbuffer       sb;
    msgpack_packer        pk;
    const msgpack_object *events;
    size_t                len = 0, off = 0;
    int                   rc;

    memset(out, 0, sizeof(*out));
    gl_error_clear(&f->err);
    if (wait_ms < 0) {
        wait_ms = 0;
    } else if (wait_ms > FEED_MAX_WAIT_MS) {
        wait_ms = FEED_MAX_WAIT_MS;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (pack_pull(f, &pk, wait_ms) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return gl_error_set(&f->err, GL_EINTERNAL, NULL, "out of memory");
    }
    int timeout = f->timeout_ms > INT_MAX - wait_ms ? INT_MAX : f->timeout_ms + wait_ms;
    rc = gl_client_call(f->client, "feed.pull", sb.data, sb.size, timeout, &out->buf_, &len,
                        &f->err);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0) {
        free(out->buf_);
        out->buf_ = NULL;
        return rc;
    }
    msgpack_unpacked_init(&out->u_);
    if (msgpack_unpack_next(&out->u_, out->buf_, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&out->u_);
        free(out->buf_);
        memset(out, 0, sizeof(*out));
        return gl_error_set(&f->err, GL_EBAD_REQUEST, NULL, "the feed.pull reply cannot be read");
    }
    events = mp_map_get(&out->u_.data, "events");
    if (events == NULL || events->type != MSGPACK_OBJECT_ARRAY
        || !get_u64(&out->u_.data, "next", &out->next)
        || !get_u64(&out->u_.data, "last", &out->last) || out->next < f->position) {
        gl_feed_batch_free(out);
        return gl_error_set(&f->err, GL_EBAD_REQUEST, NULL,
                            "the feed.pull reply has no events, last and next (or next goes "
                            "backwards)");
    }
    out->events = events->via.array.ptr;
    out->n_events = events->via.array.size;
    out->after = f->position;
    f->has_pending = true;
    f->pending_after = f->position;
    f->pending_next = out->next;
    return 0;
}

int gl_feed_ack_seq(gl_feed *f, uint64_t seq)
{
    int rc;

    gl_error_clear(&f->err);
    if (!f->has_pending) {
        return 0;
    }
    if (seq < f->pending_after || seq > f->pending_next) {
        return gl_error_set(&f->err, GL_EINVALID, "seq",
                            "%" PRIu64 " is outside the last batch (%" PRIu64 ", %" PRIu64 "]",
                            seq, f->pending_after, f->pending_next);
    }
    if (seq == f->position) {
        return 0;
    }
    rc = save_position(f, seq);
    if (rc != 0) {
        return rc;
    }
    f->position = seq;
    if (seq == f->pending_next) {
        f->has_pending = false;
    } else {
        f->pending_after = seq;
    }
    return 0;
}

int gl_feed_ack(gl_feed *f)
{
    if (!f->has_pending) {
        gl_error_clear(&f->err);
        return 0;
    }
    return gl_feed_ack_seq(f, f->pending_next);
}

const gl_error *gl_feed_error(const gl_feed *f)
{
    return &f->err;
}
