/* fuzz_banlist_lists.c - fuzz target: the banlist's list files (plugins/banlist/lists.c) into its matchers (sites, regex, strset). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "banlist.h"
#include "fuzz.h"
#include "netaddr.h"
#include "urlnorm.h"

/*
 * bl_list_read() reads a file, so the input becomes a file in a temporary
 * directory. Each entry goes where the plugin's conf.c sends the entries of
 * that kind of list (add_entry() there is static and needs the host
 * table, so its switch is copied here): an address set, a site list, a
 * regex list, the extension or MIME type set.
 *
 * The first byte picks the kind (0 clients, 1 sites, 2 URL patterns, 3
 * user-agent patterns, 4 extensions, 5 MIME types) and, bit 3, list_errors
 * skip; the rest is the list file, a NUL, and subjects to look up (one a
 * line).
 *
 * Invariants: an entry as handed to the callback is one line, trimmed,
 * not empty, not a comment; after a load that succeeds (bad lines not
 * skipped), what was listed is found: every site entry matches its own
 * normalised host, every extension bans "file.EXT", every MIME type is
 * found; a regex list matches a subject exactly when one of its patterns
 * does on its own (the combined alternation regex.c builds is only a
 * faster way to the same answer).
 */

enum kind { K_CLIENTS, K_SITES, K_URLS, K_UA, K_EXT, K_MIME, K_N };

typedef struct load {
    enum kind kind;
    netaddr_set_t *clients;
    bl_sites_t *sites;
    bl_relist_t *re;
    bl_strset_t *set;
    long entries;
} load_t;

static char dir[4096], path[4200];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(dir, sizeof(dir), "%s", fuzz_tmpdir());
    snprintf(path, sizeof(path), "%s/list", dir);
    return 0;
}

/* conf.c's add_entry(), for one list of each kind. */
static int add_entry(void *arg, char *text, long line, char *err, size_t errlen)
{
    load_t *ld = arg;
    char buf[URLNORM_HOST_MAX + 1], where[64];
    size_t n = strlen(text);

    FUZZ_CHECK(n > 0, "empty entry on line %ld", line);
    FUZZ_CHECK(strchr(text, '\n') == NULL, "entry of more than one line");
    FUZZ_CHECK(text[0] != ' ' && text[0] != '\t' && text[n - 1] != ' ' &&
                   text[n - 1] != '\t' && text[n - 1] != '\r',
               "entry '%s' not trimmed", text);
    FUZZ_CHECK(text[0] != '#', "comment '%s' handed on as an entry", text);
    ld->entries++;
    switch (ld->kind) {
    case K_CLIENTS:
        return netaddr_set_add_text(ld->clients, text, err, errlen);
    case K_SITES:
        return bl_sites_add(ld->sites, text, err, errlen);
    case K_URLS:
    case K_UA:
        snprintf(where, sizeof(where), "list:%ld", line);
        return bl_relist_add(ld->re, text, where, err, errlen);
    case K_EXT:
        if (bl_ext_normalise(text, buf, sizeof(buf), err, errlen) < 0)
            return -1;
        break;
    case K_MIME:
        if (bl_mime_normalise(text, buf, sizeof(buf), err, errlen) < 0)
            return -1;
        break;
    default:
        abort();
    }
    if (bl_strset_add(ld->set, buf, strlen(buf)) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void warn(void *arg, const char *msg)
{
    (void)arg;
    FUZZ_CHECK(strchr(msg, '\n') == NULL, "warning of more than one line: %s", msg);
}

/* What the list promised for one entry line, checked against the built
 * matchers (entry as bl_list_read hands it). */
static void check_entry(const load_t *ld, const char *entry)
{
    char buf[URLNORM_HOST_MAX + 1], err[512];

    switch (ld->kind) {
    case K_SITES:
        if (bl_is_cidr(entry))
            break;
        FUZZ_CHECK(bl_site_normalise(entry, buf, sizeof(buf), err, sizeof(err)) == 0,
                   "site '%s' loaded but does not normalise: %s", entry, err);
        FUZZ_CHECK(bl_sites_match(ld->sites, buf) != NULL,
                   "site '%s' is listed but '%s' does not match it", entry, buf);
        break;
    case K_EXT: {
        char name[300];
        FUZZ_CHECK(bl_ext_normalise(entry, buf, sizeof(buf), err, sizeof(err)) == 0,
                   "extension '%s' loaded but does not normalise", entry);
        for (const char *p = buf; *p; p++)
            FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z') && *p != '.' && *p != '/',
                       "extension '%s' stored as '%s'", entry, buf);
        snprintf(name, sizeof(name), "file.%s", buf);
        FUZZ_CHECK(bl_ext_banned(ld->set, NULL, name) != NULL,
                   "extension '%s' is listed but '%s' is not banned", entry, name);
        break;
    }
    case K_MIME: {
        char mime[300];
        FUZZ_CHECK(bl_mime_normalise(entry, buf, sizeof(buf), err, sizeof(err)) == 0,
                   "MIME type '%s' loaded but does not normalise", entry);
        if (strlen(buf) + 2 > sizeof(mime))
            break;
        snprintf(mime, sizeof(mime), "%s", buf);
        if (strcmp(strchr(mime, '/'), "/*") == 0)
            strcpy(strchr(mime, '/'), "/x-anything");
        FUZZ_CHECK(bl_mime_find(ld->set, mime) != NULL,
                   "MIME type '%s' is listed but '%s' is not found", entry, mime);
        break;
    }
    default:
        break;
    }
}

/* One bl_relist per pattern: no alternation, the reference answer. */
static int re_reference(const load_t *ld, bl_relist_t **one, size_t n, const char *s,
                        size_t len)
{
    (void)ld;
    for (size_t i = 0; i < n; i++)
        if (bl_relist_match(one[i], s, len, NULL))
            return 1;
    return 0;
}

static int collect_patterns(void *arg, char *text, long line, char *err, size_t errlen)
{
    bl_relist_t ***v = arg;
    size_t n = 0;
    bl_relist_t *l;

    (void)line;
    while ((*v)[n])
        n++;
    l = bl_relist_new();
    if (l == NULL || bl_relist_add(l, text, "one", err, errlen) < 0 ||
        bl_relist_finish(l, err, errlen) < 0)
        abort();  /* it compiled in the list */
    *v = realloc(*v, (n + 2) * sizeof(**v));
    if (*v == NULL)
        abort();
    (*v)[n] = l;
    (*v)[n + 1] = NULL;
    return 0;
}

static int recheck(void *arg, char *text, long line, char *err, size_t errlen)
{
    (void)line, (void)err, (void)errlen;
    check_entry(arg, text);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    unsigned b = fuzz_byte(&in);
    load_t ld;
    const uint8_t *list, *subjects;
    size_t llen, slen;
    char err[1024];
    long n;
    int skip = (b >> 3) & 1;

    if (size > 1 << 17)
        return 0;
    memset(&ld, 0, sizeof(ld));
    ld.kind = (enum kind)(b % K_N);
    list = fuzz_part(&in, 0, &llen);
    subjects = in.p;
    slen = in.n;
    fuzz_write_file(dir, "list", list, llen);
    ld.clients = netaddr_set_new();
    ld.sites = bl_sites_new();
    ld.re = bl_relist_new();
    ld.set = bl_strset_new();
    if (!ld.clients || !ld.sites || !ld.re || !ld.set)
        abort();
    err[0] = '\0';
    n = bl_list_read(path,
                     ld.kind == K_URLS || ld.kind == K_UA ? BL_COMMENT_LINE : BL_COMMENT_ANY,
                     add_entry, &ld, skip, warn, NULL, err, sizeof(err));
    if (n < 0) {
        FUZZ_CHECK(err[0] && strchr(err, '\n') == NULL, "bad message: '%s'", err);
        goto done;
    }
    FUZZ_CHECK(n <= ld.entries, "%ld entries counted, %ld seen", n, ld.entries);
    FUZZ_CHECK(netaddr_set_finish(ld.clients) == 0 && bl_sites_finish(ld.sites) == 0 &&
                   bl_strset_finish(ld.set) == 0 &&
                   bl_relist_finish(ld.re, err, sizeof(err)) == 0,
               "finishing the lists failed: %s", err);
    if (!skip) {
        /* Read the file again, checking each entry against the matchers. */
        FUZZ_CHECK(bl_list_read(path,
                                ld.kind == K_URLS || ld.kind == K_UA ? BL_COMMENT_LINE
                                                                     : BL_COMMENT_ANY,
                                recheck, &ld, 0, NULL, NULL, err, sizeof(err)) == n,
                   "the second read of the list differs");
    }
    if (ld.kind == K_URLS || ld.kind == K_UA) {
        bl_relist_t **one = calloc(1, sizeof(*one));
        size_t none = 0;
        fuzz_in_t s = {subjects, slen};
        if (one == NULL)
            abort();
        if (!skip && n > 0) {
            bl_list_read(path, BL_COMMENT_LINE, collect_patterns, &one, 0, NULL, NULL, err,
                         sizeof(err));
            while (one[none])
                none++;
        }
        while (s.n > 0 && none > 0) {
            size_t l;
            const char *subj = (const char *)fuzz_part(&s, '\n', &l);
            int got = bl_relist_match(ld.re, subj, l, NULL);
            int want = re_reference(&ld, one, none, subj, l);
            FUZZ_CHECK(got == want, "subject '%.*s': the list says %d, its patterns %d",
                       (int)l, subj, got, want);
        }
        for (size_t i = 0; i < none; i++)
            bl_relist_free(one[i]);
        free(one);
    } else {
        fuzz_in_t s = {subjects, slen};
        while (s.n > 0) {
            size_t l;
            const uint8_t *p = fuzz_part(&s, '\n', &l);
            char *subj = fuzz_strndup(p, l), host[URLNORM_HOST_MAX + 1], mime[256];
            const char *why;
            netaddr_t a;
            if (ld.kind == K_CLIENTS && netaddr_parse(subj, &a) == 0)
                (void)netaddr_set_contains(ld.clients, &a);
            if (ld.kind == K_SITES && urlnorm_host(subj, l, host, sizeof(host), &why) == 0)
                (void)bl_sites_match(ld.sites, host);
            if (ld.kind == K_EXT)
                (void)bl_ext_banned(ld.set, NULL, subj);
            if (ld.kind == K_MIME && bl_mime_of(subj, l, mime, sizeof(mime)) == 0)
                (void)bl_mime_find(ld.set, mime);
            free(subj);
        }
    }
done:
    netaddr_set_free(ld.clients);
    bl_sites_free(ld.sites);
    bl_relist_free(ld.re);
    bl_strset_free(ld.set);
    return 0;
}
