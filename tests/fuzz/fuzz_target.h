/*
 * fuzz_target: what every harness in tests/fuzz/ shares.
 *
 * Each harness is one LLVMFuzzerTestOneInput, built twice: with clang and libFuzzer
 * (GRIDLINE_FUZZ=ON) to search for inputs, and in every build with replay_main.c to run
 * the seed corpus and the saved regressions as a ctest test. So a harness uses nothing
 * libFuzzer-specific, and reports a broken invariant by aborting, which both libFuzzer
 * and ctest see as a failure.
 */
#ifndef FUZZ_TARGET_H
#define FUZZ_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libFuzzer entry point; returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, naming the invariant, when ok is false. abort() rather than a return code:
 * libFuzzer keeps the input that got here and prints the stack. */
static inline void
fuzz_expect(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz: invariant broken: %s\n", what);
        abort();
    }
}

/* True when p[0..n) lies inside buf[0..len). An empty run is inside anywhere: a parser
 * may leave it NULL. */
static inline bool
fuzz_inside(const void *p, size_t n, const void *buf, size_t len)
{
    const char *q = p;
    const char *b = buf;

    if (n == 0) {
        return true;
    }
    return q != NULL && q >= b && n <= len && (size_t)(q - b) <= len - n;
}

/* A copy of data[0..size) in a block of exactly size bytes (the caller frees it), so
 * that AddressSanitizer reports a read one byte past the end instead of it landing in
 * whatever the harness's input held next. NULL only when memory ran out. */
static inline unsigned char *
fuzz_copy(const uint8_t *data, size_t size)
{
    unsigned char *p = malloc(size);

    if (p == NULL && size == 0) {
        p = malloc(1);   /* malloc(0) may be NULL; the harnesses want a real pointer */
    }
    if (p != NULL && size > 0) {
        memcpy(p, data, size);
    }
    return p;
}

#endif
