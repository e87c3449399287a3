/*
 * idset: a set of case ids (nonzero), for "handed out and not yet decided". Open
 * addressing with linear probing; grows by doubling. Zero-initialise to start empty.
 */
#ifndef IDSET_H
#define IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *slots;
    size_t    cap, n;
} idset;

bool idset_has(const idset *s, uint64_t id);

/* Returns 0, or -1 when it could not grow (the id is then not in the set). */
int  idset_add(idset *s, uint64_t id);

void idset_del(idset *s, uint64_t id);

/* Frees the slots; the set is empty and usable again. */
void idset_clear(idset *s);

#endif
