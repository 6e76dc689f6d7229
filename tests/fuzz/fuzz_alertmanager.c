/*
 * fuzz_alertmanager.c - fuzzes the Alertmanager configuration reader
 * (monitoring/alertmanager.c): the input is an alertmanager.yml, loaded
 * from memory; one that loads is given a few alerts that fire and resolve
 * over two hours, so its routes, grouping, timers and inhibit rules run.
 */
#include "fuzz.h"

#include "mon.h"

#include <math.h>

static const char *const ALERTS[] = {
    "{alertname=\"HighCPU\",severity=\"warning\",pool=\"gpu\",node=\"gpu/0\"}",
    "{alertname=\"CriticalCPU\",severity=\"critical\",pool=\"gpu\",node=\"gpu/0\"}",
    "{alertname=\"ServiceDown\",severity=\"disaster\",pool=\"gpu\"}",
    "{alertname=\"Other\",team=\"x\"}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    mon_error err;
    mon_am *am = mon_am_load_string(text, "alertmanager.yml", &err);
    free(text);
    if (!am)
        return 0;
    enum { N = sizeof ALERTS / sizeof *ALERTS };
    mon_labels ls[N];
    for (int i = 0; i < N; i++) {
        if (mon_labels_parse(ALERTS[i], &ls[i], &err) != 0)
            abort(); /* the harness's own labels */
        char buf[256];
        (void)mon_am_receivers_for(am, &ls[i], buf, sizeof buf);
    }
    for (int k = 0; k <= 48; k++) {
        double t = 150.0 * k;
        for (int i = 0; i < N; i++) {
            double start = 300.0 * i;
            if (t >= start)
                mon_am_put(am, &ls[i], start, t > start + 1800 * (i + 1) ? t : NAN, t);
        }
        for (int j = 0; j < 20 && mon_am_next_flush(am) <= t; j++)
            (void)mon_am_advance(am, t);
    }
    size_t n;
    (void)mon_am_notifications(am, &n);
    for (int i = 0; i < N; i++)
        mon_labels_free(&ls[i]);
    mon_am_free(am);
    return 0;
}
