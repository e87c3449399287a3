/* idset: a set of case ids, open addressing with linear probing (see idset.h). */
#include "idset.h"

#include <stdlib.h>


static size_t idset_slot(const idset *s, uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 20) & (s->cap - 1);
}

bool idset_has(const idset *s, uint64_t id)
{
    if (s->cap == 0) {
        return false;
    }
    for (size_t i = idset_slot(s, id);; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i] == id) {
            return true;
        }
        if (s->slots[i] == 0) {
            return false;
        }
    }
}

static int idset_grow(idset *s)
{
    idset bigger = { NULL, s->cap != 0 ? s->cap * 2 : 1024, 0 };
    bigger.slots = calloc(bigger.cap, sizeof *bigger.slots);
    if (bigger.slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i] != 0) {
            idset_add(&bigger, s->slots[i]);
        }
    }
    free(s->slots);
    *s = bigger;
    return 0;
}

int idset_add(idset *s, uint64_t id)
{
    if ((s->n + 1) * 2 > s->cap && idset_grow(s) != 0) {
        return -1;
    }
    size_t i = idset_slot(s, id);
    while (s->slots[i] != 0 && s->slots[i] != id) {
        i = (i + 1) & (s->cap - 1);
    }
    if (s->slots[i] == 0) {
        s->slots[i] = id;
        s->n++;
    }
    return 0;
}

void idset_del(idset *s, uint64_t id)
{
    if (s->cap == 0) {
        return;
    }
    size_t i = idset_slot(s, id);
    while (s->slots[i] != id) {
        if (s->slots[i] == 0) {
            return;
        }
        i = (i + 1) & (s->cap - 1);
    }
    /* Backward-shift deletion keeps every probe chain unbroken. */
    size_t j = i;
    for (;;) {
        s->slots[i] = 0;
        for (;;) {
            j = (j + 1) & (s->cap - 1);
            if (s->slots[j] == 0) {
                s->n--;
                return;
            }
            size_t k = idset_slot(s, s->slots[j]);
            if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j)) {
                continue;
            }
            break;
        }
        s->slots[i] = s->slots[j];
        i = j;
    }
}


void idset_clear(idset *s)
{
    free(s->slots);
    s->slots = NULL;
    s->cap = s->n = 0;
}
