/* fuzz_ctl_args.c - fuzz target: the control socket's command splitter (core/control_args.c). */
#include <stdint.h>
#include <string.h>

#include "control_args.h"
#include "fuzz.h"

/*
 * What the control socket does with a connection's bytes (core/control.c,
 * on_ctl_read and ctl_run): the line ends at the first LF, a CR before it
 * is dropped, more than CTL_LINE_MAX bytes or a control character other
 * than tab refuse the command; then control_split_args() cuts it into at
 * most CTL_ARGS_MAX words. The limits are copied here (control.c keeps them
 * private).
 *
 * Invariants: the words lie inside the line, in order, without overlap,
 * each NUL-terminated before the next starts; a line without '"' splits
 * like a split on blanks; writing the words back each in quotes (with \"
 * and \\) and splitting again gives the same words (what `portcullis ctl`
 * sends for its argv is read back as that argv).
 */

#define CTL_LINE_MAX 4096
#define CTL_ARGS_MAX 64

static int split(char *line, char **argv, const char **why)
{
    *why = NULL;
    return control_split_args(line, argv, CTL_ARGS_MAX, why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t len = nl ? (size_t)(nl - data) : size;
    char *line, *copy, *requoted, *argv[CTL_ARGS_MAX + 1], *argv2[CTL_ARGS_MAX + 1];
    const char *why;
    size_t o = 0;
    int argc, argc2;

    if (len && data[len - 1] == '\r')
        len--;
    if (len > CTL_LINE_MAX)
        return 0;  /* "command line too long" */
    for (size_t i = 0; i < len; i++)
        if (data[i] < 0x20 && data[i] != '\t')
            return 0;  /* "control character in the command" */
    /* Exactly the line and its NUL, so a read past it is an ASan report. */
    line = fuzz_strndup(data, len);
    copy = fuzz_strndup(data, len);
    argc = split(line, argv, &why);
    if (argc < 0) {
        FUZZ_CHECK(argc == -1 && why != NULL, "failure %d without a reason", argc);
        FUZZ_CHECK(strcmp(why, "too many arguments") == 0 ||
                       strcmp(why, "unterminated quote") == 0 ||
                       strcmp(why, "junk after a closing quote") == 0,
                   "unknown reason '%s'", why);
        goto done;
    }
    FUZZ_CHECK(argc <= CTL_ARGS_MAX, "%d words", argc);
    for (int i = 0; i < argc; i++) {
        size_t wl;
        FUZZ_CHECK(argv[i] >= line && argv[i] <= line + len, "word %d outside the line", i);
        wl = strnlen(argv[i], (size_t)(line + len - argv[i]) + 1);
        FUZZ_CHECK(argv[i] + wl <= line + len, "word %d runs past the line", i);
        if (i > 0)
            FUZZ_CHECK(argv[i] > argv[i - 1] + strlen(argv[i - 1]),
                       "word %d overlaps word %d", i, i - 1);
    }
    if (memchr(copy, '"', len) == NULL) {
        /* Plain blanks-separated words. */
        int k = 0;
        for (char *t = strtok(copy, " \t"); t; t = strtok(NULL, " \t"), k++) {
            FUZZ_CHECK(k < argc, "fewer words than blank-separated tokens");
            FUZZ_CHECK(strcmp(t, argv[k]) == 0, "word %d is '%s', token '%s'", k, argv[k],
                       t);
        }
        FUZZ_CHECK(k == argc, "%d words, %d blank-separated tokens", argc, k);
    }

    /* Each word quoted, escapes for '"' and '\'. */
    requoted = malloc(2 * len + 3 * (size_t)argc + 1);
    if (requoted == NULL)
        abort();
    for (int i = 0; i < argc; i++) {
        if (i)
            requoted[o++] = ' ';
        requoted[o++] = '"';
        for (const char *s = argv[i]; *s; s++) {
            if (*s == '"' || *s == '\\')
                requoted[o++] = '\\';
            requoted[o++] = *s;
        }
        requoted[o++] = '"';
    }
    requoted[o] = '\0';
    argc2 = split(requoted, argv2, &why);
    FUZZ_CHECK(argc2 == argc, "requoted: %d words (%s), first time %d", argc2,
               why ? why : "no error", argc);
    for (int i = 0; i < argc; i++)
        FUZZ_CHECK(strcmp(argv[i], argv2[i]) == 0, "requoted word %d: '%s', was '%s'", i,
                   argv2[i], argv[i]);
    free(requoted);
done:
    free(line);
    free(copy);
    return 0;
}
