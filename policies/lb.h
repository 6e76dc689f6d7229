/*
 * lb.h - load-balancing policies behind one ops struct, chosen by name.
 *
 * A policy sees a read-only view of one pool's servers (never SimGrid) and
 * picks the server a request goes to. The engine calls only the wrappers
 * below (lb_pick, lb_on_done, ...), never an ops field, so optional methods
 * and argument checks live in one place (policies/lb.c). Policies are
 * registered in policies/registry.c; an unknown name is an error that lists
 * the names that exist (lb_names()).
 */
#ifndef FLEETSIM_LB_H
#define FLEETSIM_LB_H

#include <gsl/gsl_rng.h>
#include <stddef.h>

/* What a policy may know about one server. */
typedef struct {
    int up;          /* ready and reachable: may receive requests */
    int active;      /* requests sent to it and not yet answered (queued + running) */
    int max_conns;   /* 0 = unlimited */
    double weight;   /* > 0 */
} lb_server_view;

typedef struct {
    int n;                          /* servers in the pool */
    const lb_server_view *servers;  /* n entries, index = server number */
    double now_s;                   /* simulated time */
} lb_view;

/* What a policy may know about the request being routed. */
typedef struct {
    unsigned long id;
    int traffic_class;
    double arrival_s;
} lb_request;

/* A server can take one more request: up and below max_conns. */
static inline int lb_server_eligible(const lb_server_view *s)
{
    return s->up && (s->max_conns == 0 || s->active < s->max_conns);
}

typedef void *lb_init_fn(int n_servers, gsl_rng *rng);
/* Returns the chosen server, or -1 when no server is eligible. */
typedef int lb_pick_fn(void *state, const lb_view *view, const lb_request *req);
typedef void lb_done_fn(void *state, const lb_view *view, int server,
                        double latency_s, int ok);
typedef void lb_free_fn(void *state);

struct lb_ops {
    const char *name;      /* as written in scenarios */
    const char *summary;   /* one line for `fleetsim list` */
    lb_init_fn *init;      /* optional: private state (NULL state is fine) */
    lb_pick_fn *pick;      /* required */
    lb_done_fn *on_done;   /* optional: a request finished on a server */
    lb_free_fn *destroy;   /* optional */
};
/*
 * How lb.c calls these, in one place:
 * - A policy without state leaves init NULL. A policy with init returns NULL
 *   from it only on failure (no memory, or a NULL rng for a policy that
 *   draws random numbers); lb_create then returns NULL.
 * - destroy NULL means the state, if any, is released with free().
 * - view->n may differ from the n_servers given to init (a pool that was
 *   scaled out or in); a policy must size its state by view->n.
 */

/* One policy instance for one pool. */
typedef struct lb lb;

/* NULL-terminated table of every registered policy (policies/registry.c). */
extern const struct lb_ops *const lb_registry[];

const struct lb_ops *lb_find(const char *name);
/* Writes "a, b, c" (every registered name) into buf; returns buf. */
char *lb_names(char *buf, size_t len);

/* NULL if name is unknown or the policy cannot start (see init above).
 * rng is borrowed and must outlive the instance. */
lb *lb_create(const char *name, int n_servers, gsl_rng *rng);
/* The same from an ops struct that need not be registered (tests, plugins).
 * NULL if ops lacks a name or a pick method. */
lb *lb_create_ops(const struct lb_ops *ops, int n_servers, gsl_rng *rng);
/* -1 if no server is eligible; otherwise an eligible server (asserted). */
int lb_pick(lb *b, const lb_view *view, const lb_request *req);
void lb_on_done(lb *b, const lb_view *view, int server, double latency_s, int ok);
void lb_destroy(lb *b);
const char *lb_name(const lb *b);

#endif
