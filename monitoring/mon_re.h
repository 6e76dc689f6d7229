/*
 * mon_re.h - RE2 regular expressions behind a C interface (re2_shim.cc).
 * Prometheus matches label values with Go's regexp, which is RE2: linear
 * time, UTF-8, no backreferences. A pattern is compiled fully anchored as
 * Prometheus anchors it (model/labels/regexp.go: "^(?:" + v + ")$").
 */
#ifndef FLEETSIM_MON_RE_H
#define FLEETSIM_MON_RE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mon_re mon_re;

/* NULL with why filled (RE2's message) when RE2 refuses the pattern. */
mon_re *mon_re_compile(const char *pattern, char *why, size_t why_len);
/* The same, not anchored: for a search (Go's regexp.MustCompile). */
mon_re *mon_re_compile_search(const char *pattern, char *why, size_t why_len);
void mon_re_free(mon_re *re);
/* 1 when the whole of s matches. */
int mon_re_match(const mon_re *re, const char *s);
/* When the whole of src matches, *out (malloc'd) is tmpl with $1, ${1},
 * $name and ${name} replaced by the groups as Go's Regexp.ExpandString
 * does, and 1 is returned; 0 (and *out NULL) when it does not match. */
int mon_re_expand(const mon_re *re, const char *src, const char *tmpl, char **out);
/* Go's Regexp.ReplaceAllString: src with every match of a pattern compiled
 * by mon_re_compile_search replaced by repl expanded as above (malloc'd). */
char *mon_re_replace_all(const mon_re *re, const char *src, const char *repl);

#ifdef __cplusplus
}
#endif

#endif
