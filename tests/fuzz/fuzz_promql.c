/*
 * fuzz_promql.c - fuzzes the PromQL parser (monitoring/promql_parse.c) that
 * reads every rule's `expr`, directly: the input is one expression; one that
 * parses is evaluated against a small store at a few times
 * (monitoring/promql_eval.c).
 */
#include "fuzz.h"

#include "fuzz_mon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mon_store *s;
    if (!s)
        s = fz_mon_store(); /* only read: shared by every input */
    char *text = fz_text(data, size);
    mon_error err;
    mon_expr *e = mon_expr_parse(text, &err);
    free(text);
    if (!e)
        return 0;
    (void)mon_expr_lookback_s(e);
    static const double at[] = {0, 7.5, 300, 450, 600, 1e9};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        mon_value v;
        if (mon_expr_eval(e, s, at[i], &v, &err) == 0)
            mon_value_free(&v);
    }
    mon_expr_free(e);
    return 0;
}
