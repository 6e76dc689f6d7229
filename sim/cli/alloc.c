/*
 * alloc.c - every allocation of the fleetsim binary checked in one place.
 * The binary is linked with `--wrap` for malloc, calloc, realloc and strdup
 * (sim/CMakeLists.txt), so each call from fleetsim's own code (sim/,
 * policies/, reports/, monitoring/, realbench/) comes here first; one that
 * fails ends the program with a message and CLI_EXIT_NO_MEMORY instead of a
 * NULL that a caller might not test. The loader refuses scenarios that
 * cannot fit this machine before a run starts (scenario.c, check_size); this
 * catches what that estimate does not, e.g. a machine whose memory is
 * limited below its physical size (ulimit -v, a container's limit).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);

static _Noreturn void out_of_memory(size_t n, size_t size)
{
    /* no stdio buffers: they may need the memory that is missing */
    char msg[256];
    int len;
    if (n != 1 && size && n > (size_t)-1 / size)
        len = snprintf(msg, sizeof msg, "fleetsim: out of memory: %zu x %zu bytes\n", n, size);
    else
        len = snprintf(msg, sizeof msg,
                       "fleetsim: out of memory: %zu bytes could not be allocated (the run "
                       "needs more memory than this process may use)\n",
                       n * size);
    if (len > 0 && write(STDERR_FILENO, msg, (size_t)len) < 0)
        len = 0;
    _exit(CLI_EXIT_NO_MEMORY);
}

void *__wrap_malloc(size_t size)
{
    void *p = __real_malloc(size);
    if (!p && size)
        out_of_memory(1, size);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = __real_calloc(n, size);
    if (!p && n && size)
        out_of_memory(n, size);
    return p;
}

void *__wrap_realloc(void *old, size_t size)
{
    void *p = __real_realloc(old, size);
    if (!p && size)
        out_of_memory(1, size);
    return p;
}

char *__wrap_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = __wrap_malloc(len);
    return memcpy(p, s, len);
}
