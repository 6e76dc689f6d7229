/*
 * llm_noise.c - the AR(1) lognormal step-time factor of llm_noise.h.
 *
 * With z the standardised log factor, a step starting dt after the
 * previous one has z' = rho z + sqrt(1 - rho^2) e, rho = exp(-dt / tau),
 * e ~ N(0, 1): the exact discretisation of an Ornstein-Uhlenbeck process,
 * stationary N(0, 1) whatever the spacing of the steps (an idle gap of
 * many tau forgets the past). The first step draws z = e. The factor is
 * exp(sigma z - sigma^2 / 2): lognormal, mean 1, cv^2 = exp(sigma^2) - 1.
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

struct llm_noise {
    double sigma, tau_s;
    gsl_rng *rng;
    /* innovations drawn, not yet spent: eps[head .. head + n) */
    double *eps;
    size_t head, n, cap;
    /* the committed state: the last step's z and start */
    double z, t_s;
    int started;
    unsigned long steps;
    /* the plan: its steps' z and starts */
    double *pz, *pt;
    size_t p_n, p_cap;
};

double llm_noise_sigma(double cv) { return sqrt(log1p(cv * cv)); }

llm_noise *llm_noise_new(double cv, double correlation_s, gsl_rng *rng)
{
    llm_noise *nz = calloc(1, sizeof *nz);
    if (!nz)
        return NULL;
    nz->sigma = llm_noise_sigma(cv);
    nz->tau_s = correlation_s;
    nz->rng = rng;
    return nz;
}

void llm_noise_free(llm_noise *nz)
{
    if (!nz)
        return;
    gsl_rng_free(nz->rng);
    free(nz->eps);
    free(nz->pz);
    free(nz->pt);
    free(nz);
}

void llm_noise_plan(llm_noise *nz) { nz->p_n = 0; }

/* The i-th innovation not yet spent, drawn when first needed. */
static double innovation(llm_noise *nz, size_t i)
{
    while (i >= nz->n) {
        if (nz->head + nz->n >= nz->cap) {
            if (nz->head > 0) { /* move the live ones to the front */
                memmove(nz->eps, nz->eps + nz->head, nz->n * sizeof *nz->eps);
                nz->head = 0;
            }
            if (nz->n >= nz->cap) {
                nz->cap = nz->cap ? 2 * nz->cap : 256;
                nz->eps = realloc(nz->eps, nz->cap * sizeof *nz->eps);
            }
        }
        nz->eps[nz->head + nz->n++] = gsl_ran_ugaussian(nz->rng);
    }
    return nz->eps[nz->head + i];
}

double llm_noise_next(llm_noise *nz, double t0_s)
{
    size_t j = nz->p_n;
    double e = innovation(nz, j);
    int have = j > 0 || nz->started;
    double z_prev = j > 0 ? nz->pz[j - 1] : nz->z, t_prev = j > 0 ? nz->pt[j - 1] : nz->t_s;
    double z = e;
    if (have && nz->tau_s > 0) {
        double dt = t0_s > t_prev ? t0_s - t_prev : 0;
        double rho = exp(-dt / nz->tau_s);
        z = rho * z_prev + sqrt(1 - rho * rho) * e;
    }
    if (j >= nz->p_cap) {
        nz->p_cap = nz->p_cap ? 2 * nz->p_cap : 64;
        nz->pz = realloc(nz->pz, nz->p_cap * sizeof *nz->pz);
        nz->pt = realloc(nz->pt, nz->p_cap * sizeof *nz->pt);
    }
    nz->pz[j] = z;
    nz->pt[j] = t0_s;
    nz->p_n = j + 1;
    return exp(nz->sigma * z - 0.5 * nz->sigma * nz->sigma);
}

void llm_noise_commit(llm_noise *nz, int k)
{
    if (k <= 0)
        return;
    size_t m = (size_t)k < nz->p_n ? (size_t)k : nz->p_n;
    if (m == 0)
        return;
    nz->z = nz->pz[m - 1];
    nz->t_s = nz->pt[m - 1];
    nz->started = 1;
    nz->head += m;
    nz->n -= m;
    nz->steps += m;
    nz->p_n = 0;
}

unsigned long llm_noise_steps(const llm_noise *nz) { return nz->steps; }
