/* gl_error: the contract's error codes and their wire form. */
#include "gl_error.h"

#include "mp_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *gl_error_name(int code)
{
    switch (code) {
    case GL_EBAD_REQUEST:     return "bad_request";
    case GL_EINVALID:         return "invalid_argument";
    case GL_EUNKNOWN_SERVICE: return "unknown_service";
    case GL_ENOT_FOUND:       return "not_found";
    case GL_ECONFLICT:        return "conflict";
    case GL_EFORBIDDEN:       return "forbidden";
    case GL_EUNAUTHENTICATED: return "unauthenticated";
    case GL_EOVERLOADED:      return "overloaded";
    case GL_EUNAVAILABLE:     return "unavailable";
    default:                  return "internal";
    }
}

int gl_error_set(gl_error *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL) {
        return code;
    }
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field != NULL ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void gl_error_clear(gl_error *err)
{
    memset(err, 0, sizeof *err);
}

int gl_error_pack(msgpack_packer *pk, const gl_error *err, const char *rid, size_t rid_len)
{
    int has_field = err->field[0] != '\0';
    int code = err->code != GL_OK ? err->code : GL_EINTERNAL;
    const char *message = err->message[0] != '\0' ? err->message : gl_error_name(code);
    int rc = 0;

    rc |= msgpack_pack_map(pk, rid != NULL ? 3 : 2);
    rc |= mp_pack_cstr(pk, "ok");
    rc |= msgpack_pack_false(pk);
    rc |= mp_pack_cstr(pk, "error");
    rc |= msgpack_pack_map(pk, has_field ? 3 : 2);
    rc |= mp_pack_cstr(pk, "code");
    rc |= mp_pack_cstr(pk, gl_error_name(code));
    rc |= mp_pack_cstr(pk, "message");
    rc |= mp_pack_cstr(pk, message);
    if (has_field) {
        rc |= mp_pack_cstr(pk, "field");
        rc |= mp_pack_cstr(pk, err->field);
    }
    if (rid != NULL) {
        rc |= mp_pack_cstr(pk, "rid");
        /* rid is already MessagePack; the packer's writer appends raw bytes. */
        rc |= pk->callback(pk->data, rid, rid_len);
    }
    return rc != 0 ? -1 : 0;
}
