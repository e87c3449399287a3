/*
 * utf8: a strict UTF-8 check (RFC 3629, Unicode table 3-7).
 *
 * The ranges of the second byte are narrowed after E0, ED, F0 and F4 so that
 * overlong forms, surrogates (U+D800..U+DFFF) and code points above U+10FFFF are
 * refused without decoding. NUL is refused too: text fields end up in C strings in
 * logs and clients, where an embedded NUL would silently cut them short.
 */
#include "utf8.h"

#include <stdint.h>

bool
utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0;

    while (i < n) {
        unsigned char b = p[i];
        unsigned char lo = 0x80, hi = 0xbf;   /* allowed range of the second byte */
        size_t        need;
        size_t        k;

        if (b == 0x00) {
            return false;
        }
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
            need = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            if (b == 0xe0) {
                lo = 0xa0;                     /* below: overlong */
            } else if (b == 0xed) {
                hi = 0x9f;                     /* above: surrogates */
            }
        } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            if (b == 0xf0) {
                lo = 0x90;                     /* below: overlong */
            } else if (b == 0xf4) {
                hi = 0x8f;                     /* above: beyond U+10FFFF */
            }
        } else {
            return false;                      /* 80..C1 (stray or overlong), F5..FF */
        }

        if (n - i - 1 < need) {
            return false;                      /* truncated sequence */
        }
        if (p[i + 1] < lo || p[i + 1] > hi) {
            return false;
        }
        for (k = 2; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
        }
        i += need + 1;
    }
    return true;
}
