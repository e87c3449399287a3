/*
 * keyfile: CURVE key files, shared by the daemon, the tools and the client library.
 *
 * A key file is a small libconfig file, so an operator can read it and the daemon's
 * keys file can name one:
 *
 *     # gridline keygen: desk-1 (keep this file secret)
 *     public = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
 *     secret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
 *
 * The public half alone goes in a `.pub` file, which is what the daemon's operator and
 * the clients are given; the secret file holds both and is written mode 0600. Keys are
 * Z85 text (ZeroMQ's zmq_z85_encode of the 32-byte key), 40 characters.
 */
#ifndef KEYFILE_H
#define KEYFILE_H

#include "gl_error.h"

#include <stdbool.h>
#include <stddef.h>

#define KEYFILE_Z85_LEN 40

typedef struct {
    char public_key[KEYFILE_Z85_LEN + 1];
    char secret_key[KEYFILE_Z85_LEN + 1];   /* "" when the file holds no secret */
} keyfile_keys;

/* True when s is 40 characters of the Z85 alphabet. */
bool keyfile_z85_valid(const char *s);

/* Reads path into *out. Returns 0; GL_EINVALID with a message naming the file (and line,
 * for a syntax error) when it cannot be read, is not a key file, or a key is not
 * 40 Z85 characters; with need_secret, also when it holds no secret key. */
int keyfile_read(const char *path, bool need_secret, keyfile_keys *out, gl_error *err);

/* Writes keys to path, never replacing a file that exists: with the secret (mode 0600)
 * when keys->secret_key is set, else the public key alone (mode 0644). `comment` goes
 * on the first line. Returns 0, or GL_EINVALID with a message naming the file (exists,
 * cannot create, cannot write). */
int keyfile_write(const char *path, const keyfile_keys *keys, const char *comment,
                  gl_error *err);

#endif
