/*
 * lb_priority.c - Envoy's priority load over levels of hosts (see
 * lb_priority.h for the rules and the upstream functions they follow).
 */
#include "lb_priority.h"

#include <stdint.h>

static int level_health(const lb_priority_level *l, int factor_pct)
{
    if (l->hosts <= 0)
        return 0;
    uint64_t h = (uint64_t)factor_pct * (uint64_t)(l->healthy > 0 ? l->healthy : 0) /
                 (uint64_t)l->hosts;
    return h > 100 ? 100 : (int)h;
}

/* isHostSetInPanic: healthy percent (a double there) under the threshold;
 * an empty level counts as 0% healthy. */
static int level_panic(const lb_priority_level *l, int threshold_pct)
{
    double pct = l->hosts > 0 ? 100.0 * l->healthy / l->hosts : 0.0;
    return pct < (threshold_pct > 100 ? 100 : threshold_pct);
}

void lb_priority_load(const lb_priority_level *levels, int n, int factor_pct,
                      int panic_threshold_pct, int *load_pct, int *panic)
{
    int total = 0, first = -1, left = 100;
    for (int i = 0; i < n; i++) {
        load_pct[i] = 0;
        if (panic)
            panic[i] = 0;
        total += level_health(&levels[i], factor_pct);
    }
    if (n <= 0)
        return;
    if (total > 100)
        total = 100;
    if (total > 0) { /* distributeLoad, then the rounding remainder */
        for (int i = 0; i < n; i++) {
            int h = level_health(&levels[i], factor_pct);
            if (first < 0 && h > 0)
                first = i;
            int share = h * 100 / total;
            load_pct[i] = share < left ? share : left;
            left -= load_pct[i];
        }
        load_pct[first] += left;
    }
    if (panic_threshold_pct <= 0 && total == 0) {
        load_pct[0] = 100;
        return;
    }
    int all_panic = 1;
    for (int i = 0; i < n; i++) {
        int p = total == 100 ? 0 : level_panic(&levels[i], panic_threshold_pct);
        if (panic)
            panic[i] = p;
        all_panic = all_panic && p;
    }
    if (!all_panic)
        return;
    /* recalculateLoadInTotalPanic: by host counts, healthy or not */
    long hosts = 0;
    for (int i = 0; i < n; i++)
        hosts += levels[i].hosts > 0 ? levels[i].hosts : 0;
    for (int i = 0; i < n; i++)
        load_pct[i] = 0;
    if (hosts == 0) {
        load_pct[0] = 100;
        return;
    }
    left = 100;
    first = -1;
    for (int i = 0; i < n; i++) {
        long h = levels[i].hosts > 0 ? levels[i].hosts : 0;
        if (first < 0 && h > 0)
            first = i;
        load_pct[i] = (int)(100 * h / hosts);
        left -= load_pct[i];
    }
    load_pct[first] += left;
}

int lb_priority_choose(const int *load_pct, int n, unsigned long hash)
{
    unsigned long h = hash % 100 + 1, sum = 0;
    for (int i = 0; i < n; i++) {
        sum += (unsigned long)load_pct[i];
        if (h <= sum)
            return i;
    }
    return 0;
}
