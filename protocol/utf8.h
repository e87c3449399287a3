/*
 * utf8: validation of text fields. Text on the wire is UTF-8 (protocol.md).
 */
#ifndef UTF8_H
#define UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when p[0..n) is well-formed UTF-8 (no overlongs, no surrogates, nothing above
 * U+10FFFF) and holds no NUL. */
bool utf8_valid(const char *p, size_t n);

#endif
