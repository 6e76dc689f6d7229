#!/usr/bin/python3
"""Workload (b) of bench/scenarios/batched.yaml in SimPy, written the usual way.

16 nodes of one GPU. Each request is a process that joins the node with the
fewest requests (queued + in a running batch, like fleetsim's least_conn),
puts itself into the node's simpy.Store and waits for its batch to finish.
One batcher process per node is its GPU: it takes the oldest request, then
collects more from the Store until the batch holds 16 or the oldest has
waited 5 ms (a get raced against a timeout), and runs the batch for
(15 ms + 2 ms * b) * lognormal noise (mean 1, cv 0.3). The batcher is the
GPU's only user, so it does not also request a simpy.Resource (that would
add one event per batch and change nothing). Prints the same fields as
simpy_mmc.py, plus the number of batches.

usage: simpy_batched.py [DURATION_S]   (default 460, the scenario's duration)
"""
import math
import random
import resource
import sys
import time

import simpy

NODES = 16
RATE_QPS = 4350.0
BATCH_MAX = 16
MAX_WAIT_S = 0.005
BASE_S, PER_ITEM_S, CV = 0.015, 0.002, 0.3


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 460.0
    rng = random.Random(1)
    sigma = math.sqrt(math.log1p(CV * CV))
    mu = -0.5 * sigma * sigma
    env = simpy.Environment()
    stats = {"generated": 0, "completed": 0, "latency_sum": 0.0, "batches": 0}

    class Node:
        def __init__(self):
            self.store = simpy.Store(env)
            self.active = 0

    nodes = [Node() for _ in range(NODES)]

    def request(env, node):
        arrival = env.now
        done = env.event()
        node.active += 1
        yield node.store.put((arrival, done))
        yield done
        stats["completed"] += 1
        stats["latency_sum"] += env.now - arrival

    def batcher(env, node):
        while True:
            first = yield node.store.get()
            batch = [first]
            due = first[0] + MAX_WAIT_S
            while len(batch) < BATCH_MAX:
                if node.store.items:
                    batch.append((yield node.store.get()))
                    continue
                if due <= env.now:
                    break
                get = node.store.get()
                got = yield get | env.timeout(due - env.now)
                if get in got:
                    batch.append(got[get])
                else:
                    get.cancel()
                    break
            b = len(batch)
            yield env.timeout((BASE_S + PER_ITEM_S * b) * rng.lognormvariate(mu, sigma))
            node.active -= b
            stats["batches"] += 1
            for _, done in batch:
                done.succeed()

    def source(env):
        while True:
            yield env.timeout(rng.expovariate(RATE_QPS))
            node = min(nodes, key=lambda n: n.active)
            stats["generated"] += 1
            env.process(request(env, node))

    t0, c0 = time.perf_counter(), time.process_time()
    for node in nodes:
        env.process(batcher(env, node))
    env.process(source(env))
    env.run(until=duration)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"simpy batched requests {stats['generated']} completed {stats['completed']} "
          f"batches {stats['batches']} "
          f"mean_latency_s {stats['latency_sum'] / max(1, stats['completed']):.6f} "
          f"wall_s {wall:.3f} cpu_s {cpu:.3f} req_per_s {stats['generated'] / wall:.0f} peak_rss_mb {rss_mb:.1f}")


if __name__ == "__main__":
    main()
