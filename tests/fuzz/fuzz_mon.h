/*
 * fuzz_mon.h - a small Prometheus time-series store for the monitoring
 * harnesses (fuzz_rules.c, fuzz_promql.c) to evaluate what they read
 * against: a few of fleetsim's exported series (monitoring/README.md) for
 * two pools over ten minutes, scraped every 15 s, with a node that stops
 * answering and a stale marker.
 */
#ifndef FLEETSIM_FUZZ_MON_H
#define FLEETSIM_FUZZ_MON_H

#include "mon.h"

#include <math.h>

#define FZ_MON_END_S 600.0

static inline mon_store *fz_mon_store(void)
{
    mon_store *s = mon_store_create(INFINITY);
    for (int i = 0; i * 15.0 <= FZ_MON_END_S; i++) {
        double t = i * 15.0, x = 0.5 + 0.45 * sin(i / 5.0);
        mon_store_add(s, "node_cpu_utilisation{pool=\"gpu\",node=\"gpu/0\"}", t, x);
        mon_store_add(s, "node_cpu_utilisation{pool=\"gpu\",node=\"gpu/1\"}", t, 1 - x);
        mon_store_add(s, "node_gpu_utilisation{pool=\"gpu\",node=\"gpu/0\"}", t, x * x);
        mon_store_add(s, "up{pool=\"gpu\",node=\"gpu/0\",job=\"fleetsim\"}", t, 1);
        mon_store_add(s, "up{pool=\"gpu\",node=\"gpu/1\",job=\"fleetsim\"}", t, i < 20 ? 1 : 0);
        mon_store_add(s, "up{pool=\"cpu\",node=\"cpu/0\",job=\"fleetsim\"}", t,
                      i == 30 ? mon_stale_nan() : 1);
        mon_store_add(s, "fleetsim_requests_total{pool=\"gpu\",code=\"200\"}", t, 100.0 * i);
        mon_store_add(s, "fleetsim_requests_total{pool=\"gpu\",code=\"502\"}", t, i / 3);
        mon_store_add(s, "fleetsim_requests_total{pool=\"cpu\",code=\"200\"}", t,
                      i < 25 ? 50.0 * i : 50.0 * (i - 25)); /* a counter reset */
        mon_store_add(s, "fleetsim_request_duration_seconds_bucket{pool=\"gpu\",le=\"0.1\"}", t,
                      60.0 * i);
        mon_store_add(s, "fleetsim_request_duration_seconds_bucket{pool=\"gpu\",le=\"1\"}", t,
                      95.0 * i);
        mon_store_add(s, "fleetsim_request_duration_seconds_bucket{pool=\"gpu\",le=\"+Inf\"}", t,
                      100.0 * i);
        mon_store_add(s, "fleetsim_queue_depth{pool=\"gpu\"}", t, i % 7);
        mon_store_add(s, "fleetsim_replicas{pool=\"gpu\"}", t, 2 + i / 10);
    }
    return s;
}

#endif
