/* list.h - an intrusive doubly-linked list (header only). */
#ifndef PC_LIST_H
#define PC_LIST_H

#include <stddef.h>

typedef struct list {
    struct list *prev, *next;
} list_t;

#define LIST_ENTRY(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void list_init(list_t *l)
{
    l->prev = l->next = l;
}

static inline int list_empty(const list_t *l)
{
    return l->next == l;
}

static inline int list_linked(const list_t *n)
{
    return n->next != NULL && n->next != n;
}

static inline void list_insert_tail(list_t *l, list_t *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static inline void list_remove(list_t *n)
{
    if (n->next == NULL || n->next == n)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#endif
