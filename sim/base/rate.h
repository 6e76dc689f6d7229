/*
 * rate.h - an arrival-rate profile (piecewise linear qps over time) as a
 * cumulative intensity, for time-rescaled arrivals and flash crowds.
 */
#ifndef FLEETSIM_RATE_H
#define FLEETSIM_RATE_H

/* Piecewise rate profile: from at_s the rate moves linearly from the
 * previous point's rate to qps over ramp_s, then holds. Points ascending. */
typedef struct {
    double at_s;
    double qps;
    double ramp_s;
} sc_rate_point;

/* Arrival-rate profile as cumulative intensity, for time-rescaled arrivals. */
typedef struct sim_rate sim_rate;
sim_rate *sim_rate_new(const sc_rate_point *pts, int n);
/* The profile cut at period_s and replayed every period_s from t = 0 (a
 * plain profile when period_s is 0). */
sim_rate *sim_rate_new_repeating(const sc_rate_point *pts, int n, double period_s);
double sim_rate_period(const sim_rate *r);                /* 0 when it does not repeat */
void sim_rate_free(sim_rate *r);
double sim_rate_at(const sim_rate *r, double t_s);        /* instantaneous qps */
double sim_rate_cumulative(const sim_rate *r, double t_s); /* integral 0..t */
/* Smallest t with cumulative(t) >= target; INFINITY if never reached. */
double sim_rate_inverse(const sim_rate *r, double target);
/* Multiplies the rate by factor on [t0_s, t1_s) (t1_s may be INFINITY). */
void sim_rate_scale(sim_rate *r, double t0_s, double t1_s, double factor);

#endif
