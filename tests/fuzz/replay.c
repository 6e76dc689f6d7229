/*
 * replay.c - a main for a fuzz harness without libFuzzer: calls its
 * LLVMFuzzerTestOneInput once on each file named on the command line, and
 * on each file in each folder named (recursively; a folder that does not
 * exist is skipped). CTest runs it on tests/fuzz/regressions/<name>/ and
 * the harness's seed corpus, so every input that once crashed a reader is
 * checked again by `make test`, under ASan and UBSan in the sanitizer
 * build. Fails when it found no input at all, so a wrong path cannot pass.
 */
#include "fuzz.h"

#include <errno.h>
#include <sys/stat.h>

static int n_inputs;

static int replay_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t cap = (size_t)st->st_size + 1, len;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return 1;
    }
    len = fread(buf, 1, cap - 1, f);
    fclose(f);
    if (getenv("FLEETSIM_FUZZ_VERBOSE"))
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    /* A copy of exactly len bytes, so that ASan sees a read past the input. */
    uint8_t *in = malloc(len ? len : 1);
    if (len)
        memcpy(in, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(in, len);
    free(in);
    n_inputs++;
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            if (errno == ENOENT)
                continue;
            perror(argv[i]);
            return 1;
        }
        if (nftw(argv[i], replay_one, 16, FTW_PHYS) != 0)
            return 1;
    }
    fprintf(stderr, "replayed %d inputs\n", n_inputs);
    return n_inputs > 0 ? 0 : 1;
}
