/*
 * fuzz_rb_model.c - fuzzes realbench's model reader (realbench/model.c,
 * rb_model_load): the input is a model file (realbench/models/NAME.yaml);
 * a model that loads has its work counted and its shapes written, as
 * `realbench shapes` does.
 */
#include "fuzz.h"

#include "realbench.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fz_write(path, sizeof path, "model.yaml", data, size);
    rb_model *m = rb_model_load(path, fz_err());
    if (m) {
        (void)rb_model_macs_per_item(m);
        rb_model_write_shapes(m, fz_err());
    }
    rb_model_free(m);
    return 0;
}
