/*
 * test_nginx_upstream.c - the nginx upstream block reader: the shipped
 * scenarios/nginx/deepseek.conf, every method directive and server
 * parameter with nginx's defaults, nginx's syntax (nesting, comments,
 * quotes), and an exact file:line:col message for each kind of bad input.
 */
#include "nginx_upstream.h"
#include "testutil.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

static void test_deepseek_conf(void)
{
    char path[4096], err[512];
    lb_nginx_upstream u;

    snprintf(path, sizeof path, "%s/scenarios/nginx/deepseek.conf", tu_src());
    CU_ASSERT_EQUAL_FATAL(lb_nginx_read(path, "deepseek_servers", &u, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(u.name, "deepseek_servers");
    CU_ASSERT_STRING_EQUAL(u.policy, "weighted_round_robin");
    CU_ASSERT_EQUAL_FATAL(u.n_servers, 3);
    CU_ASSERT_STRING_EQUAL(u.servers[0].address, "10.0.0.1:8000");
    CU_ASSERT_STRING_EQUAL(u.servers[2].address, "10.0.0.3:8000");
    CU_ASSERT_EQUAL(u.servers[0].weight, 3);
    CU_ASSERT_EQUAL(u.servers[1].weight, 2);
    CU_ASSERT_EQUAL(u.servers[2].weight, 1);
    CU_ASSERT(!u.servers[0].backup && !u.servers[1].backup && u.servers[2].backup);
    for (int i = 0; i < 3; i++) {   /* nginx's defaults */
        CU_ASSERT_EQUAL(u.servers[i].max_fails, 1);
        CU_ASSERT_DOUBLE_EQUAL(u.servers[i].fail_timeout_s, 10.0, 0);
        CU_ASSERT_EQUAL(u.servers[i].max_conns, 0);
        CU_ASSERT_EQUAL(u.servers[i].down, 0);
    }
    CU_ASSERT_EQUAL(u.servers[1].line, 7);
    CU_ASSERT_EQUAL(u.servers[1].col, 5);
    lb_nginx_free(&u);
    CU_ASSERT_EQUAL(lb_nginx_read(path, "other", &u, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "upstream \"other\" not found"));
    lb_nginx_free(&u);
    CU_ASSERT_EQUAL(lb_nginx_read("/nonexistent/x.conf", "a", &u, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/x.conf: "));
    lb_nginx_free(&u);
}

static void test_full_config_and_params(void)
{
    const char *conf =
        "user www-data;  # a whole nginx.conf around it\n"
        "events { worker_connections 768; }\n"
        "http {\n"
        "    log_format main '$remote_addr \"$request\" {x}' ;\n"
        "    upstream other { server 1.1.1.1; least_conn; }\n"
        "    upstream \"api\" {\n"
        "        zone api 64k;\n"
        "        server a.internal:80 weight=5 max_fails=3 fail_timeout=1m30s max_conns=100;\n"
        "        server 'b.internal:80' down;   # maintenance\n"
        "        server unix:/run/c.sock fail_timeout=500ms max_fails=0 backup;\n"
        "        least_conn;\n"
        "    }\n"
        "    server { listen 80; location / { proxy_pass http://api; } }\n"
        "}\n";
    char err[512];
    lb_nginx_upstream u;

    CU_ASSERT_EQUAL_FATAL(lb_nginx_parse(conf, "t.conf", "api", &u, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(u.policy, "least_conn");
    CU_ASSERT_EQUAL_FATAL(u.n_servers, 3);
    CU_ASSERT_EQUAL(u.servers[0].weight, 5);
    CU_ASSERT_EQUAL(u.servers[0].max_fails, 3);
    CU_ASSERT_DOUBLE_EQUAL(u.servers[0].fail_timeout_s, 90.0, 1e-12);
    CU_ASSERT_EQUAL(u.servers[0].max_conns, 100);
    CU_ASSERT_STRING_EQUAL(u.servers[1].address, "b.internal:80");
    CU_ASSERT_EQUAL(u.servers[1].down, 1);
    CU_ASSERT_STRING_EQUAL(u.servers[2].address, "unix:/run/c.sock");
    CU_ASSERT_DOUBLE_EQUAL(u.servers[2].fail_timeout_s, 0.5, 1e-12);
    CU_ASSERT_EQUAL(u.servers[2].max_fails, 0);
    CU_ASSERT_EQUAL(u.servers[2].backup, 1);
    lb_nginx_free(&u);
    CU_ASSERT_EQUAL_FATAL(lb_nginx_parse(conf, "t.conf", "other", &u, err, sizeof err), 0);
    CU_ASSERT_EQUAL(u.n_servers, 1);
    lb_nginx_free(&u);
}

static void expect_method(const char *method, const char *policy, int hash_mode, const char *key)
{
    char conf[512], err[512];
    lb_nginx_upstream u;

    snprintf(conf, sizeof conf, "upstream u {\n  %s\n  server a:1;\n  server b:1 weight=2;\n}\n", method);
    CU_ASSERT_EQUAL_FATAL(lb_nginx_parse(conf, "m.conf", "u", &u, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(u.policy, policy);
    if (hash_mode >= 0) {
        CU_ASSERT_EQUAL(u.params.hash_mode, hash_mode);
        CU_ASSERT_STRING_EQUAL(u.params.hash_key, key);
    }
    CU_ASSERT_PTR_NOT_NULL(lb_find(u.policy));   /* a registered policy */
    lb_nginx_free(&u);
}

static void test_methods(void)
{
    expect_method("", "weighted_round_robin", -1, NULL);
    expect_method("least_conn;", "least_conn", -1, NULL);
    expect_method("random;", "random", -1, NULL);
    expect_method("random two;", "random_two_least_conn", -1, NULL);
    expect_method("random two least_conn;", "random_two_least_conn", -1, NULL);
    expect_method("hash $request_uri consistent;", "hash", LB_HASH_CONSISTENT, "$request_uri");
    expect_method("hash $remote_addr;", "hash", LB_HASH_PLAIN, "$remote_addr");
    expect_method("ip_hash;", "hash", LB_HASH_IP, "$remote_addr");
    expect_method("least_time last_byte;", "least_time", -1, NULL);
}

static void expect_error(const char *conf, const char *want)
{
    char err[512];
    lb_nginx_upstream u;

    CU_ASSERT_EQUAL(lb_nginx_parse(conf, "e.conf", "u", &u, err, sizeof err), -1);
    if (!strstr(err, want))
        fprintf(stderr, "\n  got:  %s\n  want: %s\n", err, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    lb_nginx_free(&u);
}

static void test_errors(void)
{
    expect_error("upstream u {\n  server a:1;\n  keepalive 16;\n}\n",
                 "e.conf:3:3: directive \"keepalive\" is not supported in an upstream block");
    expect_error("upstream u {\n  server a:1 slow_start=30s;\n}\n",
                 "e.conf:2:14: server parameter \"slow_start=30s\" is not supported");
    expect_error("upstream u {\n  server a:1 weight=0;\n}\n",
                 "e.conf:2:14: invalid parameter \"weight=0\": weight must be an integer >= 1");
    expect_error("upstream u {\n  server a:1 fail_timeout=10x;\n}\n",
                 "e.conf:2:14: invalid parameter \"fail_timeout=10x\"");
    expect_error("upstream u {\n  server a:1 max_fails=-1;\n}\n",
                 "e.conf:2:14: invalid parameter \"max_fails=-1\"");
    expect_error("upstream u {\n  hash $x consistent;\n  server a:1;\n  server b:1 backup;\n}\n",
                 "e.conf:4:3: server parameter \"backup\" cannot be used with \"hash\" (line 2)");
    expect_error("upstream u {\n  random;\n  server a:1 backup;\n}\n",
                 "e.conf:3:3: server parameter \"backup\" cannot be used with \"random\"");
    expect_error("upstream u {\n  least_conn;\n  ip_hash;\n  server a:1;\n}\n",
                 "e.conf:3:3: \"ip_hash\": load balancing method already set by \"least_conn\" at line 2");
    expect_error("upstream u {\n  random three;\n  server a:1;\n}\n",
                 "e.conf:2:10: invalid parameter \"three\"");
    expect_error("upstream u {\n  least_time header inflight;\n  server a:1;\n}\n",
                 "e.conf:2:21: least_time parameter \"inflight\" is not supported");
    expect_error("upstream u {\n  server a:1\n}\n",
                 "e.conf:3:1: directive \"server\" is not terminated by \";\"");
    expect_error("upstream u {\n  server a:1;\n", "e.conf:1:12: unexpected end of file, expecting \"}\"");
    expect_error("upstream u {\n}\n", "e.conf:1:12: no servers are inside upstream \"u\"");
    expect_error("http {\n  upstream x { server a; }\n}\n}\n", "e.conf:4:1: unexpected \"}\"");
    expect_error("upstream u { server \"a:1;\n}\n", "e.conf:1:21: unexpected end of file, expecting \"");
    expect_error("upstream u { server \"a\"b; }\n", "e.conf:1:24: unexpected \"b\" after a quoted string");
    expect_error("http { upstream v { server a; } }\n", "e.conf:1:1: upstream \"u\" not found");
}

/* location blocks as nginx reads them (ngx_http_core_location): a
 * modifier joined to its URI, quotes, comments, if blocks, servers nested
 * in http, a first server block without locations. */
static void test_locations(void)
{
    char *dir = tu_tmpdir(), path[4096], err[512];
    lb_nginx_locations l;

    snprintf(path, sizeof path, "%s/l.conf", dir);
    tu_write(path, "http {\n"
                   "  upstream a { server 10.0.0.1; }\n"
                   "  server { listen 8080; }  # no locations: not this one\n"
                   "  server {\n"
                   "    location =/exact { proxy_pass http://a; }\n"
                   "    location ^~/img/ { proxy_pass http://b:8080/x; }\n"
                   "    location \"/api\" {  # quoted\n"
                   "      if ($request_method = POST) { return 405; }\n"
                   "      proxy_pass http://c;\n"
                   "    }\n"
                   "    location / { proxy_pass https://d; }\n"
                   "  }\n"
                   "}\n");
    CU_ASSERT_EQUAL_FATAL(lb_nginx_read_locations(path, &l, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 4);
    CU_ASSERT_STRING_EQUAL(l.loc[0].uri, "/exact");
    CU_ASSERT(l.loc[0].exact);
    CU_ASSERT_STRING_EQUAL(l.loc[1].uri, "/img/");
    CU_ASSERT(!l.loc[1].exact);
    CU_ASSERT_STRING_EQUAL(l.loc[1].upstream, "b");
    CU_ASSERT_STRING_EQUAL(l.loc[2].uri, "/api");
    CU_ASSERT_STRING_EQUAL(l.loc[2].upstream, "c");
    CU_ASSERT_EQUAL(l.loc[0].line, 5);
    CU_ASSERT_EQUAL(lb_nginx_match(&l, "/exact"), 0);
    CU_ASSERT_EQUAL(lb_nginx_match(&l, "/exact/more"), 3);
    CU_ASSERT_EQUAL(lb_nginx_match(&l, "/img/logo.png"), 1);
    CU_ASSERT_EQUAL(lb_nginx_match(&l, "/api/v1"), 2);
    lb_nginx_locations_free(&l);

    /* a joined regular expression is still one, refused at its line */
    tu_write(path, "server {\n  location ~*\\.php$ { proxy_pass http://a; }\n}\n");
    CU_ASSERT_EQUAL(lb_nginx_read_locations(path, &l, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2:3: location ~* \\.php$: regular-expression"));
    lb_nginx_locations_free(&l);
    /* too many words: an error, not a read past them */
    tu_write(path, "server {\n  location = /a /b /c { proxy_pass http://a; }\n}\n");
    CU_ASSERT_EQUAL(lb_nginx_read_locations(path, &l, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2:3: location: expected [=|^~] URI"));
    lb_nginx_locations_free(&l);
    tu_done(dir);
}

int main(void)
{
    const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "scenarios/nginx/deepseek.conf", test_deepseek_conf },
        { "a whole nginx.conf, every server parameter", test_full_config_and_params },
        { "method directives -> policies", test_methods },
        { "errors with file:line:col", test_errors },
        { "location blocks", test_locations },
    };
    CU_pSuite suite;
    int failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("nginx_upstream", NULL, NULL);
    if (!suite) {
        CU_cleanup_registry();
        return 1;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (!CU_add_test(suite, tests[i].name, tests[i].fn)) {
            CU_cleanup_registry();
            return 1;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() != 0;
    CU_cleanup_registry();
    return failed;
}
