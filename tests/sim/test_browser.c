/*
 * test_browser.c - report.html and compare.html rendered in headless
 * Chromium: the screenshot has the window's size and is far from blank
 * (compared with a screenshot of an empty page taken the same way), and the
 * browser logged no console message. A page that throws is rendered first,
 * to show the console check does catch errors with this Chromium.
 *
 * Skipped, with a message saying so, only where no chromium binary exists.
 */
#include "testutil.h"

#include <CUnit/Basic.h>

#include <sys/stat.h>

#define WIDTH 1280
#define HEIGHT 2000

static char *tmp;
static const char *browser;

static const char *scenario_text =
    "name: browser-test\n"
    "description: \"Checked in a browser & escaped <i>\"\n"
    "seed: 5\n"
    "duration: 10m\n"
    "interval: 5s\n"
    "models:\n"
    "  m:\n"
    "    service: {distribution: lognormal, cv: 0.3, base: 10ms, per_item: 2ms}\n"
    "    batch: {max_size: 8, max_wait: 2ms}\n"
    "pools:\n"
    "  gpu: {model: m, replicas: 2, gpus_per_node: 1, queue_capacity: 128, timeout: 1s}\n"
    "traffic:\n"
    "  - name: api\n"
    "    pool: gpu\n"
    "    arrivals: {process: poisson, rate: [{at: 0s, qps: 50}, {at: 5m, qps: 900, ramp: 10s},"
    " {at: 320s, qps: 50, ramp: 10s}]}\n"
    "slo: {latency_p99: 250ms, availability: 0.999}\n";

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Width and height from a PNG's IHDR chunk; 0 if not a PNG. */
static int png_size(const char *path, unsigned *w, unsigned *h)
{
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n < 24 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0)
        return 0;
    *w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
    *h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
    return 1;
}

/* Screenshots page into png; the browser's log goes to log. */
static int shoot(const char *page, const char *png, const char *log)
{
    return tu_sh(log,
                 "(profile=$(mktemp -d) && timeout 120 '%s' --headless --no-sandbox --disable-gpu "
                 "--disable-background-networking --disable-component-update --disable-sync "
                 "--no-first-run --hide-scrollbars --user-data-dir=\"$profile\" "
                 "--enable-logging=stderr --v=0 --screenshot='%s' --window-size=%d,%d 'file://%s'; "
                 "rc=$?; rm -rf \"$profile\"; exit $rc)",
                 browser, png, WIDTH, HEIGHT, page);
}

/* Console lines in a Chromium log ("...:CONSOLE(...)" or "Uncaught"). */
static int console_lines(const char *log)
{
    char *t = tu_read(log);
    if (!t)
        return -1;
    int n = 0;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, ":CONSOLE") || strstr(line, "Uncaught")) {
            fprintf(stderr, "  browser console: %s\n", line);
            n++;
        }
    free(t);
    return n;
}

static long blank_size;

static void test_console_check_works(void)
{
    char page[4200], png[4200], log[4200];
    snprintf(page, sizeof page, "%s/throws.html", tmp);
    snprintf(png, sizeof png, "%s/throws.png", tmp);
    snprintf(log, sizeof log, "%s/throws.log", tmp);
    tu_write(page, "<!DOCTYPE html><html><body><script>throw new Error('boom')</script>"
                   "</body></html>\n");
    CU_ASSERT_EQUAL_FATAL(shoot(page, png, log), 0);
    CU_ASSERT(console_lines(log) >= 1);

    snprintf(page, sizeof page, "%s/blank.html", tmp);
    snprintf(png, sizeof png, "%s/blank.png", tmp);
    snprintf(log, sizeof log, "%s/blank.log", tmp);
    tu_write(page, "<!DOCTYPE html><html><body></body></html>\n");
    CU_ASSERT_EQUAL_FATAL(shoot(page, png, log), 0);
    blank_size = file_size(png);
    CU_ASSERT(blank_size > 0);
}

static void check_page(const char *page, const char *name)
{
    char png[4200], log[4200];
    snprintf(png, sizeof png, "%s/%s.png", tmp, name);
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    CU_ASSERT_EQUAL_FATAL(shoot(page, png, log), 0);
    unsigned w = 0, h = 0;
    CU_ASSERT_TRUE_FATAL(png_size(png, &w, &h));
    CU_ASSERT_EQUAL(w, WIDTH);
    CU_ASSERT_EQUAL(h, HEIGHT);
    /* charts, tables and text compress far worse than an empty page */
    long size = file_size(png);
    fprintf(stderr, "  %s: %ld bytes (empty page: %ld)\n", name, size, blank_size);
    CU_ASSERT(blank_size > 0 && size > 4 * blank_size);
    CU_ASSERT_EQUAL(console_lines(log), 0);
}

static void test_report_html(void)
{
    char scen[4200], out[4200], log[4200], page[4300];
    snprintf(scen, sizeof scen, "%s/s.yaml", tmp);
    snprintf(out, sizeof out, "%s/run", tmp);
    snprintf(log, sizeof log, "%s/run.log", tmp);
    tu_write(scen, scenario_text);
    CU_ASSERT_EQUAL_FATAL(tu_sh(log, "'%s' run '%s' --out '%s' --quiet", tu_bin(), scen, out), 0);
    snprintf(page, sizeof page, "%s/report.html", out);
    check_page(page, "report");
}

static void test_compare_html(void)
{
    char scen[4200], out[4200], log[4200], page[4300];
    snprintf(scen, sizeof scen, "%s/s.yaml", tmp);
    snprintf(out, sizeof out, "%s/cmp", tmp);
    snprintf(log, sizeof log, "%s/cmp.log", tmp);
    CU_ASSERT_EQUAL_FATAL(tu_sh(log, "'%s' compare '%s' --vary pools.gpu.replicas=2,3 --seeds 2 "
                                     "--out '%s'",
                                tu_bin(), scen, out),
                          0);
    snprintf(page, sizeof page, "%s/compare.html", out);
    check_page(page, "compare");
}

int main(void)
{
    static const char *const names[] = { "chromium", "chromium-browser", "google-chrome" };
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !browser; i++)
        if (tu_sh(NULL, "command -v %s >/dev/null 2>&1", names[i]) == 0)
            browser = names[i];
    if (!browser) {
        printf("SKIP test_browser: no chromium binary (apt-get install chromium, or "
               "scripts/install-deps.sh); report.html and compare.html were NOT checked in a "
               "browser\n");
        return 0;
    }
    tmp = tu_tmpdir();
    if (!tmp || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("browser", NULL, NULL);
    CU_add_test(s, "console errors are caught (control)", test_console_check_works);
    CU_add_test(s, "report.html renders without console errors", test_report_html);
    CU_add_test(s, "compare.html renders without console errors", test_compare_html);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    tu_rm_rf(tmp);
    free(tmp);
    return fails != 0;
}
