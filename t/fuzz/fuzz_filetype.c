/* fuzz_filetype.c - fuzz target: download names and types (plugins/banlist/filetype.c): Content-Disposition, URL paths, Content-Type. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "banlist.h"
#include "fuzz.h"

/*
 * The first byte picks the function and an output size; the rest is its
 * input, as a response header value or a request path:
 *
 *   0  bl_disposition_filenames (Content-Disposition)
 *   1  bl_path_filename (the URL path of a download)
 *   2  bl_mime_of (Content-Type)
 *   3  bl_ext_last and bl_ext_banned (a file name)
 *
 * Outputs go to heap buffers of exactly the size passed, so a write past
 * them is an ASan report. Invariants: outputs are NUL-terminated within
 * their buffers; a file name has no directory part ('/' or '\'); the
 * count of Content-Disposition names matches what was filled in; a media
 * type is
 * lowercase, holds a '/' and no parameter; the last extension is
 * lowercase without a dot, and a set banning it bans the name.
 */

static char *buffer(size_t n)
{
    char *b = malloc(n);

    if (b == NULL)
        abort();
    memset(b, 'X', n);
    return b;
}

static void check_name(const char *s, size_t outlen, const char *what)
{
    size_t n = strnlen(s, outlen);

    FUZZ_CHECK(n < outlen, "%s not NUL-terminated within %zu bytes", what, outlen);
    FUZZ_CHECK(memchr(s, '/', n) == NULL && memchr(s, '\\', n) == NULL,
               "%s '%s' has a directory part", what, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    unsigned b = fuzz_byte(&in);
    size_t outlen = 1 + (b >> 2) * 4;  /* 1..253 */
    char *v, *o1, *o2;

    if (in.n > 1 << 16)
        return 0;
    /* Exactly the input (a read past its length is an ASan report). */
    v = malloc(in.n + 1);
    if (v == NULL)
        abort();
    memcpy(v, in.p, in.n);
    v[in.n] = '\0';
    o1 = buffer(outlen);
    o2 = buffer(outlen);
    switch (b & 3) {
    case 0: {
        int n = bl_disposition_filenames(v, in.n, o1, o2, outlen);
        FUZZ_CHECK(n >= 0 && n <= 2, "%d file names", n);
        check_name(o1, outlen, "filename");
        check_name(o2, outlen, "second filename");
        if (n < 2)
            FUZZ_CHECK(o2[0] == '\0', "a second name '%s' with %d names", o2, n);
        if (n == 0)
            FUZZ_CHECK(o1[0] == '\0', "a name '%s' without a parameter", o1);
        break;
    }
    case 1:
        if (memchr(v, '\0', in.n) == NULL) {
            int rc = bl_path_filename(v, o1, outlen);
            check_name(o1, outlen, "path file name");
            FUZZ_CHECK(rc == 0 ? o1[0] != '\0' : o1[0] == '\0',
                       "result %d with the name '%s'", rc, o1);
        }
        break;
    case 2:
        /* A header value has no NUL (llhttp refuses one). */
        if (memchr(v, '\0', in.n) == NULL && bl_mime_of(v, in.n, o1, outlen) == 0) {
            size_t n = strnlen(o1, outlen);
            FUZZ_CHECK(n < outlen && n > 0, "media type not terminated");
            FUZZ_CHECK(strchr(o1, '/') != NULL, "media type '%s' without '/'", o1);
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(!(o1[i] >= 'A' && o1[i] <= 'Z') && o1[i] != ';' &&
                               o1[i] != ' ' && o1[i] != '\t' && o1[i] != ',',
                           "media type '%s' not lowercase or with a parameter", o1);
        }
        break;
    case 3:
        if (memchr(v, '\0', in.n) == NULL) {
            bl_strset_t *set;
            bl_ext_last(v, o1, outlen);
            FUZZ_CHECK(strnlen(o1, outlen) < outlen, "extension not terminated");
            for (const char *p = o1; *p; p++)
                FUZZ_CHECK(*p != '.' && !(*p >= 'A' && *p <= 'Z'),
                           "extension '%s' of '%s'", o1, v);
            if (o1[0] && strlen(o1) + 1 < outlen && strlen(o1) < 255) {
                set = bl_strset_new();
                if (set == NULL || bl_strset_add(set, o1, strlen(o1)) < 0 ||
                    bl_strset_finish(set) < 0)
                    abort();
                FUZZ_CHECK(bl_ext_banned(set, NULL, v) != NULL,
                           "'%s' has the extension '%s', but banning it misses it", v, o1);
                bl_strset_free(set);
            }
        }
        break;
    }
    free(v);
    free(o1);
    free(o2);
    return 0;
}
