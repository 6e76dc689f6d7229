/*
 * test_nginx_oracle.c - weighted_round_robin against a real nginx.
 *
 * Starts the Debian nginx binary on loopback (one process: master_process
 * off, daemon off, its own prefix in /tmp), with an upstream of three local
 * servers that `return 200` their own letter, sends N sequential requests
 * through it, and reads which server answered each. The same weights in
 * fleetsim's weighted_round_robin must give the identical sequence. Cases:
 * weights 5,1,1; 3,2,1 with a `down` server; a backup that must receive
 * nothing; and a primary whose port refuses connections with max_fails=3,
 * where nginx's retry (proxy_next_upstream error) and effective-weight
 * penalty are replayed in fleetsim as the engine does them (lb_on_done with
 * LB_ERROR, then a pick with that server hidden). Bounded: 60 requests per
 * case, a 5 s limit on each connection; nginx is stopped after each case.
 * Also L7 routing: the location nginx picks for a set of paths (exact,
 * nested prefixes, ^~, the catch-all) against lb_nginx_match.
 * If nginx is not installed the test prints why and passes without
 * checking (scripts/install-deps.sh installs it).
 */
#include "lb.h"
#include "nginx_upstream.h"
#include "testutil.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#define REQUESTS 60

static const char *nginx_bin(void)
{
    static const char *cands[] = { "/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx" };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

/* One HTTP/1.0 GET of path to 127.0.0.1:port; the body in buf. -1 on failure. */
static int get_path(int port, const char *path, char *buf, size_t len)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    struct timeval tv = { 5, 0 };
    char rq[512];
    snprintf(rq, sizeof rq, "GET %s HTTP/1.0\r\nHost: oracle\r\n\r\n", path);
    char resp[4096];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        write(fd, rq, strlen(rq)) != (ssize_t)strlen(rq)) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, resp + got, sizeof resp - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    resp[got] = '\0';
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0)
        return -1;
    char *body = strstr(resp, "\r\n\r\n");
    if (!body)
        return -1;
    snprintf(buf, len, "%s", body + 4);
    return 0;
}

static int get(int port, char *buf, size_t len)
{
    return get_path(port, "/", buf, len);
}

/* Starts nginx with dir/nginx.conf (written by the caller, listening on
 * port) and waits up to 3 s for the port; its pid, or -1. */
static pid_t start_nginx(const char *dir, int port)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/nginx.conf", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execl(nginx_bin(), "nginx", "-p", dir, "-e", "stderr", "-c", path, (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    for (int k = 0; k < 60; k++) {
        struct timespec ts = { 0, 50000000 };
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) /* exited: port taken? */
            return -1;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return pid;
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return -1;
}

static void stop_nginx(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

typedef struct {
    const char *params[3];   /* after "server 127.0.0.1:PORT" */
    int dead;                /* server index whose port refuses connections, or -1 */
} oracle_case;

/* Runs nginx with the case's upstream; fills seq with the index of the
 * server that answered each request. 0 on success. */
static int run_nginx(const oracle_case *c, int *seq, int n)
{
    char *dir = tu_tmpdir();
    char conf[8192], path[4096], body[64];
    int base, rc = -1;
    pid_t pid = -1;

    if (!dir)
        return -1;
    snprintf(path, sizeof path, "%s/tmp", dir);
    mkdir(path, 0700);
    for (int attempt = 0; attempt < 5 && rc != 0; attempt++) {
        base = 20000 + (int)((getpid() * 7 + attempt * 97 + time(NULL)) % 20000) / 4 * 4;
        int w = snprintf(conf, sizeof conf,
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "pid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n  access_log off;\n"
            "  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n"
            "  fastcgi_temp_path %s/tmp; uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;\n"
            "  upstream u {\n",
            dir, dir, dir, dir, dir, dir, dir);
        for (int i = 0; i < 3; i++)
            w += snprintf(conf + w, sizeof conf - (size_t)w, "    server 127.0.0.1:%d %s;\n",
                          base + 1 + i, c->params[i]);
        w += snprintf(conf + w, sizeof conf - (size_t)w,
                      "  }\n  server { listen 127.0.0.1:%d; location / { proxy_pass http://u; } }\n",
                      base);
        for (int i = 0; i < 3; i++)
            if (i != c->dead)
                w += snprintf(conf + w, sizeof conf - (size_t)w,
                              "  server { listen 127.0.0.1:%d; location / { return 200 \"%d\"; } }\n",
                              base + 1 + i, i);
        snprintf(conf + w, sizeof conf - (size_t)w, "}\n");
        snprintf(path, sizeof path, "%s/nginx.conf", dir);
        tu_write(path, conf);
        pid = start_nginx(dir, base);
        rc = pid > 0 ? 0 : -1;
    }
    if (rc == 0) {
        for (int k = 0; k < n && rc == 0; k++) {
            if (get(base, body, sizeof body) != 0 || body[0] < '0' || body[0] > '2')
                rc = -1;
            else
                seq[k] = body[0] - '0';
        }
        stop_nginx(pid);
    }
    if (rc != 0) {
        char log[4096];
        snprintf(log, sizeof log, "%s/error.log", dir);
        char *text = tu_read(log);
        fprintf(stderr, "\n  nginx run failed; error.log:\n%s\n", text ? text : "(none)");
        free(text);
    }
    tu_rm_rf(dir);
    free(dir);
    return rc;
}

/* The same upstream in fleetsim: weights, backup, down, max_fails from the
 * parameter strings; a dead server fails each attempt and is retried on
 * another server with the tried one hidden, as nginx's
 * proxy_next_upstream does. */
static void run_fleetsim(const oracle_case *c, int *seq, int n)
{
    lb_server_view s[3];
    lb_view v = { 3, s, 0.0 };
    lb *b = lb_create("weighted_round_robin", 3, NULL);
    lb_request r = { .id = 1 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 3; i++) {
        const char *p = c->params[i];
        const char *w = strstr(p, "weight=");
        const char *mf = strstr(p, "max_fails=");
        s[i] = (lb_server_view){ .up = 1, .weight = w ? atof(w + 7) : 1,
                                 .backup = strstr(p, "backup") != NULL,
                                 .down = strstr(p, "down") != NULL,
                                 .max_fails = mf ? atoi(mf + 10) : 1, .fail_timeout_s = 10 };
    }
    for (int k = 0; k < n; k++) {
        int tried[3] = { 0 }, got;
        for (;;) {
            for (int i = 0; i < 3; i++)
                s[i].up = !tried[i];
            got = lb_pick(b, &v, &r);
            if (got < 0 || got != c->dead)
                break;
            lb_on_done(b, &v, got, 0.0, LB_ERROR);   /* connection refused */
            tried[got] = 1;
        }
        for (int i = 0; i < 3; i++)
            s[i].up = 1;
        seq[k] = got;
        if (got >= 0)
            lb_on_done(b, &v, got, 0.001, LB_OK);
    }
    lb_destroy(b);
}

static void check_case(const char *what, const oracle_case *c)
{
    int ng[REQUESTS], fs[REQUESTS], same = 1;

    if (!nginx_bin()) {
        printf("\n    SKIPPED: nginx is not installed (scripts/install-deps.sh installs the "
               "Debian package); %s not compared with real nginx", what);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(run_nginx(c, ng, REQUESTS), 0);
    run_fleetsim(c, fs, REQUESTS);
    for (int k = 0; k < REQUESTS; k++)
        same &= ng[k] == fs[k];
    printf("\n    %s\n      nginx:    ", what);
    for (int k = 0; k < 28; k++)
        printf("%c", 'a' + ng[k]);
    printf("...\n      fleetsim: ");
    for (int k = 0; k < 28; k++)
        printf("%c", fs[k] >= 0 ? 'a' + fs[k] : '-');
    printf("...");
    CU_ASSERT(same);
}

static void test_weights_5_1_1(void)
{
    const oracle_case c = { { "weight=5", "", "" }, -1 };
    check_case("weights 5,1,1", &c);
}

static void test_weights_with_down(void)
{
    const oracle_case c = { { "weight=3", "weight=2 down", "weight=4" }, -1 };
    check_case("weights 3,2(down),4", &c);
}

static void test_backup_unused(void)
{
    const oracle_case c = { { "weight=3", "weight=2", "backup" }, -1 };
    check_case("weights 3,2 and a backup", &c);
}

static void test_failing_primary(void)
{
    /* server a refuses connections: each failure costs it 6/3 = 2 of
     * effective weight; after 3 failures it is out for fail_timeout */
    const oracle_case c = { { "weight=6 max_fails=3", "weight=2", "weight=1" }, 0 };
    check_case("weights 6(refusing, max_fails=3),2,1", &c);
}

/* L7 routing: the location nginx picks for each path equals the one
 * lb_nginx_match picks on the same file (read by lb_nginx_read_locations).
 * Location i answers "i", in file order: exact, prefixes nested three
 * deep, ^~, the catch-all, and a longer prefix written after shorter ones. */
static void test_locations(void)
{
    static const char *const paths[] = {
        "/v1/exact", "/v1/exact/x", "/v1", "/v1x", "/v1/score", "/v1/scorecard",
        "/v1/score/deep", "/v1/score/deep/y", "/static/a.js", "/static", "/other", "/v", "/",
    };
    enum { N_PATHS = sizeof paths / sizeof paths[0] };
    if (!nginx_bin()) {
        printf("\n    SKIPPED: nginx is not installed; locations not compared with real nginx");
        return;
    }
    char *dir = tu_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[4096], conf[4096], body[64];
    snprintf(path, sizeof path, "%s/tmp", dir);
    mkdir(path, 0700);
    pid_t pid = -1;
    int port = 0;
    for (int attempt = 0; attempt < 5 && pid < 0; attempt++) {
        port = 20000 + (int)((getpid() * 13 + attempt * 89 + time(NULL)) % 20000);
        snprintf(conf, sizeof conf,
                 "daemon off;\nmaster_process off;\nworker_processes 1;\n"
                 "pid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
                 "events { worker_connections 64; }\n"
                 "http {\n  access_log off;\n"
                 "  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n"
                 "  fastcgi_temp_path %s/tmp; uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;\n"
                 "  server {\n    listen 127.0.0.1:%d;\n"
                 "    location = /v1/exact { return 200 \"0\"; }\n"
                 "    location /v1 { return 200 \"1\"; }\n"
                 "    location /v1/score { return 200 \"2\"; }\n"
                 "    location ^~ /static/ { return 200 \"3\"; }\n"
                 "    location / { return 200 \"4\"; }\n"
                 "    location /v1/score/deep { return 200 \"5\"; }\n"
                 "    location @fallback { return 200 \"9\"; }\n"
                 "  }\n}\n",
                 dir, dir, dir, dir, dir, dir, dir, port);
        snprintf(path, sizeof path, "%s/nginx.conf", dir);
        tu_write(path, conf);
        pid = start_nginx(dir, port);
    }
    CU_ASSERT_FATAL(pid > 0);
    lb_nginx_locations locs;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(lb_nginx_read_locations(path, &locs, err, sizeof err), 0);
    CU_ASSERT_EQUAL(locs.n, 6); /* the named location is not matched by paths */
    printf("\n    path -> location (nginx, fleetsim):");
    for (int i = 0; i < N_PATHS; i++) {
        int ng = get_path(port, paths[i], body, sizeof body) == 0 ? atoi(body) : -1;
        int fs = lb_nginx_match(&locs, paths[i]);
        printf(" %s %d %d;", paths[i], ng, fs);
        CU_ASSERT(ng >= 0);
        CU_ASSERT_EQUAL(ng, fs);
    }
    lb_nginx_locations_free(&locs);
    stop_nginx(pid);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        { "nginx: weights 5,1,1", test_weights_5_1_1 },
        { "nginx: a server marked down", test_weights_with_down },
        { "nginx: backup receives nothing", test_backup_unused },
        { "nginx: failing primary, retries and max_fails", test_failing_primary },
        { "nginx: location matching", test_locations },
    };
    CU_pSuite suite;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("nginx_oracle", NULL, NULL);
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
