/*
 * observe.h - subscribers: the results' accounting (accounting.c) and the
 * monitoring feed, exporters and progress (observe.c). They read the world
 * and are told of events through the hooks of model/hooks.h; nothing below
 * calls them directly.
 */
#ifndef FLEETSIM_OBSERVE_H
#define FLEETSIM_OBSERVE_H

#include "control.h"

/* accounting.c */
void acc_init(void);
void acc_request_end(const eng_pool *p, const eng_req *r, int bucket, double t_s, size_t interval,
                     double latency_s);
void acc_fault_recorded(int fault, int rec);
void acc_llm_lost(const eng_node *n, const eng_req *r, int prefill_tokens, int restarted);
void acc_kv_handoff(const eng_node *src, const eng_node *dst, int failed, double time_s,
                    double alone_s);
void acc_finish(rp_results *out);
void acc_free(void);

/* observe.c */
/* The options' export paths, before build(); obs_start() then starts the
 * scraper/evaluator when the scenario has monitoring or an export is asked
 * for; obs_free() (at teardown) adds the alerts to the results, writes the
 * exports and frees everything. */
void obs_set_options(const sim_options *opt);
void obs_start(void);
/* Warns on stderr, as a run does at its start, of each rule (files and
 * generated SLO rules) that selects a series the scenario never exports
 * (`fleetsim validate`). */
void obs_check_rules(const sc_scenario *sc);
void obs_free(void);
/* Every request, once, as it ends (eng_req_end): the exporter's counters. */
void obs_request_end(const eng_pool *p, const eng_req *r, int bucket, double t_s,
                     size_t interval, double latency_s);
/* An LLM server's token events on node n (serve/llm.c), for the node's
 * vllm:* latency histograms: a request's first token, ttft_s after its
 * client sent it; each later token, itl_s after the one before; its last
 * token, e2e_s after the send, with tpot_s its mean time per output token
 * after the first (0 for a one-token answer). Nothing is kept while nothing
 * is monitored or exported. */
void obs_llm_first_token(const eng_node *n, double ttft_s, int prompt_tokens);
void obs_llm_token(const eng_node *n, double itl_s);
/* count inter-token latencies of itl_s: count obs_llm_token calls in one */
void obs_llm_tokens(const eng_node *n, double itl_s, unsigned long count);
void obs_llm_finished(const eng_node *n, double e2e_s, double tpot_s, int output_tokens);

#endif
