/* strset.c - an immutable hash set of strings: built once on the main thread, read by all workers. */
#include <stdlib.h>
#include <string.h>

#include "banlist.h"

/*
 * Strings live in large chunks (one allocation per 64 KiB, not one per
 * entry: a 100,000-line list is a few allocations) and an open-addressing
 * index of (hash, entry) pairs at most half full, so a miss usually looks
 * at one slot.
 */

#define CHUNK_SIZE 65536

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    char data[];
} chunk_t;

typedef struct slot {
    uint32_t hash;   /* low bits of the entry's hash */
    uint32_t idx;    /* entry index + 1; 0 is empty */
} slot_t;

struct bl_strset {
    chunk_t *chunks;
    const char **v;       /* entries in insertion order */
    uint32_t *lens;
    size_t n, cap;
    slot_t *slots;
    size_t mask;          /* slots - 1 (a power of two minus one) */
    int finished;
};

uint64_t bl_hash(const void *p, size_t len)
{
    /* Eight bytes per multiply (host names are hashed label by label for
     * every request), then a final mix so the low bits used as the index
     * depend on every byte. Not for hostile inputs' sake: probes compare
     * the strings, so a collision costs a probe, never a wrong answer. */
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)len, w;

    while (len >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8;
        len -= 8;
    }
    w = 0;
    memcpy(&w, s, len);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

bl_strset_t *bl_strset_new(void)
{
    return calloc(1, sizeof(bl_strset_t));
}

static char *chunk_copy(bl_strset_t *set, const char *s, size_t len)
{
    chunk_t *c = set->chunks;
    char *d;

    if (c == NULL || c->size - c->used < len + 1) {
        size_t size = len + 1 > CHUNK_SIZE ? len + 1 : CHUNK_SIZE;
        c = malloc(sizeof(*c) + size);
        if (c == NULL)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = set->chunks;
        set->chunks = c;
    }
    d = c->data + c->used;
    memcpy(d, s, len);
    d[len] = '\0';
    c->used += len + 1;
    return d;
}

/* Looks s up in the index; the slot where it is or would go. */
static size_t probe(const bl_strset_t *set, const char *s, size_t len,
                    uint64_t h, int *found)
{
    size_t i = (size_t)h & set->mask;

    *found = 0;
    while (set->slots[i].idx) {
        const slot_t *sl = &set->slots[i];
        if (sl->hash == (uint32_t)h) {
            size_t k = sl->idx - 1;
            if (set->lens[k] == len && memcmp(set->v[k], s, len) == 0) {
                *found = 1;
                return i;
            }
        }
        i = (i + 1) & set->mask;
    }
    return i;
}

static int index_build(bl_strset_t *set)
{
    size_t size = 16;
    size_t keep = 0;

    while (size < set->n * 2 + 2)
        size *= 2;
    free(set->slots);
    set->slots = calloc(size, sizeof(slot_t));
    if (set->slots == NULL)
        return -1;
    set->mask = size - 1;
    /* Duplicates are dropped here, keeping the first. */
    for (size_t k = 0; k < set->n; k++) {
        uint64_t h = bl_hash(set->v[k], set->lens[k]);
        int found;
        size_t i = probe(set, set->v[k], set->lens[k], h, &found);
        if (found)
            continue;
        set->v[keep] = set->v[k];
        set->lens[keep] = set->lens[k];
        set->slots[i].hash = (uint32_t)h;
        set->slots[i].idx = (uint32_t)keep + 1;
        keep++;
    }
    set->n = keep;
    return 0;
}

int bl_strset_add(bl_strset_t *set, const char *s, size_t len)
{
    char *d;

    if (len > UINT32_MAX || set->n >= UINT32_MAX - 1)
        return -1;
    if (set->n == set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 64;
        const char **v = realloc(set->v, ncap * sizeof(*v));
        uint32_t *l;
        if (v == NULL)
            return -1;
        set->v = v;
        l = realloc(set->lens, ncap * sizeof(*l));
        if (l == NULL)
            return -1;
        set->lens = l;
        set->cap = ncap;
    }
    d = chunk_copy(set, s, len);
    if (d == NULL)
        return -1;
    set->v[set->n] = d;
    set->lens[set->n] = (uint32_t)len;
    set->n++;
    set->finished = 0;
    return 0;
}

int bl_strset_finish(bl_strset_t *set)
{
    if (index_build(set) < 0)
        return -1;
    set->finished = 1;
    return 0;
}

const char *bl_strset_find(const bl_strset_t *set, const char *s, size_t len)
{
    int found;
    size_t i;

    if (set == NULL || set->n == 0)
        return NULL;
    if (!set->finished) {
        /* Not frozen yet (a caller bug): correct, if slow. */
        for (size_t k = 0; k < set->n; k++)
            if (set->lens[k] == len && memcmp(set->v[k], s, len) == 0)
                return set->v[k];
        return NULL;
    }
    i = probe(set, s, len, bl_hash(s, len), &found);
    return found ? set->v[set->slots[i].idx - 1] : NULL;
}

size_t bl_strset_count(const bl_strset_t *set)
{
    return set ? set->n : 0;
}

void bl_strset_free(bl_strset_t *set)
{
    if (set == NULL)
        return;
    while (set->chunks) {
        chunk_t *c = set->chunks;
        set->chunks = c->next;
        free(c);
    }
    free(set->v);
    free(set->lens);
    free(set->slots);
    free(set);
}
