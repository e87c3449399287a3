/* keyfile: CURVE key files (see keyfile.h). */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool keyfile_z85_valid(const char *s)
{
    if (s == NULL || strlen(s) != KEYFILE_Z85_LEN) {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (strchr(z85_alphabet, *p) == NULL) {
            return false;
        }
    }
    return true;
}

static int read_key(config_t *cf, const char *path, const char *name, char *out,
                    gl_error *err)
{
    const char *v = NULL;
    out[0] = '\0';
    if (config_lookup_string(cf, name, &v) != CONFIG_TRUE) {
        return 1;   /* absent */
    }
    if (!keyfile_z85_valid(v)) {
        return gl_error_set(err, GL_EINVALID, name, "%s: %s must be 40 Z85 characters (as "
                            "`gridline keygen` writes)", path, name);
    }
    memcpy(out, v, KEYFILE_Z85_LEN + 1);
    return 0;
}

int keyfile_read(const char *path, bool need_secret, keyfile_keys *out, gl_error *err)
{
    config_t cf;
    int rc;
    memset(out, 0, sizeof *out);
    config_init(&cf);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        if (config_error_type(&cf) == CONFIG_ERR_FILE_IO) {
            rc = gl_error_set(err, GL_EINVALID, NULL, "cannot read key file %s: %s", path,
                              strerror(errno));
        } else {
            rc = gl_error_set(err, GL_EINVALID, NULL, "%s:%d: %s", path,
                              config_error_line(&cf), config_error_text(&cf));
        }
        goto out;
    }
    rc = read_key(&cf, path, "public", out->public_key, err);
    if (rc > 0) {
        rc = gl_error_set(err, GL_EINVALID, "public", "%s has no `public = \"...\";`: not a "
                          "key file (make one with `gridline keygen`)", path);
    }
    if (rc != 0) {
        goto out;
    }
    rc = read_key(&cf, path, "secret", out->secret_key, err);
    if (rc > 0) {
        rc = need_secret ? gl_error_set(err, GL_EINVALID, "secret", "%s holds no secret key: "
                                        "give the secret file, not the .pub", path)
                         : 0;
    }
out:
    config_destroy(&cf);
    return rc;
}

int keyfile_write(const char *path, const keyfile_keys *keys, const char *comment,
                  gl_error *err)
{
    bool secret = keys->secret_key[0] != '\0';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0) {
        return gl_error_set(err, GL_EINVALID, NULL, "cannot create %s: %s%s", path,
                            strerror(errno), errno == EEXIST ? " (keys are never overwritten: "
                            "remove it or choose another name)" : "");
    }
    char buf[512];
    const char *c = comment != NULL ? comment : "";
    size_t cn = strcspn(c, "\r\n");
    int n = snprintf(buf, sizeof buf, "# %.*s\npublic = \"%s\";\n", (int)(cn > 200 ? 200 : cn),
                     c, keys->public_key);
    if (secret) {
        n += snprintf(buf + n, sizeof buf - (size_t)n, "secret = \"%s\";\n", keys->secret_key);
    }
    bool ok = n > 0 && (size_t)n < sizeof buf && write(fd, buf, (size_t)n) == n
              && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0) {
        ok = false;
    }
    if (!ok) {
        unlink(path);
        return gl_error_set(err, GL_EINVALID, NULL, "cannot write %s: %s", path,
                            strerror(saved));
    }
    return 0;
}
