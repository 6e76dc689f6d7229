/*
 * fuzz_hpa.c - fuzzes the Kubernetes HorizontalPodAutoscaler manifest reader
 * (policies/autoscale/hpa_manifest.c): the input is a manifest, parsed from
 * memory, then from a file by the `hpa` policy as a scenario's autoscaler
 * creates it; a policy that reads it is then run for a few sync periods on
 * made-up pods whose load rises and falls, with every metric the manifest
 * names present, so the values it read go through the controller's
 * arithmetic.
 */
#include "fuzz.h"

#include "autoscale.h"
#include "autoscale/hpa_manifest.h"

#define MAX_PODS 32
#define MAX_METRICS 8

static void run_policy(as *a, const as_hpa_spec *spec)
{
    static const double load[] = {0.2, 0.9, 1.6, 3.0, 2.0, 0.5, 0.1, 0.0, 1.0, 0.7, 0.3, 0.05};
    as_metric metrics[MAX_METRICS];
    int n_metrics = 0;
    for (int i = 0; i < spec->n_metrics && n_metrics < MAX_METRICS; i++)
        if (spec->metrics[i].type != AS_HPA_RESOURCE)
            metrics[n_metrics++] = (as_metric){spec->metrics[i].name, 0};
    as_pod_view pods[MAX_PODS];
    int replicas = 3;
    for (size_t k = 0; k < sizeof load / sizeof *load; k++) {
        double now = 15.0 * (double)k;
        for (int i = 0; i < n_metrics; i++)
            metrics[i].value = 100 * load[k] * replicas;
        int n = replicas < MAX_PODS ? replicas : MAX_PODS;
        for (int i = 0; i < n; i++)
            pods[i] = (as_pod_view){
                .phase = i == n - 1 && k % 3 == 1 ? AS_POD_PENDING : AS_POD_RUNNING,
                .scheduled = 1,
                .ready = i != 0 || k % 2 == 0,
                .start_s = -600,
                .ready_change_s = -300,
                .has_metrics = i != 1,
                .metrics_time_s = now,
                .metrics_window_s = 15,
                .cpu_util = load[k] * (1 + 0.1 * i),
                .gpu_util = load[k],
                .n_custom = n_metrics,
                .custom = metrics,
            };
        as_view v = {
            .now_s = now,
            .current_replicas = replicas,
            .min_replicas = 1,
            .max_replicas = 40,
            .startup_s = 60,
            .n_pods = n,
            .pods = pods,
            .n_metrics = n_metrics,
            .metrics = metrics,
        };
        replicas = as_recommend(a, &v);
        (void)as_reason(a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    as_hpa_spec spec = {0};
    int parsed = as_hpa_manifest_parse((const char *)data, size, "fuzz.yaml", &spec, err,
                                       sizeof err) == 0;

    char path[512];
    fz_write(path, sizeof path, "hpa.yaml", data, size);
    const as_param params[] = {{"manifest", path, 1, 1}};
    const as_config cfg = {"s.yaml", NULL, 1, params};
    as *a = as_create("hpa", &cfg, err, sizeof err);
    if (a && parsed)
        run_policy(a, &spec);
    as_destroy(a);
    as_hpa_spec_free(&spec);
    return 0;
}
