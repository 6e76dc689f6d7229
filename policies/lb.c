/*
 * lb.c - the only code that calls a load-balancing policy's ops.
 *
 * Optional methods (init, on_done, destroy) are handled here, and every pick
 * is checked against the view: a policy must return an eligible server in
 * range, or -1 only when no server is eligible. Anything else is a policy
 * bug. Debug builds stop on it (assert); release builds report it once on
 * stderr and route to the first eligible server instead, because returning
 * -1 there would reject a request the pool could have served and skew the
 * results without a trace.
 */
#include "lb.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lb {
    const struct lb_ops *ops;
    void *state;
    int bad_pick_reported;   /* the stderr report is printed once per instance */
};

const struct lb_ops *lb_find(const char *name)
{
    if (!name)
        return NULL;
    for (const struct lb_ops *const *p = lb_registry; *p; p++)
        if (strcmp((*p)->name, name) == 0)
            return *p;
    return NULL;
}

char *lb_names(char *buf, size_t len)
{
    size_t used = 0;

    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    for (const struct lb_ops *const *p = lb_registry; *p && used < len; p++) {
        int w = snprintf(buf + used, len - used, "%s%s",
                         p == lb_registry ? "" : ", ", (*p)->name);
        if (w < 0)
            break;
        used += (size_t)w;   /* past len on truncation: the loop stops */
    }
    return buf;
}

lb *lb_create_ops(const struct lb_ops *ops, int n_servers, gsl_rng *rng)
{
    lb *b;

    if (!ops || !ops->name || !ops->pick || n_servers < 0)
        return NULL;
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ops = ops;
    if (ops->init) {
        b->state = ops->init(n_servers, rng);
        if (!b->state) {
            free(b);
            return NULL;
        }
    }
    return b;
}

lb *lb_create(const char *name, int n_servers, gsl_rng *rng)
{
    return lb_create_ops(lb_find(name), n_servers, rng);
}

static int first_eligible(const lb_view *view)
{
    for (int i = 0; i < view->n; i++)
        if (lb_server_eligible(&view->servers[i]))
            return i;
    return -1;
}

int lb_pick(lb *b, const lb_view *view, const lb_request *req)
{
    int s, fallback;

    assert(b && view);
    assert(view->n == 0 || view->servers);
    if (view->n <= 0)
        return -1;
    s = b->ops->pick(b->state, view, req);
    if (s >= 0 && s < view->n && lb_server_eligible(&view->servers[s]))
        return s;
    fallback = first_eligible(view);   /* O(n), only off the common path */
    if (s == -1 && fallback == -1)
        return -1;
    assert(!"lb policy returned an ineligible server, or -1 with one eligible");
    if (!b->bad_pick_reported) {
        b->bad_pick_reported = 1;
        fprintf(stderr, "fleetsim: lb policy %s picked server %d of %d, which "
                "is not eligible; using %d instead (reported once)\n",
                b->ops->name, s, view->n, fallback);
    }
    return fallback;
}

void lb_on_done(lb *b, const lb_view *view, int server, double latency_s, int ok)
{
    assert(b && view);
    assert(server >= 0 && server < view->n);
    if (!b->ops->on_done || server < 0 || server >= view->n)
        return;
    b->ops->on_done(b->state, view, server, latency_s, ok);
}

void lb_destroy(lb *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b->state);
    else
        free(b->state);
    free(b);
}

const char *lb_name(const lb *b)
{
    return b ? b->ops->name : NULL;
}
