#!/usr/bin/python3
"""Workload (a) of bench/scenarios/mmc.yaml in SimPy, written the usual way.

16 servers (one simpy.Resource of capacity 1 each), Poisson arrivals at
12.8/s, exponential service with mean 1 s, and a process per request that
joins the server with the fewest requests (in service + queued), as
fleetsim's least_conn does. Prints the request count, the mean latency
(arrival to completion, for cross-checking against fleetsim's summary.json),
wall and CPU time of the simulation loop (interpreter start excluded),
requests per wall second and peak RSS.

usage: simpy_mmc.py [DURATION_S]   (default 156250, the scenario's duration)
"""
import random
import resource
import sys
import time

import simpy

SERVERS = 16
RATE_QPS = 12.8
MEAN_SERVICE_S = 1.0


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 156250.0
    rng = random.Random(1)
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=1) for _ in range(SERVERS)]
    stats = {"generated": 0, "completed": 0, "latency_sum": 0.0}

    def request(env, server):
        arrival = env.now
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0 / MEAN_SERVICE_S))
        stats["completed"] += 1
        stats["latency_sum"] += env.now - arrival

    def source(env):
        while True:
            yield env.timeout(rng.expovariate(RATE_QPS))
            server = min(servers, key=lambda s: s.count + len(s.queue))
            stats["generated"] += 1
            env.process(request(env, server))

    t0, c0 = time.perf_counter(), time.process_time()
    env.process(source(env))
    env.run(until=duration)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"simpy mmc requests {stats['generated']} completed {stats['completed']} "
          f"mean_latency_s {stats['latency_sum'] / max(1, stats['completed']):.6f} "
          f"wall_s {wall:.3f} cpu_s {cpu:.3f} req_per_s {stats['generated'] / wall:.0f} peak_rss_mb {rss_mb:.1f}")


if __name__ == "__main__":
    main()
