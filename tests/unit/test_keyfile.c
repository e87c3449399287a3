/* keyfile: CURVE key files are written once, read back the same, and refuse what is not
 * a key file with a message that names the file. */
#include "gl_error.h"
#include "keyfile.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

/* Two made-up keys: 40 characters of the Z85 alphabet (the daemon never decodes them
 * here, so they need not come from zmq_curve_keypair). */
#define PUBLIC_KEY "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
#define SECRET_KEY "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"

static const char z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

typedef struct {
    char dir[64];
    char path[128];
} tmp;

static int tmp_setup(void **state)
{
    tmp *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return -1;
    }
    snprintf(t->dir, sizeof t->dir, "/tmp/gridline-keyfile-XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    tmp *t = *state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    int rc = system(cmd);
    free(t);
    return rc == 0 ? 0 : -1;
}

/* Sets t->path to dir/name and returns it. */
static const char *tmp_path(tmp *t, const char *name)
{
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* The whole file into buf (NUL-terminated). */
static void read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static keyfile_keys pair(void)
{
    keyfile_keys k;
    memset(&k, 0, sizeof k);
    memcpy(k.public_key, PUBLIC_KEY, KEYFILE_Z85_LEN + 1);
    memcpy(k.secret_key, SECRET_KEY, KEYFILE_Z85_LEN + 1);
    return k;
}

static keyfile_keys public_only(void)
{
    keyfile_keys k = pair();
    k.secret_key[0] = '\0';
    return k;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL) {
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
    }
}

static void test_pair_written_reads_back_public_and_secret(void **state)
{
    tmp *t = *state;
    keyfile_keys in = pair(), out;
    gl_error err;
    const char *path = tmp_path(t, "desk-1.key");

    assert_int_equal(keyfile_write(path, &in, "gridline keygen: desk-1", &err), 0);
    assert_int_equal(keyfile_read(path, true, &out, &err), 0);
    assert_string_equal(out.public_key, PUBLIC_KEY);
    assert_string_equal(out.secret_key, SECRET_KEY);

    /* A secret file also reads when the secret is not needed. */
    assert_int_equal(keyfile_read(path, false, &out, &err), 0);
    assert_string_equal(out.public_key, PUBLIC_KEY);
    assert_string_equal(out.secret_key, SECRET_KEY);
}

static void test_public_file_reads_without_secret_and_is_refused_when_secret_needed(
    void **state)
{
    tmp *t = *state;
    keyfile_keys in = public_only(), out;
    gl_error err;
    const char *path = tmp_path(t, "desk-1.pub");

    assert_int_equal(keyfile_write(path, &in, "desk-1", &err), 0);
    assert_int_equal(keyfile_read(path, false, &out, &err), 0);
    assert_string_equal(out.public_key, PUBLIC_KEY);
    assert_string_equal(out.secret_key, "");

    gl_error_clear(&err);
    assert_int_equal(keyfile_read(path, true, &out, &err), GL_EINVALID);
    assert_int_equal(err.code, GL_EINVALID);
    assert_contains(err.message, path);
    assert_contains(err.message, "no secret");
}

static void test_write_never_overwrites_and_leaves_the_old_file_intact(void **state)
{
    tmp *t = *state;
    keyfile_keys first = pair(), second = pair(), out;
    gl_error err;
    char before[1024], after[1024];
    const char *path = tmp_path(t, "desk-1.key");

    assert_int_equal(keyfile_write(path, &first, "first", &err), 0);
    read_text(path, before, sizeof before);

    /* Another pair under the same name: refused. */
    memcpy(second.public_key, "0000000000000000000000000000000000000000", KEYFILE_Z85_LEN);
    gl_error_clear(&err);
    assert_int_equal(keyfile_write(path, &second, "second", &err), GL_EINVALID);
    assert_int_equal(err.code, GL_EINVALID);
    assert_contains(err.message, path);
    assert_contains(err.message, "never overwritten");
    read_text(path, after, sizeof after);
    assert_string_equal(before, after);
    assert_int_equal(keyfile_read(path, true, &out, &err), 0);
    assert_string_equal(out.public_key, PUBLIC_KEY);

    /* The public half alone is refused over it too. */
    keyfile_keys pub = public_only();
    assert_int_equal(keyfile_write(path, &pub, "pub", &err), GL_EINVALID);
    read_text(path, after, sizeof after);
    assert_string_equal(before, after);

    /* So is any file that happens to be there, key file or not. */
    const char *other = tmp_path(t, "notes.txt");
    write_text(other, "not a key\n");
    assert_int_equal(keyfile_write(other, &first, NULL, &err), GL_EINVALID);
    read_text(other, after, sizeof after);
    assert_string_equal(after, "not a key\n");
}

static void test_write_into_missing_folder_names_the_file(void **state)
{
    tmp *t = *state;
    keyfile_keys in = pair();
    gl_error err;
    const char *path = tmp_path(t, "no/such/folder/k.key");

    assert_int_equal(keyfile_write(path, &in, "x", &err), GL_EINVALID);
    assert_contains(err.message, path);
    assert_null(strstr(err.message, "never overwritten"));
}

static void test_secret_file_is_0600_and_public_file_0644(void **state)
{
    tmp *t = *state;
    keyfile_keys secret = pair(), pub = public_only();
    gl_error err;
    struct stat st;
    char spath[128], ppath[128];
    /* With no umask, the modes seen are the modes asked for. */
    mode_t old = umask(0);

    snprintf(spath, sizeof spath, "%s", tmp_path(t, "k.key"));
    snprintf(ppath, sizeof ppath, "%s", tmp_path(t, "k.pub"));
    int rs = keyfile_write(spath, &secret, "secret", &err);
    int rp = keyfile_write(ppath, &pub, "public", &err);
    umask(old);
    assert_int_equal(rs, 0);
    assert_int_equal(rp, 0);

    assert_int_equal(stat(spath, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(ppath, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
}

static void test_syntax_error_names_file_and_line(void **state)
{
    tmp *t = *state;
    keyfile_keys out;
    gl_error err;
    const char *path = tmp_path(t, "broken.key");
    char want[160];

    write_text(path, "# a key file\n"
                     "public = \"" PUBLIC_KEY "\";\n"
                     "secret = \"" SECRET_KEY "\"\n"     /* no semicolon */
                     "oops oops;\n");
    assert_int_equal(keyfile_read(path, false, &out, &err), GL_EINVALID);
    snprintf(want, sizeof want, "%s:", path);
    assert_contains(err.message, want);
    /* The line libconfig blames is 3 or 4 (where the missing ';' is noticed): either
     * way, a line number follows the file name. */
    const char *after = strstr(err.message, want) + strlen(want);
    assert_true(after[0] == '3' || after[0] == '4');
    assert_int_equal(after[1], ':');
}

static void test_missing_file_and_not_a_key_file_name_the_file(void **state)
{
    tmp *t = *state;
    keyfile_keys out;
    gl_error err;
    const char *path = tmp_path(t, "absent.key");

    assert_int_equal(keyfile_read(path, false, &out, &err), GL_EINVALID);
    assert_contains(err.message, path);

    path = tmp_path(t, "other.cfg");
    write_text(path, "name = \"desk-1\";\n");
    assert_int_equal(keyfile_read(path, false, &out, &err), GL_EINVALID);
    assert_contains(err.message, path);
    assert_contains(err.message, "not a key file");

    /* A public key that is a number, not a string, is no key either. */
    write_text(tmp_path(t, "number.key"), "public = 12;\n");
    assert_int_equal(keyfile_read(t->path, false, &out, &err), GL_EINVALID);
    assert_contains(err.message, t->path);
}

static void test_key_of_39_characters_is_refused(void **state)
{
    tmp *t = *state;
    keyfile_keys out;
    gl_error err;
    char text[256];
    const char *path = tmp_path(t, "short.pub");

    snprintf(text, sizeof text, "public = \"%.39s\";\n", PUBLIC_KEY);
    write_text(path, text);
    assert_int_equal(keyfile_read(path, false, &out, &err), GL_EINVALID);
    assert_contains(err.message, path);
    assert_contains(err.message, "40 Z85");
    assert_string_equal(err.field, "public");

    /* A secret of 41 characters, too, even when the secret is not needed. */
    path = tmp_path(t, "long.key");
    snprintf(text, sizeof text, "public = \"%s\";\nsecret = \"%sx\";\n", PUBLIC_KEY,
             SECRET_KEY);
    write_text(path, text);
    assert_int_equal(keyfile_read(path, false, &out, &err), GL_EINVALID);
    assert_contains(err.message, path);
    assert_string_equal(err.field, "secret");
}

static void test_key_with_a_character_outside_z85_is_refused(void **state)
{
    tmp *t = *state;
    keyfile_keys out;
    gl_error err;
    char text[256], key[KEYFILE_Z85_LEN + 1];
    /* Printable ASCII that Z85 leaves out. */
    const char outside[] = " ',;_`|~";

    for (const char *c = outside; *c != '\0'; c++) {
        memcpy(key, PUBLIC_KEY, sizeof key);
        key[17] = *c;
        snprintf(text, sizeof text, "public = \"%s\";\n", key);
        write_text(tmp_path(t, "bad.pub"), text);
        assert_int_equal(keyfile_read(t->path, false, &out, &err), GL_EINVALID);
        assert_contains(err.message, t->path);
        assert_int_equal(unlink(t->path), 0);
    }
}

static void test_z85_valid_edge_cases(void **state)
{
    (void)state;
    char s[64];

    assert_false(keyfile_z85_valid(NULL));
    assert_false(keyfile_z85_valid(""));
    assert_true(keyfile_z85_valid(PUBLIC_KEY));
    assert_true(keyfile_z85_valid(SECRET_KEY));

    /* 39 and 41 characters. */
    snprintf(s, sizeof s, "%.39s", PUBLIC_KEY);
    assert_false(keyfile_z85_valid(s));
    snprintf(s, sizeof s, "%s0", PUBLIC_KEY);
    assert_false(keyfile_z85_valid(s));

    /* Every character of the alphabet is accepted, at the first and the last place. */
    for (const char *c = z85_alphabet; *c != '\0'; c++) {
        memset(s, '0', KEYFILE_Z85_LEN);
        s[KEYFILE_Z85_LEN] = '\0';
        s[0] = *c;
        s[KEYFILE_Z85_LEN - 1] = *c;
        assert_true(keyfile_z85_valid(s));
    }

    /* Everything else in a byte is refused, in the middle and at the ends. */
    for (int b = 1; b < 256; b++) {
        if (strchr(z85_alphabet, b) != NULL) {
            continue;
        }
        static const int places[] = { 0, KEYFILE_Z85_LEN / 2, KEYFILE_Z85_LEN - 1 };
        for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
            int at = places[i];
            memset(s, 'a', KEYFILE_Z85_LEN);
            s[KEYFILE_Z85_LEN] = '\0';
            s[at] = (char)b;
            if (keyfile_z85_valid(s)) {
                fail_msg("byte 0x%02x at %d accepted", b, at);
            }
        }
    }

    /* 40 bytes that are 20 two-byte UTF-8 characters are not 40 characters of Z85. */
    s[0] = '\0';
    for (int i = 0; i < 20; i++) {
        strcat(s, "\xc3\xa9");
    }
    assert_int_equal(strlen(s), KEYFILE_Z85_LEN);
    assert_false(keyfile_z85_valid(s));
}

static void test_comment_with_a_newline_does_not_break_the_file(void **state)
{
    tmp *t = *state;
    keyfile_keys in = pair(), pub = public_only(), out;
    gl_error err;
    char text[1024];

    /* A comment that would, on a line of its own, replace the secret. */
    const char *evil = "desk-1\nsecret = \"0000000000000000000000000000000000000000\";\n"
                       "public = 5;";
    assert_int_equal(keyfile_write(tmp_path(t, "a.key"), &in, evil, &err), 0);
    assert_int_equal(keyfile_read(t->path, true, &out, &err), 0);
    assert_string_equal(out.public_key, PUBLIC_KEY);
    assert_string_equal(out.secret_key, SECRET_KEY);

    /* A public file must not grow a secret out of its comment. */
    assert_int_equal(keyfile_write(tmp_path(t, "a.pub"), &pub, evil, &err), 0);
    assert_int_equal(keyfile_read(t->path, false, &out, &err), 0);
    assert_string_equal(out.public_key, PUBLIC_KEY);
    assert_string_equal(out.secret_key, "");
    read_text(t->path, text, sizeof text);
    assert_null(strstr(text, "secret"));

    /* A carriage return, too. */
    assert_int_equal(keyfile_write(tmp_path(t, "b.key"), &in, "x\r; oops", &err), 0);
    assert_int_equal(keyfile_read(t->path, true, &out, &err), 0);
    assert_string_equal(out.secret_key, SECRET_KEY);

    /* A comment far longer than a line still leaves a file that reads. */
    char longc[2000];
    memset(longc, 'c', sizeof longc - 1);
    longc[sizeof longc - 1] = '\0';
    assert_int_equal(keyfile_write(tmp_path(t, "c.key"), &in, longc, &err), 0);
    assert_int_equal(keyfile_read(t->path, true, &out, &err), 0);
    assert_string_equal(out.public_key, PUBLIC_KEY);
    assert_string_equal(out.secret_key, SECRET_KEY);

    /* And no comment at all. */
    assert_int_equal(keyfile_write(tmp_path(t, "d.key"), &in, NULL, &err), 0);
    assert_int_equal(keyfile_read(t->path, true, &out, &err), 0);
    assert_string_equal(out.secret_key, SECRET_KEY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pair_written_reads_back_public_and_secret,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(
            test_public_file_reads_without_secret_and_is_refused_when_secret_needed,
            tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(
            test_write_never_overwrites_and_leaves_the_old_file_intact, tmp_setup,
            tmp_teardown),
        cmocka_unit_test_setup_teardown(test_write_into_missing_folder_names_the_file,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_is_0600_and_public_file_0644,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error_names_file_and_line, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_and_not_a_key_file_name_the_file,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_key_of_39_characters_is_refused, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_key_with_a_character_outside_z85_is_refused,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test(test_z85_valid_edge_cases),
        cmocka_unit_test_setup_teardown(test_comment_with_a_newline_does_not_break_the_file,
                                        tmp_setup, tmp_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
