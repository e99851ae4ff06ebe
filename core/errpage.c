/* errpage.c - HTML pages made by the proxy: errors and block pages, from templates. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "errpage.h"
#include "http_msg.h"

const char errpage_default_template[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>{{status}} {{title}}</title>\n"
    "<style>body{font-family:sans-serif;max-width:40em;margin:3em auto;"
    "color:#222}h1{font-size:1.4em}dt{font-weight:bold}"
    "code{word-break:break-all}</style>\n"
    "</head><body>\n"
    "<h1>{{status}} {{title}}</h1>\n"
    "<p>{{message}}</p>\n"
    "<dl>\n"
    "<dt>URL</dt><dd><code>{{url}}</code></dd>\n"
    "<dt>Error</dt><dd>{{error}}</dd>\n"
    "<dt>Your address</dt><dd>{{client}}</dd>\n"
    "<dt>Time</dt><dd>{{time}}</dd>\n"
    "</dl>\n"
    "<hr><p>Portcullis {{version}} on {{proxy}}</p>\n"
    "</body></html>\n";

const char errpage_block_template[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>Blocked</title>\n"
    "<style>body{font-family:sans-serif;max-width:40em;margin:3em auto;"
    "color:#222}h1{font-size:1.4em;color:#a00}dt{font-weight:bold}"
    "code{word-break:break-all}</style>\n"
    "</head><body>\n"
    "<h1>Access blocked</h1>\n"
    "<p>{{message}}</p>\n"
    "<dl>\n"
    "<dt>Reason</dt><dd>{{reason}}</dd>\n"
    "<dt>Category</dt><dd>{{category}}</dd>\n"
    "{{#until}}<dt>Banned until</dt><dd>{{until}}</dd>\n{{/until}}"
    "<dt>Blocked by</dt><dd>{{plugin}}</dd>\n"
    "<dt>URL</dt><dd><code>{{url}}</code></dd>\n"
    "<dt>Your address</dt><dd>{{client}}</dd>\n"
    "<dt>Time</dt><dd>{{time}}</dd>\n"
    "</dl>\n"
    "<hr><p>Portcullis {{version}} on {{proxy}}</p>\n"
    "</body></html>\n";

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 508: return "Loop Detected";
    default: return "Unknown";
    }
}

static void add_escaped(strbuf_t *s, const char *v)
{
    for (; v && *v; v++) {
        switch (*v) {
        case '<': strbuf_adds(s, "&lt;"); break;
        case '>': strbuf_adds(s, "&gt;"); break;
        case '&': strbuf_adds(s, "&amp;"); break;
        case '"': strbuf_adds(s, "&quot;"); break;
        case '\'': strbuf_adds(s, "&#39;"); break;
        default: strbuf_add(s, v, 1);
        }
    }
}

static void add_var(strbuf_t *s, const char *name, size_t len,
                    const errpage_vars_t *v)
{
#define IS(n) (len == sizeof(n) - 1 && memcmp(name, n, len) == 0)
    if (IS("status")) {
        strbuf_addf(s, "%d", v->status);
    } else if (IS("title")) {
        add_escaped(s, v->title ? v->title : http_status_text(v->status));
    } else if (IS("message")) {
        add_escaped(s, v->message);
    } else if (IS("error")) {
        add_escaped(s, v->error);
    } else if (IS("url")) {
        add_escaped(s, v->url);
    } else if (IS("client")) {
        add_escaped(s, v->client);
    } else if (IS("proxy")) {
        add_escaped(s, v->proxy);
    } else if (IS("version")) {
        add_escaped(s, PACKAGE_VERSION);
    } else if (IS("plugin")) {
        add_escaped(s, v->plugin);
    } else if (IS("reason")) {
        add_escaped(s, v->reason);
    } else if (IS("category")) {
        add_escaped(s, v->category);
    } else if (IS("until")) {
        add_escaped(s, v->until);
    } else if (IS("time")) {
        char buf[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
        add_escaped(s, buf);
    }
#undef IS
}

char *errpage_render(const char *tmpl, const errpage_vars_t *v, size_t *len)
{
    strbuf_t s;
    const char *p = tmpl;

    strbuf_init(&s);
    while (*p) {
        const char *open = strstr(p, "{{");
        const char *close;
        if (open == NULL) {
            strbuf_adds(&s, p);
            break;
        }
        close = strstr(open + 2, "}}");
        if (close == NULL) {
            strbuf_adds(&s, p);
            break;
        }
        strbuf_add(&s, p, (size_t)(open - p));
        if (open[2] == '#') {
            /* {{#name}}...{{/name}}: the part only when name has a value
             * (a row of the page that would otherwise be empty). */
            const char *name = open + 3;
            size_t nlen = (size_t)(close - name);
            strbuf_t val;
            int empty;
            strbuf_init(&val);
            add_var(&val, name, nlen, v);
            empty = val.len == 0;
            strbuf_free(&val);
            p = close + 2;
            if (empty) {
                char end[80];
                const char *e;
                snprintf(end, sizeof(end), "{{/%.*s}}", (int)(nlen < 64 ? nlen : 64), name);
                e = strstr(p, end);
                p = e ? e + strlen(end) : p + strlen(p);
            }
            continue;
        }
        if (open[2] != '/')   /* {{/name}} ends a section: nothing to show */
            add_var(&s, open + 2, (size_t)(close - open - 2), v);
        p = close + 2;
    }
    if (s.failed || s.p == NULL) {
        strbuf_free(&s);
        return NULL;
    }
    *len = s.len;
    return s.p;
}
