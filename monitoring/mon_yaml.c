/*
 * mon_yaml.c - the small layer over libyaml's document API that the rule
 * file and alertmanager.yml readers share: line:col for every node, strict
 * key checks (Prometheus and Alertmanager both reject unknown fields), and
 * Prometheus durations.
 */
#include "mon_internal.h"

#include <stdlib.h>
#include <string.h>

char *mon_read_file(const char *path, mon_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mon_errf(err, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[8192];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        mon_grow((void **)&buf, 1, &cap, len + got + 1);
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    mon_grow((void **)&buf, 1, &cap, len + 1);
    buf[len] = '\0';
    return buf;
}

int mon_yaml_open(mon_yaml *y, const char *text, const char *file, mon_error *err)
{
    memset(y, 0, sizeof *y);
    y->file = file;
    y->err = err;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        mon_errf(err, "%s: cannot start the YAML parser", file);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&p, &y->doc)) {
        mon_errf(err, "%s:%zu:%zu: %s%s%s", file, p.problem_mark.line + 1,
                 p.problem_mark.column + 1, p.problem ? p.problem : "invalid YAML",
                 p.context ? " " : "", p.context ? p.context : "");
        yaml_parser_delete(&p);
        return -1;
    }
    yaml_parser_delete(&p);
    return 0;
}

void mon_yaml_close(mon_yaml *y)
{
    yaml_document_delete(&y->doc);
}

yaml_node_t *mon_yaml_root(mon_yaml *y)
{
    return yaml_document_get_root_node(&y->doc);
}

yaml_node_t *mon_yaml_node(mon_yaml *y, int id)
{
    return yaml_document_get_node(&y->doc, id);
}

void mon_yaml_err(mon_yaml *y, const yaml_node_t *n, const char *fmt, ...)
{
    if (y->failed)
        return;
    y->failed = 1;
    if (!y->err)
        return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mon_errf(y->err, "%s:%zu:%zu: %s", y->file, n ? n->start_mark.line + 1 : 1,
             n ? n->start_mark.column + 1 : 1, msg);
}

int mon_yaml_is_null(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

const char *mon_yaml_str(mon_yaml *y, const yaml_node_t *n, const char *what)
{
    if (!n || n->type != YAML_SCALAR_NODE) {
        mon_yaml_err(y, n, "%s must be a string, got a %s", what,
                     n && n->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

yaml_node_t *mon_yaml_get(mon_yaml *y, const yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = mon_yaml_node(y, p->key);
        if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return mon_yaml_node(y, p->value);
    }
    return NULL;
}

int mon_yaml_check_keys(mon_yaml *y, const yaml_node_t *map, const char *what,
                        const char *const *valid)
{
    if (!map || map->type != YAML_MAPPING_NODE) {
        mon_yaml_err(y, map, "%s must be a mapping", what);
        return -1;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = mon_yaml_node(y, p->key);
        const char *name = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        int ok = 0;
        for (int i = 0; valid[i] && !ok; i++)
            ok = !strcmp(valid[i], name);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; ok && q < p; q++) {
            yaml_node_t *e = mon_yaml_node(y, q->key);
            if (e->type == YAML_SCALAR_NODE && !strcmp((const char *)e->data.scalar.value, name)) {
                mon_yaml_err(y, k, "key \"%s\" given twice in %s", name, what);
                return -1;
            }
        }
        if (!ok) {
            char list[300] = "";
            size_t at = 0;
            for (int i = 0; valid[i] && at < sizeof list; i++)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", valid[i]);
            mon_yaml_err(y, k, "unknown key \"%s\" in %s (valid: %s)", name, what, list);
            return -1;
        }
    }
    return 0;
}

int mon_yaml_duration(mon_yaml *y, const yaml_node_t *n, const char *what, double *out_s)
{
    const char *s = mon_yaml_str(y, n, what);
    if (!s)
        return -1;
    int rc = mon_parse_duration(s, out_s);
    if (rc == -2) {
        mon_yaml_err(y, n, "%s: duration out of range: \"%s\" (at most about 292 years)", what, s);
        return -1;
    }
    if (rc) {
        mon_yaml_err(y, n, "%s: not a valid duration string: \"%s\" (like 30s, 5m, 1h30m)", what, s);
        return -1;
    }
    return 0;
}
