/*
 * scenario_simulation.c - the `simulation` section of a scenario: how the
 * engine runs it, not what it models. mode: exact (the default: every
 * arrival is its own SimGrid wake-up, results byte-identical run to run and
 * release to release) or fast (a traffic class's arrivals are delivered in
 * bulk, once per arrival_quantum, each keeping its exact time stamp; see
 * scenarios/README.md for the bound this trades). The CLI's --fast and
 * --exact set mode over the file's.
 */
#include "scenario.h"
#include "scenario_internal.h"

#include <yaml.h>

void sc_simulation_defaults(sc_scenario *sc)
{
    sc->simulation.fast = 0;
    sc->simulation.arrival_quantum_s = SC_ARRIVAL_QUANTUM_S;
}

void sc_parse_simulation(sc_loader *L, yaml_node_t *n, sc_scenario *sc)
{
    static const char *const keys[] = {"mode", "arrival_quantum", NULL};
    static const char *const modes[] = {"exact", "fast", NULL};
    if (sc_check_map(L, n, "simulation", keys))
        return;
    sc_kv mode = sc_find(L, n, "mode"), q = sc_find(L, n, "arrival_quantum");
    if (mode.val) {
        int m;
        if (sc_want_enum(L, mode.val, "simulation.mode", modes, &m) == 0)
            sc->simulation.fast = m == 1;
    }
    if (q.val)
        sc_want_dur(L, q.val, "simulation.arrival_quantum", 1, &sc->simulation.arrival_quantum_s);
}
