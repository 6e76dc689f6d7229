/*
 * fuzz_nginx.c - fuzzes the nginx configuration reader
 * (policies/nginx_upstream.c): the input is an nginx configuration, read
 * for an upstream block (the name after the input's first `upstream`, and
 * a fixed one) and for the location blocks of its server, each location
 * then matched against its own URI and a few request paths; then as the
 * scenario loader reads it, for load_balancer.nginx and for routes.nginx.
 */
#include "fuzz.h"

#include "nginx_upstream.h"
#include "scenario.h"

#include <ctype.h>

static const char SCENARIO[] =
    "name: nginx\n"
    "duration: 1h\n"
    "models: {m: {service: {mean: 10ms}}}\n"
    "pools: {gpu: {model: m, replicas: 3}}\n"
    "traffic: [{name: api, pool: gpu, path: /v1/x, arrivals: {rate: 10}}]\n";

/* The scenario with a load_balancer (routes = 0) or routes (1) section
 * reading nginx.conf, naming upstream `name`. */
static void load_scenario(int routes, const char *name)
{
    char text[1024], path[512];
    int n = snprintf(text, sizeof text,
                     routes ? "%sroutes: {nginx: nginx.conf, upstreams: {'%s': gpu}}\n"
                            : "%sload_balancer: {nginx: nginx.conf, upstream: '%s'}\n",
                     SCENARIO, name);
    fz_write(path, sizeof path, "s.yaml", (const uint8_t *)text, (size_t)n);
    sc_free(sc_load(path, NULL, 0, fz_err()));
}

/* The word after the first "upstream" in text (or ""), into name. */
static void first_upstream(const char *text, char *name, size_t len)
{
    const char *s = strstr(text, "upstream");
    size_t n = 0;
    if (s) {
        s += 8;
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        while (n + 1 < len && s[n] && !isspace((unsigned char)s[n]) && s[n] != '{' && s[n] != ';')
            n++;
        memcpy(name, s, n);
    }
    name[n] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    char name[128], err[512];
    first_upstream(text, name, sizeof name);
    const char *names[] = {name, "backend"};
    for (int i = 0; i < 2; i++) {
        lb_nginx_upstream u;
        (void)lb_nginx_parse(text, "fuzz.conf", names[i], &u, err, sizeof err);
        lb_nginx_free(&u);
    }

    char path[512];
    fz_write(path, sizeof path, "nginx.conf", data, size);
    lb_nginx_locations l;
    if (lb_nginx_read_locations(path, &l, err, sizeof err) == 0) {
        static const char *const paths[] = {"/", "", "/v1/score", "/admin/x", "/healthz"};
        for (int i = 0; i < l.n; i++)
            (void)lb_nginx_match(&l, l.loc[i].uri);
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
            (void)lb_nginx_match(&l, paths[i]);
    }
    lb_nginx_locations_free(&l);

    /* a name that goes into single quotes in YAML as it is */
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.') {
            name[0] = '\0';
            break;
        }
    load_scenario(0, *name ? name : "backend");
    load_scenario(1, *name ? name : "backend");
    free(text);
    return 0;
}
