/*
 * hooks.h - how the lower layers tell the upper ones what happened, and ask
 * them what to do, without naming them. run/ registers every subscriber
 * once at build time, in a fixed order (run.c: register_hooks); a hook
 * with no subscriber costs a test of a counter.
 *
 * Notifications (any number of subscribers, called in registration order):
 *   arrival        a request or client retry reaches a pool's balancer
 *                  (flow/); chaos watches it for `when` triggers
 *   request_end    a request's outcome, counted once (flow/): the
 *                  exporter's counters, then the results' accounting
 *   fault          a fault record opened (control/chaos.c): accounting
 *   llm_first_token, llm_tokens, llm_finished
 *                  an LLM server's token events on a node (serve/llm.c):
 *                  the node's vllm:* histograms (llm_tokens: count later
 *                  tokens, each itl_s after the one before), then the
 *                  sla_planner's observed load (control/autoscaling.c)
 *   llm_lost       an LLM replica that went down (a crash, a lost GPU, a
 *                  drain that timed out) lost r's KV cache; prefill_tokens:
 *                  the prompt tokens it had computed; restarted: r is sent
 *                  again (a full prefill) rather than ended (serve/llm.c):
 *                  accounting
 *   kv_handoff     a KV transfer from src ended: failed (dst NULL when no
 *                  decode replica was up), or landed after time_s where it
 *                  would take alone_s alone on unfaulted links: accounting
 * Questions (one answerer; 0 when none is registered):
 *   client_retry   r ended in error at t_s: 1 if its client will resend it
 *                  (control/chaos.c's retry_storm), r then held until the
 *                  resend; clients_wake is then called once the caller is
 *                  done with r (waking the clients' actor is a simcall, so
 *                  the resend may run before the waker resumes)
 *   cold_start_wait  a request found no ready replica: 1 if it should wait
 *                  at the balancer while the pool cold-starts
 *                  (control/autoscaling.c, Knative's activator)
 * Catch-up (one, or none):
 *   catch_up       a server that keeps its own events (fast mode's batch
 *                  server) handles those due by now; called before a
 *                  request reaches the front end or is routed, a balancer
 *                  queue is drained, a node changes state or its work is
 *                  failed, a fault starts or ends, an interval closes, the
 *                  monitoring scrapes, an autoscaler samples or decides,
 *                  dynamic weights are computed, and the results are
 *                  collected, so nothing acts on or reads a world behind it
 */
#ifndef FLEETSIM_HOOKS_H
#define FLEETSIM_HOOKS_H

#include <stddef.h>

struct eng_pool;
struct eng_node;
struct eng_req;

#define ENG_HOOK_MAX 4 /* subscribers per notification */

typedef void (*eng_arrival_fn)(struct eng_pool *p, double now);
typedef void (*eng_request_end_fn)(const struct eng_pool *p, const struct eng_req *r, int bucket,
                                   double t_s, size_t interval, double latency_s);
typedef void (*eng_fault_fn)(int fault, int rec);
typedef void (*eng_first_token_fn)(const struct eng_node *n, double ttft_s, int prompt_tokens);
typedef void (*eng_tokens_fn)(const struct eng_node *n, double itl_s, unsigned long count);
typedef void (*eng_finished_fn)(const struct eng_node *n, double e2e_s, double tpot_s,
                                int output_tokens);

typedef void (*eng_llm_lost_fn)(const struct eng_node *n, const struct eng_req *r,
                                int prefill_tokens, int restarted);
typedef void (*eng_kv_handoff_fn)(const struct eng_node *src, const struct eng_node *dst,
                                  int failed, double time_s, double alone_s);

typedef struct {
    eng_arrival_fn arrival[ENG_HOOK_MAX];
    eng_request_end_fn request_end[ENG_HOOK_MAX];
    eng_fault_fn fault[ENG_HOOK_MAX];
    eng_first_token_fn llm_first_token[ENG_HOOK_MAX];
    eng_tokens_fn llm_tokens[ENG_HOOK_MAX];
    eng_finished_fn llm_finished[ENG_HOOK_MAX];
    eng_llm_lost_fn llm_lost[ENG_HOOK_MAX];
    eng_kv_handoff_fn kv_handoff[ENG_HOOK_MAX];
    int n_arrival, n_request_end, n_fault, n_llm_first_token, n_llm_tokens, n_llm_finished;
    int n_llm_lost, n_kv_handoff;
    int (*client_retry)(struct eng_pool *p, struct eng_req *r, double t_s);
    void (*clients_wake)(void);
    int (*cold_start_wait)(struct eng_pool *p, double now);
    void (*catch_up)(double now);
} eng_hooks;

extern eng_hooks eng_hook;

/* Registers fn on a notification: ENG_HOOK_ADD(request_end, acc_request_end).
 * Past ENG_HOOK_MAX subscribers is a programming error: abort. */
#define ENG_HOOK_ADD(name, fn)                                                         \
    do {                                                                               \
        if (eng_hook.n_##name >= ENG_HOOK_MAX)                                         \
            eng_hooks_overflow(#name);                                                 \
        eng_hook.name[eng_hook.n_##name++] = (fn);                                     \
    } while (0)
/* Calls every subscriber of a notification with the arguments given. */
#define ENG_NOTIFY(name, ...)                                                          \
    do {                                                                               \
        for (int hook_i_ = 0; hook_i_ < eng_hook.n_##name; hook_i_++)                  \
            eng_hook.name[hook_i_](__VA_ARGS__);                                       \
    } while (0)

void eng_hooks_overflow(const char *name);
void eng_hooks_clear(void);

#endif
