/*
 * fuzz.h - what the fuzz harnesses in tests/fuzz/ share. Each harness
 * (fuzz_<name>.c) defines LLVMFuzzerTestOneInput for one reader of user
 * input; it is linked with libFuzzer when FLEETSIM_FUZZ is on (`make fuzz`),
 * and in every build with replay.c, which feeds it the files of
 * tests/fuzz/regressions/<name>/ and its seed corpus under CTest. Readers
 * that take a path get the input written to a file in a temporary folder of
 * this process (removed at exit); error messages go to /dev/null unless
 * FLEETSIM_FUZZ_VERBOSE is set. Header-only so a harness stays one file.
 */
#ifndef FLEETSIM_FUZZ_H
#define FLEETSIM_FUZZ_H

#define _XOPEN_SOURCE 700 /* nftw, kill */

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FLEETSIM_SRC_DIR
#define FLEETSIM_SRC_DIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir_path[64];

static inline int fz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void fz_cleanup(void)
{
    if (fz_dir_path[0])
        nftw(fz_dir_path, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes the folders of harness processes that have ended without their
 * atexit handler (libFuzzer leaves with _Exit after a finding, and
 * -minimize_crash runs one process per attempt). */
static inline void fz_cleanup_stale(void)
{
    DIR *d = opendir("/tmp");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid;
        char path[300];
        if (sscanf(e->d_name, "fleetsim-fuzz-%ld-", &pid) != 1 || pid <= 0 ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof path, "/tmp/%s", e->d_name);
        nftw(path, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (d)
        closedir(d);
}

/* This process's temporary folder, made on first use. */
static inline const char *fz_dir(void)
{
    if (!fz_dir_path[0]) {
        fz_cleanup_stale();
        snprintf(fz_dir_path, sizeof fz_dir_path, "/tmp/fleetsim-fuzz-%ld-XXXXXX", (long)getpid());
        if (!mkdtemp(fz_dir_path)) {
            perror("fleetsim fuzz: mkdtemp");
            abort();
        }
        atexit(fz_cleanup);
    }
    return fz_dir_path;
}

/* path = the temporary folder / name. */
static inline void fz_path(char *path, size_t len, const char *name)
{
    snprintf(path, len, "%s/%s", fz_dir(), name);
}

/* Writes the input to the temporary folder as name; its path in path. */
static inline void fz_write(char *path, size_t len, const char *name, const uint8_t *data,
                            size_t size)
{
    fz_path(path, len, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
}

/* A link in the temporary folder named name to src_rel (relative to the
 * source tree), made once, so that inputs can name shipped files. */
static inline void fz_link(const char *name, const char *src_rel)
{
    char path[512], target[1024];
    fz_path(path, sizeof path, name);
    snprintf(target, sizeof target, "%s/%s", FLEETSIM_SRC_DIR, src_rel);
    if (access(path, F_OK) != 0 && symlink(target, path) != 0) {
        perror(path);
        abort();
    }
}

/* Where readers write their messages. */
static inline FILE *fz_err(void)
{
    static FILE *f;
    if (!f)
        f = getenv("FLEETSIM_FUZZ_VERBOSE") ? stderr : fopen("/dev/null", "w");
    return f;
}

/* The input as a NUL-terminated string (malloc'd). */
static inline char *fz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
