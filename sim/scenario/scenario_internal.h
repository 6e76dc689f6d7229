/*
 * scenario_internal.h - what the scenario loader's section parsers share.
 *
 * sim/scenario.c reads the YAML document, applies `--set` overrides and
 * walks the top-level mapping; each top-level section (models, pools,
 * traffic, load_balancer, slo) is parsed by its own sim/scenario_<section>.c
 * through the helpers below. A helper that meets a bad value reports it with
 * sc_errn() (as `file:line:col: path: message`, or `--set[N]:1:col: ...` for
 * a value from an override), counts it in the loader and returns -1; parsing
 * goes on, so one run reports every problem it can.
 *
 * Adding a section: write sim/scenario_<name>.c with a parser of type
 * sc_section_fn, declare it at the end of this file, and add one entry to
 * the section table in sim/scenario.c (the table order is the parse order,
 * so a section that refers to pools or models comes after them). Its fields
 * go in sc_scenario (scenario.h), whatever it allocates is freed in sc_free,
 * and its keys are documented in scenarios/README.md. Not part of the public
 * API: only the loader's own files include this header.
 */
#ifndef FLEETSIM_SCENARIO_INTERNAL_H
#define FLEETSIM_SCENARIO_INTERNAL_H

#include "scenario.h"

#include <yaml.h>

#include <stddef.h>
#include <stdio.h>

/* Buffer sizes: a key path ("pools.gpu.link.latency"), a list of names for
 * a message, a value shown in a message (sc_show). */
enum { SC_PATHLEN = 256, SC_LISTLEN = 512, SC_SHOWLEN = 64 };

/* Loader state: the document, where its nodes came from, the error count. */
typedef struct {
    FILE *err;
    const char *file;        /* as given to sc_load, for messages */
    char *dir;               /* the file's directory, for relative paths */
    yaml_document_t doc;
    int n_file_nodes;        /* nodes 1..n came from the file */
    int *set_of;             /* later nodes: the override (1-based) that made them */
    const char *const *set_names; /* override i's name in messages, or NULL: --set[i+1] */
    int n_set_of, cap_set_of;
    int n_errors;
    int n_hidden;             /* errors past SC_MAX_SHOWN, counted, not printed */
} sc_loader;

/* One pair of a mapping, as sc_find returns it; both NULL when absent. */
typedef struct {
    yaml_node_t *key;
    yaml_node_t *val;
} sc_kv;

/* A section parser: n is the value of its top-level key. */
typedef void sc_section_fn(sc_loader *L, yaml_node_t *n, sc_scenario *sc);

/* A units parser for sc_want_unit (sc_parse_duration_s, sc_parse_bytes...). */
typedef int sc_unit_parser(const char *text, double *out);

/* "path: " or "" at top level, for message prefixes: "%s%s...", SC_PFX(path). */
#define SC_PFX(path) (path), (*(path) ? ": " : "")

/* ---- messages (sim/scenario.c) -------------------------------------------- */

/* Error at node n: its file:line:col, or its override's --set[N]:1:col. */
void sc_errn(sc_loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Error in override number set (1-based), at 1-based column col of its text. */
void sc_errset(sc_loader *L, int set, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* buf (SC_PATHLEN) = "a.b", or "b" when a is ""; returns buf. */
const char *sc_join(char *buf, const char *a, const char *b);
/* How a node reads after "got": "\"text\"" (cut at 58 bytes), "a mapping", "a sequence". */
const char *sc_show(const yaml_node_t *n, char buf[SC_SHOWLEN]);
/* Appends ", name" to the list in buf (capacity cap), ending in "..." when full. */
void sc_list_add(char *buf, size_t cap, const char *name);

/* ---- tree access (sim/scenario.c) ----------------------------------------- */

/* The node with document id id (from a pair or sequence item). */
yaml_node_t *sc_node(sc_loader *L, int id);
/* 0 for a node read from the file, else the 1-based override that made it. */
int sc_node_set(const sc_loader *L, const yaml_node_t *n);
/* First pair of mapping m whose key is name; {NULL, NULL} when there is none. */
sc_kv sc_find(sc_loader *L, const yaml_node_t *m, const char *name);
/* Pair p of mapping m has a scalar key not repeated earlier (sc_check_map reports the others). */
int sc_key_usable(sc_loader *L, const yaml_node_t *m, const yaml_node_pair_t *p);
/* Usable keys of a name -> item mapping (models, pools). */
int sc_count_named(sc_loader *L, yaml_node_t *m);
/* 0 if n is a mapping (reports non-scalar, repeated, unknown keys; valid NULL: any), else -1. */
int sc_check_map(sc_loader *L, yaml_node_t *n, const char *path, const char *const *valid);

/* ---- values (sim/scenario.c): 0, or -1 after reporting the error ---------- */

/* The text of scalar n ("expected <what>" otherwise); NULL after an error. */
const char *sc_want_scalar(sc_loader *L, const yaml_node_t *n, const char *path,
                           const char *what);
/* *out = strdup of a string (non-empty if nonempty); frees the old *out. */
int sc_want_str(sc_loader *L, const yaml_node_t *n, const char *path, int nonempty, char **out);
/* An integer in [min, max] (max INT_MAX or LLONG_MAX reads as ">= min"). */
int sc_want_int(sc_loader *L, const yaml_node_t *n, const char *path, long long min,
                long long max, long long *out);
/* An int >= min. */
int sc_want_intv(sc_loader *L, const yaml_node_t *n, const char *path, int min, int *out);
/* A plain number between lo and hi (INFINITY = no bound), each end open or closed. */
int sc_want_num(sc_loader *L, const yaml_node_t *n, const char *path, double lo, int lo_open,
                double hi, int hi_open, double *out);
/* A quantity read by parse; kind and examples go in the message; > 0 if positive, else >= 0. */
int sc_want_unit(sc_loader *L, const yaml_node_t *n, const char *path, sc_unit_parser *parse,
                 const char *kind, const char *examples, int positive, double *out);
/* A duration in seconds ("250ms", "1.5s", "2h"); > 0 if positive, else >= 0. */
int sc_want_dur(sc_loader *L, const yaml_node_t *n, const char *path, int positive,
                double *out);
/* Watts >= 0: a number with an optional "W" suffix. */
int sc_want_watts(sc_loader *L, const yaml_node_t *n, const char *path, double *out);
/* *out = index of the value in names (NULL-terminated). */
int sc_want_enum(sc_loader *L, const yaml_node_t *n, const char *path, const char *const *names,
                 int *out);

/* ---- files named in a scenario (sim/scenario.c) --------------------------- */

/* Malloc'd path of rel: from the scenario's directory, or the working directory for an override. */
char *sc_resolve(const sc_loader *L, const yaml_node_t *n, const char *rel);
/* First CSV column as numbers (header line and blank lines skipped); -1 with a message in msg. */
int sc_read_column(const char *path, double **out, size_t *n_out, char *msg, size_t msglen);
/* Whole file, NUL-terminated, malloc'd; NULL with errno set on failure. */
char *sc_read_file(const char *path, size_t *len_out);

/* ---- references between sections ----------------------------------------- */

/* Index of the model called name, or -1 (sim/scenario_models.c). */
int sc_find_model(const sc_scenario *sc, const char *name);
/* buf = the model names, for "(models: ...)" (sim/scenario_models.c). */
void sc_model_list(const sc_scenario *sc, char *buf, size_t cap);
/* Frees a calibration profile and its arrays; NULL is fine (sim/scenario_models.c). */
void sc_free_calibration(sc_calibration *c);
/* Index of the pool called name, or -1 (sim/scenario_pools.c). */
int sc_find_pool(const sc_scenario *sc, const char *name);
/* buf = the pool names, for "(pools: ...)" (sim/scenario_pools.c). */
void sc_pool_list(const sc_scenario *sc, char *buf, size_t cap);
/* A pool name at n: its index, or -1 after an error listing the pools (sim/scenario_pools.c). */
int sc_want_pool_ref(sc_loader *L, const yaml_node_t *n, const char *path, const sc_scenario *sc);
/* A delay: a plain duration or {mean, distribution, cv, shape}; 0 or -1. */
int sc_want_delay(sc_loader *L, const yaml_node_t *n, const char *path, sc_delay *d);

/* ---- section parsers, one file each (table in sim/scenario.c) ------------- */

sc_section_fn sc_parse_models;  /* models: (sim/scenario_models.c) */
/* LLM serving keys (sim/scenario_llm.c): models.<name>.llm, a pool's gpu and
 * tensor_parallel (after its model and gpu_type), traffic.<c>.tokens. */
void sc_load_llm(sc_loader *L, yaml_node_t *n, const char *path, sc_model *m);
void sc_free_llm(sc_llm *m);
void sc_load_pool_llm(sc_loader *L, yaml_node_t *n, const char *path, const sc_scenario *sc,
                      sc_pool *pl);
int sc_load_tokens(sc_loader *L, yaml_node_t *n, const char *path, sc_traffic *t);
/* The hashes naming class class_index's system prompts (tokens.system_prompt). */
void sc_tokens_system_hashes(sc_traffic *t, int class_index);
void sc_free_tokens(sc_traffic *t);
sc_section_fn sc_parse_pools;   /* pools: (sim/scenario_pools.c), after models */
sc_section_fn sc_parse_cost;    /* cost: (sim/scenario_lb.c) */
sc_section_fn sc_parse_simulation; /* simulation: (sim/scenario_simulation.c) */
void sc_simulation_defaults(sc_scenario *sc);
sc_section_fn sc_parse_traffic; /* traffic: (sim/scenario_traffic.c), after pools */
sc_section_fn sc_parse_lb;      /* load_balancer: (sim/scenario_lb.c), after pools */
sc_section_fn sc_parse_slo;     /* slo: (sim/scenario_lb.c) */
sc_section_fn sc_parse_chaos;   /* chaos: (sim/scenario_chaos.c), after pools and traffic */
sc_section_fn sc_parse_hypothesis; /* hypothesis: (sim/scenario_chaos.c) */
void sc_free_chaos(sc_scenario *sc);
sc_section_fn sc_parse_autoscaler; /* autoscaler: (sim/scenario_autoscale.c), after pools */
void sc_free_autoscalers(sc_scenario *sc);
sc_section_fn sc_parse_monitoring; /* monitoring: (sim/scenario_monitoring.c), after slo */
void sc_monitoring_defaults(sc_scenario *sc);
/* After every section: slo.latency_p99 joins the histogram's bounds. */
void sc_monitoring_finish(sc_scenario *sc);
void sc_free_monitoring(sc_scenario *sc);
sc_section_fn sc_parse_pipelines; /* pipelines: (sim/scenario_pipelines.c), after pools */
sc_section_fn sc_parse_routes;    /* routes: (sim/scenario_pipelines.c), after pipelines */
void sc_free_pipelines(sc_scenario *sc);
/* The implicit one-stage pipeline of a pool, made on first use; -1 out of memory. */
int sc_pool_pipeline(sc_scenario *sc, int pool);
/* A pipeline or pool name at n: the pipeline's index, or -1 after an error. */
int sc_want_target(sc_loader *L, const yaml_node_t *n, const char *path, sc_scenario *sc);
/* The pipeline of the route path takes (an exact one, else the longest
 * prefix), -1 when none matches, or SC_ROUTE_UNPROXIED. */
int sc_route_path(const sc_scenario *sc, const char *path);
#define SC_ROUTE_UNPROXIED (-2) /* an nginx location that answers without proxy_pass */
/* A registered load-balancing policy's name at n, strdup'd into *out (the
 * old value freed); -1 after an error listing the policies (sim/scenario_lb.c). */
int sc_want_lb_policy(sc_loader *L, const yaml_node_t *n, const char *path, char **out);
/* load_balancer.l4 and .l7: the two-tier front end (sim/scenario_tiers.c). */
void sc_load_tiers(sc_loader *L, sc_scenario *sc, sc_kv l4, sc_kv l7);
void sc_free_tiers(sc_scenario *sc);
/* Defaults of sc->lb, set whether or not the file has load_balancer (sim/scenario_lb.c). */
void sc_lb_defaults(sc_scenario *sc);

#endif
