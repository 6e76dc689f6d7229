/*
 * llm_layer.h - the decoder layer stack `realbench llm-step` times (internal
 * to realbench): one scheduler step of prefill chunks and decode tokens
 * through `layers` decoder layers (QKV projection, attention of every head
 * over its sequence's cached and new keys and values, output projection,
 * ReLU MLP, residual adds), in FP32, FP16 (weights, KV cache and GEMM
 * operands IEEE half, FP32 accumulation) or INT8 (symmetric per-row weights,
 * per-token activations and KV cache, int32 accumulation). llm_step.c
 * builds the grid, times it and fits it; llm_layer.c, compiled with the
 * kernel flags, computes.
 */
#ifndef FLEETSIM_RB_LLM_LAYER_H
#define FLEETSIM_RB_LLM_LAYER_H

#include "realbench.h"

/* One sequence's part of a step, as fleetsim's llm_chunk: n new tokens on
 * c cached ones (a decoding sequence: n = 1). */
typedef struct {
    int n, c;
} rb_llm_chunk;

typedef struct rb_llm_net rb_llm_net;

/* A stack for steps of up to max_tokens tokens over contexts (cached + new)
 * of up to max_ctx; weights, input and the KV cache random (GSL, seed):
 * the FP32 values are drawn the same for every precision and the FP16 and
 * INT8 ones made from them, so nets of one seed compute the same function.
 * NULL when out of memory or the shape is invalid. */
rb_llm_net *rb_llm_net_new(const rb_llm_opts *o, rb_llm_precision prec, int max_tokens,
                           int max_ctx);
void rb_llm_net_free(rb_llm_net *m);
/* One step: each chunk's new keys and values written into the cache at
 * positions c..c+n-1 (the cache is one buffer per KV head that every
 * sequence reads a prefix of: only its size and reads matter for the
 * time), then attention, projections, MLP. */
void rb_llm_net_step(rb_llm_net *m, const rb_llm_chunk *ch, int n_ch);
/* The last step's output: tokens x d_model floats. */
const float *rb_llm_net_output(const rb_llm_net *m, size_t *count);

/* A request of the closed loop (llm_loop.c): arrival (seconds from the
 * loop's start), prompt and answer tokens; the loop sets the rest (first
 * and last token's times, same clock). */
typedef struct {
    double arrival_s, first_s, last_s;
    int in, out;            /* prompt and answer tokens, >= 1 */
    int computed, generated;
} rb_llm_loop_req;

/* Runs the requests (arrival_s ascending) through the loop's scheduler:
 * token budget, at most max_seqs sequences, running sequences first (a
 * prompt chunk up to the budget left, or one decode token), then waiting
 * ones first come first served; what arrives during a step joins at the
 * next. With net, every step runs on it and takes the time it takes, the
 * loop sleeping to the next arrival when nothing is left; without (NULL),
 * every step takes the time fit gives its composition on a clock of its
 * own (the same scheduler with model times: what fleetsim should predict
 * with the same fit and no noise). Every step's composition and time goes
 * into *steps (malloc'd, *n_steps of them); a step's time runs from the
 * end of the step before (or the loop's waking, after it was idle) to its
 * own end, so it includes the forming of the step. 0, or -1 when out of
 * memory. */
int rb_llm_loop_run(rb_llm_net *net, const rb_llm_fit *fit, int budget, int max_seqs,
                    rb_llm_loop_req *rq, int n, rb_llm_step **steps, size_t *n_steps);

#endif
