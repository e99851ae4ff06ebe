/* abi_fixture.c - small plugins the loader must refuse (or accept), one per -D flag. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <portcullis/plugin.h>

/*
 * Built as t/plugins/abi/NAME.so with FIX_NAME set to NAME and one of:
 *   FIX_GOOD       a correct plugin (marker FILE: init() writes FILE)
 *   FIX_MAJOR2     the entry symbol and descriptor of ABI 2
 *   FIX_MINOR_NEW  ABI 1.(host minor + 1), with a longer descriptor
 *   FIX_SMALL      a descriptor shorter than ABI 1.0's
 *   FIX_BADNAME    a descriptor that names another plugin
 *   FIX_NOENTRY    no entry symbol at all
 *   FIX_NODESC     an entry function that returns NULL
 *   FIX_CYCLE_A/B  provide "svc_a"/"svc_b" and require the other one
 */

#ifndef FIX_NAME
#error FIX_NAME must be set
#endif

PC_PLUGIN_HOST_DEFINE;
#define host pc_plugin_host_

typedef struct fix_conf {
    char *marker;
} fix_conf_t;

static const pc_directive_t fix_directives[] = {
    {"marker", 1, 1, 0, PC_DIR_PATH, offsetof(fix_conf_t, marker), NULL, NULL},
    PC_DIRECTIVE_END,
};

static void *fix_conf_create(pc_plugin_t *self)
{
    return calloc(1, sizeof(fix_conf_t));
}

static void fix_conf_free(pc_plugin_t *self, void *obj)
{
    fix_conf_t *c = obj;

    free(c->marker);
    free(c);
}

static int fix_init(pc_plugin_t *self, void *obj, char *err, size_t errlen)
{
    fix_conf_t *c = obj;

    if (c->marker) {
        int fd = open(c->marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (write(fd, "init\n", 5) < 0)
                snprintf(err, errlen, "cannot write the marker");
            close(fd);
        }
    }
    host->log(self, PC_LOG_INFO, "fixture " FIX_NAME " initialised");
    return 0;
}

#if defined(FIX_CYCLE_A)
static const pc_service_ref_t fix_provides[] = {{"svc_a", 1}, {NULL, 0}};
static const pc_service_ref_t fix_requires[] = {{"svc_b", 1}, {NULL, 0}};
#elif defined(FIX_CYCLE_B)
static const pc_service_ref_t fix_provides[] = {{"svc_b", 1}, {NULL, 0}};
static const pc_service_ref_t fix_requires[] = {{"svc_a", 1}, {NULL, 0}};
#else
#define fix_provides NULL
#define fix_requires NULL
#endif

/* A descriptor with room after it, as a newer minor would append. */
static const struct {
    pc_plugin_desc_t d;
    void *appended[4];
} fix = {
    .d = {
#if defined(FIX_MAJOR2)
        .abi_major = 2,
#else
        .abi_major = PC_ABI_MAJOR,
#endif
#if defined(FIX_MINOR_NEW)
        .abi_minor = PC_ABI_MINOR + 1,
        .size = sizeof(pc_plugin_desc_t) + 4 * sizeof(void *),
#elif defined(FIX_SMALL)
        .abi_minor = PC_ABI_MINOR,
        .size = offsetof(pc_plugin_desc_t, shutdown),
#else
        .abi_minor = PC_ABI_MINOR,
        .size = sizeof(pc_plugin_desc_t),
#endif
#if defined(FIX_BADNAME)
        .name = "someone_else",
#else
        .name = FIX_NAME,
#endif
        .version = "0.1",
        .description = "a loader test fixture",
        .provides = fix_provides,
        .requires = fix_requires,
        .directives = fix_directives,
        .conf_create = fix_conf_create,
        .conf_free = fix_conf_free,
        .init = fix_init,
    },
};

#if defined(FIX_MAJOR2)
/* What a plugin built against a future ABI 2 SDK exports. */
__attribute__((visibility("default"))) const pc_plugin_desc_t *
portcullis_plugin_abi_2(const pc_host_t *h);
const pc_plugin_desc_t *portcullis_plugin_abi_2(const pc_host_t *h)
{
    pc_plugin_host_ = h;
    return &fix.d;
}
#elif defined(FIX_NOENTRY)
/* A shared object with some other export, but no entry function. */
__attribute__((visibility("default"))) int not_a_plugin(void);
int not_a_plugin(void)
{
    return (int)sizeof(fix);
}
#elif defined(FIX_NODESC)
__attribute__((visibility("default"))) const pc_plugin_desc_t *PC_ENTRY(const pc_host_t *h);
const pc_plugin_desc_t *PC_ENTRY(const pc_host_t *h)
{
    pc_plugin_host_ = h;
    return h ? NULL : &fix.d;  /* the host passes its table: always NULL */
}
#else
PC_PLUGIN(fix.d)
#endif
