/*
 * llm_noise.c - the lognormal step-time factor of llm_noise.h: the sum of
 * independent AR(1) components in the log.
 *
 * With z_k component k's standardised log factor, a step starting dt after
 * the previous one has z_k' = rho_k z_k + sqrt(1 - rho_k^2) e_k,
 * rho_k = exp(-dt / tau_k), e_k ~ N(0, 1): the exact discretisation of an
 * Ornstein-Uhlenbeck process, stationary N(0, 1) whatever the spacing of
 * the steps (an idle gap of many tau forgets the past). The first step
 * draws z_k = e_k. The factor is exp(sum_k sigma_k z_k - sum_k sigma_k^2 / 2):
 * the components are independent, so the sum is normal with variance
 * sum_k sigma_k^2 and the factor is lognormal with mean 1 and
 * 1 + cv^2 = prod_k (1 + cv_k^2). Component k draws its innovations from
 * its own stream, so adding a component changes no other's draws, and one
 * component computes exactly what the single-component generator did.
 * A replica's steps run back to back, so the process is sampled where the
 * last factor put the next step: after a long step it has reverted
 * further than after a short one, and the mean factor per step falls
 * below 1 by O(cv^2) (0.8% at cv 0.1 with steps half a correlation time
 * long; tests/realbench/test_llm_loop.c).
 */
#include "llm_noise.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One AR(1) component: its innovations and states. */
typedef struct {
    double sigma, tau_s;
    gsl_rng *rng;
    /* innovations drawn, not yet spent: eps[head .. head + n) */
    double *eps;
    size_t head, n, cap;
    double z;  /* the last committed step's z */
    double *pz; /* the plan's steps' z (p_cap of them) */
} noise_comp;

struct llm_noise {
    noise_comp comp[LLM_NOISE_MAX_COMPONENTS];
    int n_comp;
    /* the committed state: the last step's start */
    double t_s;
    int started;
    unsigned long steps;
    /* the plan: its steps' starts */
    double *pt;
    size_t p_n, p_cap;
};

double llm_noise_sigma(double cv) { return sqrt(log1p(cv * cv)); }

llm_noise *llm_noise_new(double cv, double correlation_s, gsl_rng *rng)
{
    llm_noise *nz = calloc(1, sizeof *nz);
    if (!nz)
        return NULL;
    if (llm_noise_add(nz, cv, correlation_s, rng)) {
        free(nz);
        return NULL;
    }
    return nz;
}

int llm_noise_add(llm_noise *nz, double cv, double correlation_s, gsl_rng *rng)
{
    if (nz->n_comp >= LLM_NOISE_MAX_COMPONENTS || nz->p_cap > 0 || nz->started)
        return -1;
    noise_comp *c = &nz->comp[nz->n_comp++];
    memset(c, 0, sizeof *c);
    c->sigma = llm_noise_sigma(cv);
    c->tau_s = correlation_s;
    c->rng = rng;
    return 0;
}

void llm_noise_free(llm_noise *nz)
{
    if (!nz)
        return;
    for (int k = 0; k < nz->n_comp; k++) {
        gsl_rng_free(nz->comp[k].rng);
        free(nz->comp[k].eps);
        free(nz->comp[k].pz);
    }
    free(nz->pt);
    free(nz);
}

void llm_noise_plan(llm_noise *nz) { nz->p_n = 0; }

/* Component c's i-th innovation not yet spent, drawn when first needed. */
static double innovation(noise_comp *c, size_t i)
{
    while (i >= c->n) {
        if (c->head + c->n >= c->cap) {
            if (c->head > 0) { /* move the live ones to the front */
                memmove(c->eps, c->eps + c->head, c->n * sizeof *c->eps);
                c->head = 0;
            }
            if (c->n >= c->cap) {
                c->cap = c->cap ? 2 * c->cap : 256;
                c->eps = realloc(c->eps, c->cap * sizeof *c->eps);
            }
        }
        c->eps[c->head + c->n++] = gsl_ran_ugaussian(c->rng);
    }
    return c->eps[c->head + i];
}

double llm_noise_next(llm_noise *nz, double t0_s)
{
    size_t j = nz->p_n;
    int have = j > 0 || nz->started;
    double t_prev = j > 0 ? nz->pt[j - 1] : nz->t_s;
    double dt = t0_s > t_prev ? t0_s - t_prev : 0;
    if (j >= nz->p_cap) {
        nz->p_cap = nz->p_cap ? 2 * nz->p_cap : 64;
        nz->pt = realloc(nz->pt, nz->p_cap * sizeof *nz->pt);
        for (int k = 0; k < nz->n_comp; k++)
            nz->comp[k].pz = realloc(nz->comp[k].pz, nz->p_cap * sizeof *nz->comp[k].pz);
    }
    /* one component: exactly exp(sigma z - sigma^2 / 2) */
    double lx = 0, half_var = 0;
    for (int k = 0; k < nz->n_comp; k++) {
        noise_comp *c = &nz->comp[k];
        double e = innovation(c, j);
        double z = e;
        if (have && c->tau_s > 0) {
            double rho = exp(-dt / c->tau_s);
            z = rho * (j > 0 ? c->pz[j - 1] : c->z) + sqrt(1 - rho * rho) * e;
        }
        c->pz[j] = z;
        lx += c->sigma * z;
        half_var += 0.5 * c->sigma * c->sigma;
    }
    nz->pt[j] = t0_s;
    nz->p_n = j + 1;
    return exp(lx - half_var);
}

void llm_noise_commit(llm_noise *nz, int k)
{
    if (k <= 0)
        return;
    size_t m = (size_t)k < nz->p_n ? (size_t)k : nz->p_n;
    if (m == 0)
        return;
    for (int i = 0; i < nz->n_comp; i++) {
        noise_comp *c = &nz->comp[i];
        c->z = c->pz[m - 1];
        c->head += m;
        c->n -= m;
    }
    nz->t_s = nz->pt[m - 1];
    nz->started = 1;
    nz->steps += m;
    nz->p_n = 0;
}

unsigned long llm_noise_steps(const llm_noise *nz) { return nz->steps; }
