/* errpage.h - HTML pages made by the proxy: errors and block pages, from templates. */
#ifndef PC_ERRPAGE_H
#define PC_ERRPAGE_H

#include <stddef.h>

/*
 * A template is HTML with {{name}} placeholders; every value is
 * HTML-escaped when substituted, so nothing a client or an origin sends can
 * inject markup. Unknown names expand to nothing. Names:
 *   status, title, message, error, url, client, time, proxy, version,
 *   plugin, reason, category, until
 * {{#name}}...{{/name}} keeps the part between only when name expands to
 * something (the block page's "Banned until" row); sections do not nest.
 */
typedef struct errpage_vars {
    int status;
    const char *title;      /* "Bad Gateway" */
    const char *message;    /* one sentence for the user */
    const char *error;      /* ERR_CONNECT_FAIL */
    const char *url;
    const char *client;
    const char *proxy;      /* visible_hostname */
    const char *plugin;
    const char *reason;
    const char *category;
    const char *until;
} errpage_vars_t;

/* The built-in templates for errors and for blocks (used when block_page
 * is not set). */
extern const char errpage_default_template[];
extern const char errpage_block_template[];

/* Renders tmpl; returns a malloc'ed NUL-terminated page (caller frees) and
 * its length, or NULL when out of memory. */
char *errpage_render(const char *tmpl, const errpage_vars_t *v, size_t *len);

/* The standard reason phrase of a status ("Not Found"), or "Unknown". */
const char *http_status_text(int status);

#endif
