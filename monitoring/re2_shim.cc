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

static mon_re *compile(const char *pattern, bool anchored, char *why, size_t why_len)
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
    std::string pat = anchored ? "^(?:" : "";
    pat += pattern;
    if (anchored)
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

extern "C" mon_re *mon_re_compile(const char *pattern, char *why, size_t why_len)
{
    return compile(pattern, true, why, why_len);
}

extern "C" mon_re *mon_re_compile_search(const char *pattern, char *why, size_t why_len)
{
    return compile(pattern, false, why, why_len);
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
 * leaves the '$' as text. Appends tmpl expanded with the groups g[0..ngroups]
 * to res. */
static void expand(const RE2 *re, const re2::StringPiece *g, int ngroups, const char *tmpl,
                   std::string &res)
{
    const std::map<std::string, int> &named = re->NamedCapturingGroups();
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
}

static char *c_string(const std::string &s)
{
    char *o = static_cast<char *>(std::malloc(s.size() + 1));
    if (!o)
        std::abort();
    std::memcpy(o, s.data(), s.size());
    o[s.size()] = '\0';
    return o;
}

/* When the whole of src matches, *out is tmpl expanded with its groups. */
extern "C" int mon_re_expand(const mon_re *re, const char *src, const char *tmpl, char **out)
{
    *out = nullptr;
    int ngroups = re->re->NumberOfCapturingGroups();
    std::vector<re2::StringPiece> g(static_cast<size_t>(ngroups) + 1);
    re2::StringPiece text(src);
    if (!re->re->Match(text, 0, text.size(), RE2::UNANCHORED, g.data(), ngroups + 1))
        return 0;
    std::string res;
    expand(re->re, g.data(), ngroups, tmpl, res);
    *out = c_string(res);
    return 1;
}

/* Go's Regexp.ReplaceAllString (regexp.go, replaceAll): every match, left
 * to right, replaced by repl expanded; no replacement for an empty match
 * right after a match; the search moves on by at least one character (a
 * UTF-8 sequence). The text before a search is context for ^ and \b. */
extern "C" char *mon_re_replace_all(const mon_re *re, const char *src, const char *repl)
{
    int ngroups = re->re->NumberOfCapturingGroups();
    std::vector<re2::StringPiece> g(static_cast<size_t>(ngroups) + 1);
    re2::StringPiece text(src);
    size_t last_end = 0, pos = 0;
    std::string res;
    while (pos <= text.size() &&
           re->re->Match(text, pos, text.size(), RE2::UNANCHORED, g.data(), ngroups + 1)) {
        size_t a0 = static_cast<size_t>(g[0].data() - src), a1 = a0 + g[0].size();
        res.append(src + last_end, a0 - last_end);
        if (a1 > last_end || a0 == 0)
            expand(re->re, g.data(), ngroups, repl, res);
        last_end = a1;
        size_t width = 1; /* utf8.DecodeRuneInString's width: 1 for a bad byte */
        unsigned char c = static_cast<unsigned char>(src[pos]);
        if (pos < text.size() && c >= 0xC0) {
            size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2, w = 1;
            while (w < want && pos + w < text.size() &&
                   (static_cast<unsigned char>(src[pos + w]) & 0xC0) == 0x80)
                w++;
            width = w == want ? want : 1;
        }
        if (pos + width > a1)
            pos += width;
        else if (pos + 1 > a1)
            pos++;
        else
            pos = a1;
    }
    res.append(src + last_end, text.size() - last_end);
    return c_string(res);
}
