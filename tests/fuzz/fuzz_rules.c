/*
 * fuzz_rules.c - fuzzes the Prometheus rule file reader
 * (monitoring/rules.c, with the PromQL and template parsers it calls): the
 * input is a rule file, loaded from memory; rules that load are evaluated
 * against a small store at up to 40 due evaluation times in the first ten
 * minutes, so alert states, `for`, labels and annotation templates run too.
 */
#include "fuzz.h"

#include "fuzz_mon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    mon_error err;
    mon_rules *r = mon_rules_load_string(text, "rules.yml", 15, &err);
    free(text);
    if (!r)
        return 0;
    mon_store *s = fz_mon_store();
    (void)mon_rules_retention_s(r);
    (void)mon_rules_common_interval(r);
    mon_rules_keep_firing_log(r, 1);
    for (int i = 0; i < 40; i++) {
        double t = mon_rules_next_eval(r);
        if (!(t <= FZ_MON_END_S))
            break;
        (void)mon_rules_eval(r, s, t);
    }
    size_t n;
    (void)mon_rules_transitions(r, &n);
    (void)mon_rules_alerts(r, &n);
    (void)mon_rules_last_error(r);
    mon_store_destroy(s);
    mon_rules_free(r);
    return 0;
}
