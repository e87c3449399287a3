/*
 * gl_error: the contract's error model (protocol.md, "Replies and errors").
 *
 * Every function in Gridline that can fail returns 0 or one of the negative codes
 * below; where a person needs to know more, a gl_error carries the code, the
 * offending field (dotted path, e.g. "location.district") and a message that says
 * what to do. gl_error_pack writes the wire form {"ok": false, "error": {...}}.
 */
#ifndef GL_ERROR_H
#define GL_ERROR_H

#include <msgpack.h>
#include <stddef.h>

enum {
    GL_OK = 0,
    GL_EBAD_REQUEST = -1,     /* not MDP, not MessagePack, not a map */
    GL_EINVALID = -2,         /* invalid_argument: a field is wrong */
    GL_EUNKNOWN_SERVICE = -3,
    GL_ENOT_FOUND = -4,
    GL_ECONFLICT = -5,
    GL_EFORBIDDEN = -6,
    GL_EUNAUTHENTICATED = -7,
    GL_EOVERLOADED = -8,
    GL_EUNAVAILABLE = -9,     /* e.g. storage full */
    GL_EINTERNAL = -10
};

typedef struct {
    int  code;          /* one of the GL_E* codes, GL_OK when unset */
    char field[64];     /* "" when the error is not about one field */
    char message[256];
} gl_error;

/* The wire name of a code ("bad_request", ...); "internal" for anything unknown. */
const char *gl_error_name(int code);

/* Fills err (if not NULL) and returns code, so callers can write
 * `return gl_error_set(err, GL_EINVALID, "title", "is %zu bytes; at most %d", n, max);`
 * field may be NULL. */
int gl_error_set(gl_error *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clears err to GL_OK. */
void gl_error_clear(gl_error *err);

/* Packs {"ok": false, "error": {"code", "message"[, "field"]}[, "rid": rid]}.
 * rid is the raw MessagePack of the request's rid (NULL/0 when absent); it is copied
 * verbatim. Returns 0, or -1 if the packer's writer failed. */
int gl_error_pack(msgpack_packer *pk, const gl_error *err, const char *rid, size_t rid_len);

#endif
