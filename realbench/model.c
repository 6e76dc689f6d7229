/*
 * model.c - model descriptions (realbench/models/NAME.yaml) compiled into GEMMs.
 *
 * The YAML is loaded with libyaml's document API and walked once; every error
 * names `file:line:col`. A dense layer is one GEMM (m = 1 row per item). A
 * transformer block is six: QKV projection, attention scores (Q.K^T per head,
 * softmax), context (P.V per head), output projection, MLP up (activation) and
 * MLP down. Layer norms and residual adds are not modelled: they are
 * elementwise, a few percent of the time of the GEMMs at these sizes. The V
 * operand of the context product is taken as stored transposed (V^T, as many
 * inference engines keep it), so every op has the one form C = A . B^T.
 * The attention scores read fresh Q and K buffers rather than slices of the
 * QKV output: the arithmetic and bytes moved are the same, the layout simpler.
 */
#include "realbench.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    const char *path;
    yaml_document_t *doc;
    FILE *err;
    int errors;
} ctx;

static void fail(ctx *c, const yaml_node_t *node, const char *fmt, const char *arg)
{
    fprintf(c->err, "%s:%zu:%zu: ", c->path, node ? node->start_mark.line + 1 : 1,
            node ? node->start_mark.column + 1 : 1); /* no node: an empty file */
    fprintf(c->err, fmt, arg);
    fputc('\n', c->err);
    c->errors++;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_int(ctx *c, yaml_node_t *n, const char *key, int lo, int hi, int *out)
{
    const char *s = scalar(n);
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || v < lo || v > hi) {
        fail(c, n, "%s must be a positive integer in range", key);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static const char *const ACT_NAMES[] = {"none", "relu", "gelu", "sigmoid", "softmax"};

const char *rb_act_name(rb_act a)
{
    return (unsigned)a < sizeof ACT_NAMES / sizeof *ACT_NAMES ? ACT_NAMES[a] : "?";
}

static int get_act(ctx *c, yaml_node_t *n, rb_act *out)
{
    const char *s = scalar(n);
    for (int i = 0; s && i < 4; i++) /* softmax is internal to attention */
        if (!strcmp(s, ACT_NAMES[i])) {
            *out = (rb_act)i;
            return 0;
        }
    fail(c, n, "activation must be one of none, relu, gelu, sigmoid%s", "");
    return -1;
}

static rb_op *push(rb_model *m, int *cap)
{
    if (m->n_ops == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        rb_op *o = realloc(m->ops, (size_t)nc * sizeof *o);
        if (!o)
            return NULL;
        m->ops = o;
        *cap = nc;
    }
    rb_op *op = &m->ops[m->n_ops++];
    memset(op, 0, sizeof *op);
    op->groups = 1;
    op->m = 1;
    op->b_weight = 1;
    return op;
}

static void set_op(rb_op *op, const char *name, int groups, int m, int n, int k, int b_weight,
                   rb_act act)
{
    snprintf(op->name, sizeof op->name, "%s", name);
    op->groups = groups;
    op->m = m;
    op->n = n;
    op->k = k;
    op->b_weight = b_weight;
    op->act = act;
    op->shift = rb_requant_shift(k);
}

enum { MAXDIM = 1 << 16 };

static int layer(ctx *c, rb_model *m, int *cap, yaml_node_t *ln, int index)
{
    if (ln->type != YAML_MAPPING_NODE) {
        fail(c, ln, "a layer must be a mapping%s", "");
        return -1;
    }
    yaml_node_t *type = NULL;
    yaml_node_pair_t *p;
    for (p = ln->data.mapping.pairs.start; p < ln->data.mapping.pairs.top; p++)
        if (scalar(yaml_document_get_node(c->doc, p->key)) &&
            !strcmp(scalar(yaml_document_get_node(c->doc, p->key)), "type"))
            type = yaml_document_get_node(c->doc, p->value);
    const char *t = scalar(type);
    int dense = t && !strcmp(t, "dense"), tr = t && !strcmp(t, "transformer");
    if (!dense && !tr) {
        fail(c, type ? type : ln, "layer type must be dense or transformer%s", "");
        return -1;
    }
    int in = 0, out = 0, d = 0, heads = 0, dff = 0, seq = 0, repeat = 1, bad = 0;
    rb_act act = dense ? RB_ACT_NONE : RB_ACT_GELU;
    const char *name = NULL;
    for (p = ln->data.mapping.pairs.start; p < ln->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *k = scalar(kn);
        if (!k) {
            fail(c, kn, "layer keys must be scalars%s", "");
            bad = 1;
        } else if (!strcmp(k, "type")) {
        } else if (!strcmp(k, "name") && scalar(vn)) {
            name = scalar(vn);
        } else if (!strcmp(k, "activation")) {
            bad |= get_act(c, vn, &act) != 0;
        } else if (dense && !strcmp(k, "in")) {
            bad |= get_int(c, vn, k, 1, MAXDIM, &in) != 0;
        } else if (dense && !strcmp(k, "out")) {
            bad |= get_int(c, vn, k, 1, MAXDIM, &out) != 0;
        } else if (tr && !strcmp(k, "d_model")) {
            bad |= get_int(c, vn, k, 1, MAXDIM, &d) != 0;
        } else if (tr && !strcmp(k, "heads")) {
            bad |= get_int(c, vn, k, 1, 1024, &heads) != 0;
        } else if (tr && !strcmp(k, "d_ff")) {
            bad |= get_int(c, vn, k, 1, MAXDIM, &dff) != 0;
        } else if (tr && !strcmp(k, "seq_len")) {
            bad |= get_int(c, vn, k, 1, 8192, &seq) != 0;
        } else if (tr && !strcmp(k, "repeat")) {
            bad |= get_int(c, vn, k, 1, 128, &repeat) != 0;
        } else {
            fail(c, kn, "unknown key '%s' in this layer", k);
            bad = 1;
        }
    }
    if (bad)
        return -1;
    char nm[32];
    if (dense) {
        if (!in || !out) {
            fail(c, ln, "a dense layer needs in and out%s", "");
            return -1;
        }
        if (m->n_ops && m->ops[m->n_ops - 1].n * m->ops[m->n_ops - 1].m *
                                m->ops[m->n_ops - 1].groups != in) {
            fail(c, ln, "dense layer in does not match the previous layer's output%s", "");
            return -1;
        }
        snprintf(nm, sizeof nm, "%.20s", name ? name : "");
        if (!name)
            snprintf(nm, sizeof nm, "fc%d", index + 1);
        rb_op *op = push(m, cap);
        if (!op)
            return -1;
        set_op(op, nm, 1, 1, out, in, 1, act);
        return 0;
    }
    if (!d || !heads || !dff || !seq) {
        fail(c, ln, "a transformer layer needs d_model, heads, d_ff and seq_len%s", "");
        return -1;
    }
    if (d % heads) {
        fail(c, ln, "d_model must be a multiple of heads%s", "");
        return -1;
    }
    if (act == RB_ACT_SIGMOID) {
        fail(c, ln, "a transformer MLP activation must be relu, gelu or none%s", "");
        return -1;
    }
    int dh = d / heads;
    for (int r = 0; r < repeat; r++) {
        struct {
            const char *s;
            int g, mm, n, k, w;
            rb_act a;
        } ops[6] = {
            {"qkv", 1, seq, 3 * d, d, 1, RB_ACT_NONE},
            {"scores", heads, seq, seq, dh, 0, RB_ACT_SOFTMAX},
            {"context", heads, seq, dh, seq, 0, RB_ACT_NONE},
            {"out", 1, seq, d, d, 1, RB_ACT_NONE},
            {"mlp_up", 1, seq, dff, d, 1, act},
            {"mlp_down", 1, seq, d, dff, 1, RB_ACT_NONE},
        };
        for (int i = 0; i < 6; i++) {
            rb_op *op = push(m, cap);
            if (!op)
                return -1;
            if (repeat > 1)
                snprintf(nm, sizeof nm, "b%d.%s", r, ops[i].s);
            else
                snprintf(nm, sizeof nm, "%s", ops[i].s);
            set_op(op, nm, ops[i].g, ops[i].mm, ops[i].n, ops[i].k, ops[i].w, ops[i].a);
        }
    }
    return 0;
}

static void chain(rb_model *m)
{
    for (int i = 0; i < m->n_ops; i++) {
        rb_op *op = &m->ops[i], *pv = i ? &m->ops[i - 1] : NULL;
        op->a_from_prev = pv && (long)pv->groups * pv->m * pv->n ==
                                    (long)op->groups * op->m * op->k;
    }
}

rb_model *rb_model_load(const char *path, FILE *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(err, "%s: cannot open model file\n", path);
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    rb_model *m = NULL;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(err, "%s:%zu:%zu: %s\n", path, parser.problem_mark.line + 1,
                parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error");
        yaml_parser_delete(&parser);
        fclose(f);
        return NULL;
    }
    ctx c = {path, &doc, err, 0};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    m = calloc(1, sizeof *m);
    int cap = 0;
    if (!m)
        goto out;
    if (!root || root->type != YAML_MAPPING_NODE) {
        fail(&c, root, "a model file must be a mapping with name and layers%s", "");
        goto out;
    }
    yaml_node_t *layers = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(&doc, p->value);
        const char *k = scalar(kn);
        if (k && !strcmp(k, "name") && scalar(vn)) {
            free(m->name);
            m->name = strdup(scalar(vn));
        } else if (k && !strcmp(k, "layers")) {
            layers = vn;
        } else if (k && !strcmp(k, "description")) {
        } else {
            fail(&c, kn, "unknown key '%s' (expected name, description, layers)", k ? k : "?");
        }
    }
    if (!m->name)
        fail(&c, root, "missing name%s", "");
    if (!layers || layers->type != YAML_SEQUENCE_NODE ||
        layers->data.sequence.items.start == layers->data.sequence.items.top) {
        fail(&c, layers ? layers : root, "layers must be a non-empty sequence%s", "");
    } else {
        int i = 0;
        for (yaml_node_item_t *it = layers->data.sequence.items.start;
             it < layers->data.sequence.items.top; it++, i++)
            if (layer(&c, m, &cap, yaml_document_get_node(&doc, *it), i))
                c.errors++;
    }
    chain(m);
    m->file = strdup(path);
out:
    if (m && (c.errors || !m->file)) {
        rb_model_free(m);
        m = NULL;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return m;
}

void rb_model_free(rb_model *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->file);
    free(m->ops);
    free(m);
}

double rb_model_macs_per_item(const rb_model *m)
{
    double s = 0;
    for (int i = 0; i < m->n_ops; i++)
        s += (double)m->ops[i].groups * m->ops[i].m * m->ops[i].n * m->ops[i].k;
    return s;
}

int rb_model_write_shapes(const rb_model *m, FILE *out)
{
    fprintf(out, "# realbench shapes/1, generated by `realbench shapes` from %s; do not edit.\n",
            m->file);
    fprintf(out, "# Each op: C[G][M][N] = A[G][M][K] . B[N][K]^T per group; per batch b:\n");
    fprintf(out, "#   bkind weight: G = 1, M = b * m;  bkind act: G = b * groups, M = m.\n");
    fprintf(out, "# op name groups m n k bkind activation shift asrc\n");
    fprintf(out, "model %s\nfile %s\n", m->name, m->file);
    for (int i = 0; i < m->n_ops; i++) {
        const rb_op *o = &m->ops[i];
        fprintf(out, "op %s %d %d %d %d %s %s %d %s\n", o->name, o->groups, o->m, o->n, o->k,
                o->b_weight ? "weight" : "act", rb_act_name(o->act), o->shift,
                o->a_from_prev ? "prev" : "fresh");
    }
    return ferror(out) ? -1 : 0;
}

/* ---- LLM model files ------------------------------------------------------ */

/* llm: {layers, d_model, d_ff, heads, kv_heads}; every key but kv_heads
 * (default: heads) needed, no other allowed. */
static int llm_shape(ctx *c, yaml_node_t *n, rb_llm_opts *o)
{
    static const char *const keys[] = {"layers", "d_model", "d_ff", "heads", "kv_heads"};
    static const int hi[] = {128, MAXDIM, MAXDIM, 1024, 1024};
    int *dst[] = {&o->layers, &o->d_model, &o->d_ff, &o->heads, &o->kv_heads};
    int seen[5] = {0}, bad = 0;
    if (n->type != YAML_MAPPING_NODE) {
        fail(c, n, "llm must be a mapping of layers, d_model, d_ff, heads, kv_heads%s", "");
        return -1;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *k = scalar(kn);
        int i = 0;
        while (k && i < 5 && strcmp(k, keys[i]))
            i++;
        if (!k || i == 5) {
            fail(c, kn, "unknown key '%s' in llm (expected layers, d_model, d_ff, heads, "
                 "kv_heads)", k ? k : "?");
            bad = 1;
        } else if (seen[i]++) {
            fail(c, kn, "duplicate key '%s' in llm", k);
            bad = 1;
        } else {
            bad |= get_int(c, vn, k, 1, hi[i], dst[i]) != 0;
        }
    }
    for (int i = 0; !bad && i < 4; i++)
        if (!seen[i]) {
            fail(c, n, "llm needs %s", keys[i]);
            bad = 1;
        }
    if (!bad && !seen[4])
        o->kv_heads = o->heads;
    if (!bad && o->d_model % o->heads) {
        fail(c, n, "llm: d_model must be a multiple of heads%s", "");
        bad = 1;
    }
    if (!bad && o->heads % o->kv_heads) {
        fail(c, n, "llm: heads must be a multiple of kv_heads%s", "");
        bad = 1;
    }
    return bad ? -1 : 0;
}

int rb_llm_model_load(const char *path, rb_llm_opts *o, char *name, size_t name_len, FILE *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(err, "%s: cannot open model file\n", path);
        return 2;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(err, "%s:%zu:%zu: %s\n", path, parser.problem_mark.line + 1,
                parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error");
        yaml_parser_delete(&parser);
        fclose(f);
        return 2;
    }
    ctx c = {path, &doc, err, 0};
    yaml_node_t *root = yaml_document_get_root_node(&doc), *llm = NULL;
    const char *nm = NULL;
    int rc = 2;
    if (root && root->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
             p < root->data.mapping.pairs.top; p++)
            if (scalar(yaml_document_get_node(&doc, p->key)) &&
                !strcmp(scalar(yaml_document_get_node(&doc, p->key)), "llm"))
                llm = yaml_document_get_node(&doc, p->value);
    if (!llm) {
        rc = 1; /* not an LLM model: rb_model_load reads (and judges) it */
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(&doc, p->value);
        const char *k = scalar(kn);
        if (k && !strcmp(k, "name") && scalar(vn))
            nm = scalar(vn);
        else if (k && !strcmp(k, "llm"))
            llm_shape(&c, vn, o); /* its errors are counted in c */
        else if (!(k && !strcmp(k, "description") && scalar(vn)))
            fail(&c, kn, "unknown key '%s' (an LLM model file has name, description, llm)",
                 k ? k : "?");
    }
    if (!nm)
        fail(&c, root, "missing name%s", "");
    if (!c.errors) {
        snprintf(name, name_len, "%s", nm);
        rc = 0;
    }
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
