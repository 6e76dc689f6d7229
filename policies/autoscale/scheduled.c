/*
 * scheduled.c - replica steps at given times of day, like a CronJob that
 * patches the replica count (or KEDA's cron scaler): `schedule` lists
 * "HH:MM=N" entries; at any time the count is that of the latest entry at or
 * before the time of day, and before the day's first entry that of the
 * previous day's last. Simulated time 0 is `start_time` of day one.
 */
#include "autoscale.h"
#include "as_policies.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double tod_s;   /* seconds after midnight */
    int replicas;
} step_t;

struct scheduled {
    step_t *steps;  /* sorted by tod_s */
    int n;
    double start_tod_s, period_s;
    char reason[96];
};

static const char *const sch_keys[] = { "schedule", "start_time", "period", NULL };

/* "HH:MM" or "HH:MM:SS" at *p; advances *p. -1 when malformed. */
static int parse_tod(const char **p, double *out)
{
    int h = 0, m = 0, s = 0, nd = 0;
    const char *q = *p;

    while (isdigit((unsigned char)*q) && nd < 2) {
        h = h * 10 + (*q++ - '0');
        nd++;
    }
    if (nd == 0 || *q != ':' || !isdigit((unsigned char)q[1]) || !isdigit((unsigned char)q[2]))
        return -1;
    m = (q[1] - '0') * 10 + (q[2] - '0');
    q += 3;
    if (*q == ':' && isdigit((unsigned char)q[1]) && isdigit((unsigned char)q[2])) {
        s = (q[1] - '0') * 10 + (q[2] - '0');
        q += 3;
    }
    if (h > 23 || m > 59 || s > 59)
        return -1;
    *out = h * 3600.0 + m * 60.0 + s;
    *p = q;
    return 0;
}

static int cmp_step(const void *a, const void *b)
{
    double x = ((const step_t *)a)->tod_s, y = ((const step_t *)b)->tod_s;
    return (x > y) - (x < y);
}

static void sch_destroy(void *state)
{
    struct scheduled *s = state;
    if (s)
        free(s->steps);
    free(s);
}

static void *sch_init(const as_config *cfg, char *err, size_t errlen)
{
    const as_param *sp, *st;
    struct scheduled *s;
    const char *p;

    if (as_check_keys(cfg, sch_keys, err, errlen))
        return NULL;
    sp = as_param_find(cfg, "schedule");
    if (!sp || !sp->value)
        return as_fail(err, errlen, cfg, NULL,
                       "autoscaler scheduled needs `schedule:` such as \"08:00=10, 20:00=3\"");
    s = calloc(1, sizeof *s);
    if (!s)
        return as_fail(err, errlen, cfg, NULL, "out of memory");
    s->period_s = 60.0;
    s->steps = calloc(strlen(sp->value) / 4 + 1, sizeof *s->steps);
    if (!s->steps) {
        as_fail(err, errlen, cfg, NULL, "out of memory");
        goto fail;
    }
    for (p = sp->value;;) {
        step_t *e = &s->steps[s->n];
        long r = 0;
        int nd = 0;

        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (parse_tod(&p, &e->tod_s) != 0 || *p++ != '=') {
            as_fail(err, errlen, cfg, sp, "schedule: expected HH:MM=replicas entries separated by "
                    "commas, in '%s'", sp->value);
            goto fail;
        }
        while (isdigit((unsigned char)*p) && r < 1000000) {
            r = r * 10 + (*p++ - '0');
            nd++;
        }
        if (nd == 0 || (*p && *p != ',' && *p != ' ')) {
            as_fail(err, errlen, cfg, sp, "schedule: expected a replica count after '=', at '%s'", p);
            goto fail;
        }
        e->replicas = (int)r;
        for (int i = 0; i < s->n; i++)
            if (s->steps[i].tod_s == e->tod_s) {
                as_fail(err, errlen, cfg, sp, "schedule: two entries for the same time of day");
                goto fail;
            }
        s->n++;
    }
    if (s->n == 0) {
        as_fail(err, errlen, cfg, sp, "schedule: no entries");
        goto fail;
    }
    qsort(s->steps, (size_t)s->n, sizeof *s->steps, cmp_step);
    st = as_param_find(cfg, "start_time");
    if (st) {
        const char *q = st->value ? st->value : "";
        if (parse_tod(&q, &s->start_tod_s) != 0 || *q) {
            as_fail(err, errlen, cfg, st, "start_time: expected HH:MM, got '%s'", st->value ? st->value : "");
            goto fail;
        }
    }
    if (as_param_duration(cfg, "period", &s->period_s, err, errlen) < 0)
        goto fail;
    if (!(s->period_s > 0)) {
        as_fail(err, errlen, cfg, as_param_find(cfg, "period"), "period must be > 0");
        goto fail;
    }
    return s;
fail:
    sch_destroy(s);
    return NULL;
}

static double sch_period(const void *state)
{
    return ((const struct scheduled *)state)->period_s;
}

static const char *sch_reason(const void *state)
{
    return ((const struct scheduled *)state)->reason;
}

static int sch_recommend(void *state, const as_view *v)
{
    struct scheduled *s = state;
    double tod = fmod(s->start_tod_s + v->now_s, 86400.0);
    int k = s->n - 1; /* before the first entry: the previous day's last */

    if (tod < 0)
        tod += 86400.0;
    for (int i = 0; i < s->n; i++)
        if (s->steps[i].tod_s <= tod)
            k = i;
    snprintf(s->reason, sizeof s->reason, "schedule %02d:%02d=%d", (int)(s->steps[k].tod_s / 3600),
             (int)fmod(s->steps[k].tod_s / 60, 60), s->steps[k].replicas);
    return s->steps[k].replicas;
}

const struct as_ops as_scheduled = {
    .name = "scheduled",
    .summary = "replica steps at given times of day (\"08:00=10, 20:00=3\")",
    .keys = sch_keys,
    .init = sch_init,
    .recommend = sch_recommend,
    .period_s = sch_period,
    .reason = sch_reason,
    .destroy = sch_destroy,
};
