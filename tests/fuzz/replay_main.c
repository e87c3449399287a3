/*
 * replay_main: runs a fuzz harness over saved inputs, without libFuzzer.
 *
 *     fuzz_replay_<harness> PATH...
 *
 * Every PATH is a file, or a directory whose files (not its subdirectories, not names
 * starting with '.') are replayed in name order. Linked with each harness in every
 * build, so the seed corpus and the regressions are checked by ctest with gcc, and
 * under AddressSanitizer and UndefinedBehaviorSanitizer in CI's sanitizer build, not
 * only when someone runs the fuzzers. A broken invariant aborts inside the harness; the
 * name printed just before says which input did it.
 *
 * Exits 0 when every input ran, 1 when a path could not be read or no input was found
 * (an empty corpus would make the test pass without testing anything).
 */
#include "fuzz_target.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* Reads the whole file into a block of exactly its size (*out, the caller frees it).
 * Returns 0, or -1 with errno set. */
static int
read_file(const char *path, unsigned char **out, size_t *len)
{
    FILE          *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    unsigned char *grown;
    size_t         cap = 0;
    size_t         n = 0;
    size_t         got;

    if (f == NULL) {
        return -1;
    }
    for (;;) {
        if (n == cap) {
            cap = cap == 0 ? 4096 : cap * 2;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                goto err;
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        goto err;
    }
    fclose(f);
    /* Exactly n bytes, so that a read past the input's end is caught. */
    *out = fuzz_copy(buf, n);
    free(buf);
    *len = n;
    return *out != NULL ? 0 : -1;

err:
    free(buf);
    fclose(f);
    return -1;
}

static int
replay_file(const char *path)
{
    unsigned char *data;
    size_t         len;

    if (read_file(path, &data, &len) != 0) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("replay: %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int
skip_dot(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Replays the regular files of dir in name order; adds their number to *count. */
static int
replay_dir(const char *dir, size_t *count)
{
    struct dirent **names;
    struct stat     st;
    char            path[4096];
    int             n;
    int             i;
    int             rc = 0;

    n = scandir(dir, &names, skip_dot, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);

        if (w < 0 || (size_t)w >= sizeof path) {
            fprintf(stderr, "replay: path too long: %s/%s\n", dir, names[i]->d_name);
            rc = -1;
        } else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) != 0) {
                rc = -1;
            } else {
                (*count)++;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    struct stat st;
    size_t      count = 0;
    int         rc = 0;
    int         i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH... (files, or directories of inputs)\n", argv[0]);
        return 1;
    }
    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &count) != 0) {
                rc = 1;
            }
        } else if (replay_file(argv[i]) != 0) {
            rc = 1;
        } else {
            count++;
        }
    }
    if (count == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        rc = 1;
    }
    printf("replay: %zu inputs replayed\n", count);
    return rc;
}
