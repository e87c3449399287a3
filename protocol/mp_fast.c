/* mp_fast: see mp_fast.h. */
#include "mp_fast.h"

void mp_in_skip(mp_in *in)
{
    uint64_t pending = 1;
    while (pending > 0 && !in->bad) {
        if (pending > (uint64_t)(in->end - in->p)) {
            in->bad = true;   /* more objects announced than bytes left */
            return;
        }
        pending--;
        unsigned char b = *mp_in_take(in, 1);
        size_t skip = 0;
        if (b < 0x80 || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            continue;                                     /* fixints, nil, booleans */
        } else if ((b & 0xe0) == 0xa0) {
            skip = b & 0x1f;                              /* fixstr */
        } else if ((b & 0xf0) == 0x90) {
            pending += b & 0x0f;                          /* fixarray */
        } else if ((b & 0xf0) == 0x80) {
            pending += 2u * (b & 0x0f);                   /* fixmap */
        } else {
            switch (b) {
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: case 0xca: skip = 4; break;
            case 0xcf: case 0xd3: case 0xcb: skip = 8; break;
            case 0xd4: skip = 2; break;                   /* fixext 1..16: type + data */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xc4: case 0xd9: skip = (size_t)mp_in_be(in, 1); break;
            case 0xc5: case 0xda: skip = (size_t)mp_in_be(in, 2); break;
            case 0xc6: case 0xdb: skip = (size_t)mp_in_be(in, 4); break;
            case 0xc7: skip = 1 + (size_t)mp_in_be(in, 1); break;
            case 0xc8: skip = 1 + (size_t)mp_in_be(in, 2); break;
            case 0xc9: skip = 1 + (size_t)mp_in_be(in, 4); break;
            case 0xdc: pending += mp_in_be(in, 2); break;
            case 0xdd: pending += mp_in_be(in, 4); break;
            case 0xde: pending += 2 * mp_in_be(in, 2); break;
            case 0xdf: pending += 2 * mp_in_be(in, 4); break;
            default: in->bad = true; return;              /* 0xc1: never used */
            }
        }
        mp_in_take(in, skip);
    }
}
