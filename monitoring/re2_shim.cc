/*
 * re2_shim.cc - the one C++ file of fleetsim: RE2 (Debian's libre2) behind
 * the C interface of mon_re.h, for PromQL's =~ and !~, label_replace and
 * Alertmanager's match_re. Patterns are anchored as Prometheus anchors
 * them ("^(?:" + v + ")$", model/labels/regexp.go) and compiled with RE2's
 * default (Perl-like, UTF-8) syntax, which is the syntax of Go's regexp.
 */
#include "mon_re.h"

#include <re2/re2.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <vector>

struct mon_re {
    RE2 *re;
};

extern "C" mon_re *mon_re_compile(const char *pattern, char *why, size_t why_len)
{
    RE2::Options opt;
    opt.set_log_errors(false);
    /* The pattern alone first, so that a refusal quotes the user's text
     * (Prometheus parses it alone too, syntax.Parse in NewFastRegexMatcher). */
    {
        RE2 raw(pattern, opt);
        if (!raw.ok()) {
            if (why && why_len)
                snprintf(why, why_len, "%s", raw.error().c_str());
            return nullptr;
        }
    }
    std::string pat = "^(?:";
    pat += pattern;
    pat += ")$";
    RE2 *re = new (std::nothrow) RE2(pat, opt);
    if (!re || !re->ok()) {
        if (why && why_len)
            snprintf(why, why_len, "%s", re ? re->error().c_str() : "out of memory");
        delete re;
        return nullptr;
    }
    mon_re *r = static_cast<mon_re *>(std::malloc(sizeof *r));
    if (!r) {
        delete re;
        return nullptr;
    }
    r->re = re;
    return r;
}

extern "C" void mon_re_free(mon_re *re)
{
    if (!re)
        return;
    delete re->re;
    std::free(re);
}

extern "C" int mon_re_match(const mon_re *re, const char *s)
{
    return RE2::PartialMatch(s, *re->re) ? 1 : 0;
}

static int name_char(char c)
{
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

/* Go's regexp.expand (regexp.go): $$ is '$'; $name takes the longest run
 * of letters, digits and '_'; ${name} is braced; a number names a group by
 * index; an unknown or unmatched group is empty; a malformed reference
 * leaves the '$' as text. */
extern "C" int mon_re_expand(const mon_re *re, const char *src, const char *tmpl, char **out)
{
    *out = nullptr;
    int ngroups = re->re->NumberOfCapturingGroups();
    std::vector<re2::StringPiece> g(static_cast<size_t>(ngroups) + 1);
    re2::StringPiece text(src);
    if (!re->re->Match(text, 0, text.size(), RE2::UNANCHORED, g.data(), ngroups + 1))
        return 0;
    const std::map<std::string, int> &named = re->re->NamedCapturingGroups();
    std::string res;
    for (const char *p = tmpl; *p;) {
        if (*p != '$') {
            res += *p++;
            continue;
        }
        if (p[1] == '$') {
            res += '$';
            p += 2;
            continue;
        }
        std::string name;
        const char *q = p + 1;
        if (*q == '{') {
            const char *e = q + 1;
            while (name_char(*e))
                e++;
            if (e == q + 1 || *e != '}') {
                res += '$';
                p++;
                continue;
            }
            name.assign(q + 1, static_cast<size_t>(e - q - 1));
            q = e + 1;
        } else {
            const char *e = q;
            while (name_char(*e))
                e++;
            if (e == q) {
                res += '$';
                p++;
                continue;
            }
            name.assign(q, static_cast<size_t>(e - q));
            q = e;
        }
        p = q;
        int idx = -1;
        bool digits = true;
        for (char c : name)
            digits = digits && std::isdigit(static_cast<unsigned char>(c));
        if (digits) {
            /* strconv.Atoi; an index too large simply matches nothing */
            idx = name.size() > 9 ? -1 : std::atoi(name.c_str());
        } else {
            auto it = named.find(name);
            if (it != named.end())
                idx = it->second;
        }
        if (idx >= 0 && idx <= ngroups && g[static_cast<size_t>(idx)].data())
            res.append(g[static_cast<size_t>(idx)].data(), g[static_cast<size_t>(idx)].size());
    }
    char *o = static_cast<char *>(std::malloc(res.size() + 1));
    if (!o)
        std::abort();
    std::memcpy(o, res.data(), res.size());
    o[res.size()] = '\0';
    *out = o;
    return 1;
}
