/*
 * fuzz_compare.c - fuzzes the readers of `fleetsim merge`: the JSON-lines
 * records of sweep shards (reports/compare.c, rp_compare_load_jsonl) and
 * the --reference file of published figures. The input is a .jsonl file,
 * optionally followed by a line `%%` and a reference JSON; what loads is
 * written as compare.json, compare.md and compare.html into a temporary
 * folder, as `fleetsim merge` does.
 */
#include "fuzz.h"

#include "compare.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    char *ref_text = NULL;
    if (!strncmp(text, "%%\n", 3)) {
        ref_text = text + 3;
        *text = '\0';
    } else if ((ref_text = strstr(text, "\n%%\n"))) {
        ref_text[1] = '\0';
        ref_text += 4;
    }
    char path[512], out[512];
    fz_write(path, sizeof path, "shard.jsonl", (const uint8_t *)text, strlen(text));
    fz_path(out, sizeof out, "out");
    mkdir(out, 0700);
    /* as sim/cli/compare.c's finish_compare takes a reference */
    cJSON *ref = ref_text ? cJSON_Parse(ref_text) : NULL;
    int ref_ok = !ref_text || (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(ref, "rows")) &&
                               cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(ref, "columns")));
    rp_compare *c = rp_compare_new();
    if (ref_ok && rp_compare_load_jsonl(c, path, fz_err()) == 0)
        (void)rp_compare_write(c, out, ref, fz_err());
    rp_compare_free(c);
    cJSON_Delete(ref);
    free(text);
    return 0;
}
