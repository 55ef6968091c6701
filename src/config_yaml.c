/*
 * config_yaml.c - config.yaml through libyaml's event parser into an ms_node
 * tree that remembers the line and column of every node and key (see
 * ms_config.h). Anchors, aliases, non-scalar keys, duplicate keys and more
 * than one document are rejected with file:line:col.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "ms_buf.h"
#include "ms_config.h"
#include "ms_err.h"

#define MAX_DEPTH 64

/* ---- node tree ---- */

typedef struct parser {
    yaml_parser_t yp;
    const char *name; /* file name used in messages */
    ms_error *err;
} parser;

/* Allocate a node of `type` at a 0-based libyaml mark. Caller owns it. */
static ms_node *node_new(ms_node_type type, yaml_mark_t m)
{
    ms_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->type = type;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    return n;
}

void ms_node_free(ms_node *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) ms_node_free(n->items[i]);
    free(n->items);
    free(n->key);
    free(n->value);
    free(n);
}

/* Turn libyaml's error state into "name:line:col: problem context". */
static int parser_fail(parser *p)
{
    yaml_parser_t *y = &p->yp;
    if (y->error == YAML_MEMORY_ERROR)
        return ms_error_set(p->err, MS_ENOMEM, "%s: out of memory", p->name);
    if (y->error == YAML_READER_ERROR)
        return ms_error_set(p->err, MS_EINVAL, "%s: %s at byte %zu", p->name,
                            y->problem ? y->problem : "unreadable input", y->problem_offset);
    return ms_error_set(p->err, MS_EINVAL, "%s:%d:%d: %s%s%s", p->name,
                        (int)y->problem_mark.line + 1, (int)y->problem_mark.column + 1,
                        y->problem ? y->problem : "syntax error", y->context ? " " : "",
                        y->context ? y->context : "");
}

/* Error at a 0-based mark. */
static int parser_error_at(parser *p, yaml_mark_t m, const char *what, const char *name)
{
    return ms_error_set(p->err, MS_EINVAL, "%s:%d:%d: %s%s%s", p->name, (int)m.line + 1,
                        (int)m.column + 1, what, name ? name : "", name ? ")" : "");
}

static int next_event(parser *p, yaml_event_t *ev)
{
    return yaml_parser_parse(&p->yp, ev) ? MS_OK : parser_fail(p);
}

/* Append `child` to `parent`, growing items (capacity kept by the caller). */
static int node_push(ms_node *parent, size_t *cap, ms_node *child)
{
    if (parent->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        ms_node **it = realloc(parent->items, nc * sizeof *it);
        if (!it) return MS_ENOMEM;
        parent->items = it;
        *cap = nc;
    }
    parent->items[parent->n++] = child;
    return MS_OK;
}

static int parse_node(parser *p, yaml_event_t *ev, int depth, ms_node **out);

/* Reject anchors; the tree has no way to share nodes. */
static int check_anchor(parser *p, yaml_event_t *ev, const yaml_char_t *anchor)
{
    if (!anchor) return MS_OK;
    return parser_error_at(p, ev->start_mark, "anchors are not supported (&", (const char *)anchor);
}

/* Build a scalar node from a SCALAR event. */
static int parse_scalar(parser *p, yaml_event_t *ev, ms_node **out)
{
    size_t len = ev->data.scalar.length;
    const char *text = (const char *)ev->data.scalar.value;
    if (memchr(text, '\0', len))
        return parser_error_at(p, ev->start_mark, "NUL byte in a string", NULL);
    ms_node *n = node_new(MS_NODE_SCALAR, ev->start_mark);
    if (!n || !(n->value = strndup(text, len))) {
        free(n);
        return ms_error_set(p->err, MS_ENOMEM, "%s: out of memory", p->name);
    }
    const char *tag = (const char *)ev->data.scalar.tag;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
               !(tag && strcmp(tag, YAML_STR_TAG) == 0);
    *out = n;
    return MS_OK;
}

/* Take the key of a map entry from event `ev` (consumed): a scalar not yet
 * in map `n`. *key is malloc'd and owned by the caller. */
static int parse_key(parser *p, const ms_node *n, yaml_event_t *ev, char **key)
{
    yaml_mark_t km = ev->start_mark;
    ms_node *kn = NULL;
    int rc;
    if (ev->type == YAML_ALIAS_EVENT)
        rc = parser_error_at(p, km, "aliases are not supported (*",
                             (const char *)ev->data.alias.anchor);
    else if (ev->type != YAML_SCALAR_EVENT)
        rc = parser_error_at(p, km, "map keys must be scalars", NULL);
    else
        rc = check_anchor(p, ev, ev->data.scalar.anchor);
    if (!rc) rc = parse_scalar(p, ev, &kn);
    yaml_event_delete(ev);
    if (rc) return rc;
    *key = kn->value;
    kn->value = NULL;
    ms_node_free(kn);
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(n->items[i]->key, *key) != 0) continue;
        rc = ms_error_set(p->err, MS_EINVAL, "%s:%d:%d: duplicate key '%s' (first at line %d)",
                          p->name, (int)km.line + 1, (int)km.column + 1, *key,
                          n->items[i]->key_line);
        free(*key);
        *key = NULL;
        return rc;
    }
    return MS_OK;
}

/* Read the children of sequence or map `n` (its start event already read)
 * up to the matching end event. */
static int parse_children(parser *p, ms_node *n, int depth)
{
    size_t cap = 0;
    int is_map = n->type == MS_NODE_MAP;
    for (;;) {
        yaml_event_t ev;
        int rc = next_event(p, &ev);
        if (rc) return rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return MS_OK;
        }
        char *key = NULL;
        yaml_mark_t km = ev.start_mark;
        if (is_map) {
            rc = parse_key(p, n, &ev, &key); /* consumes ev */
            if (!rc && (rc = next_event(p, &ev))) free(key);
            if (rc) return rc;
        }
        ms_node *child = NULL;
        rc = parse_node(p, &ev, depth + 1, &child);
        if (!rc && node_push(n, &cap, child) != MS_OK) {
            ms_node_free(child);
            rc = ms_error_set(p->err, MS_ENOMEM, "%s: out of memory", p->name);
        }
        if (rc) {
            free(key);
            return rc;
        }
        child->key = key;
        child->key_line = (int)km.line + 1;
        child->key_col = (int)km.column + 1;
    }
}

/* Build the node that starts with event `ev` (consumed). *out is owned by
 * the caller on success. */
static int parse_node(parser *p, yaml_event_t *ev, int depth, ms_node **out)
{
    int rc = MS_OK;
    ms_node *n = NULL;
    if (depth > MAX_DEPTH) {
        rc = parser_error_at(p, ev->start_mark, "nesting is too deep", NULL);
    } else if (ev->type == YAML_SCALAR_EVENT) {
        rc = check_anchor(p, ev, ev->data.scalar.anchor);
        if (!rc) rc = parse_scalar(p, ev, &n);
    } else if (ev->type == YAML_ALIAS_EVENT) {
        rc = parser_error_at(p, ev->start_mark, "aliases are not supported (*",
                             (const char *)ev->data.alias.anchor);
    } else if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
        int seq = ev->type == YAML_SEQUENCE_START_EVENT;
        rc = check_anchor(p, ev,
                          seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor);
        if (!rc && !(n = node_new(seq ? MS_NODE_SEQ : MS_NODE_MAP, ev->start_mark)))
            rc = ms_error_set(p->err, MS_ENOMEM, "%s: out of memory", p->name);
        if (!rc) rc = parse_children(p, n, depth);
    } else {
        rc = parser_error_at(p, ev->start_mark, "unexpected YAML event", NULL);
    }
    yaml_event_delete(ev);
    if (rc) {
        ms_node_free(n);
        return rc;
    }
    *out = n;
    return MS_OK;
}

/* A plain empty, "~" or "null" scalar: YAML's null. */
/* See ms_config.h. */
int ms_node_is_null(const ms_node *n)
{
    if (!n) return 1;
    if (n->type != MS_NODE_SCALAR || !n->plain) return 0;
    const char *v = n->value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Read one document from a prepared parser. An empty stream or a null
 * document is an empty map; a second document is an error. */
static int parse_stream(parser *p, ms_node **out)
{
    yaml_event_t ev;
    ms_node *root = NULL;
    int rc = next_event(p, &ev); /* STREAM_START */
    if (rc) return rc;
    yaml_event_delete(&ev);
    if ((rc = next_event(p, &ev))) return rc;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        yaml_event_delete(&ev);
        if ((rc = next_event(p, &ev))) return rc;
        if ((rc = parse_node(p, &ev, 0, &root))) return rc;
        if ((rc = next_event(p, &ev))) goto fail; /* DOCUMENT_END */
        yaml_event_delete(&ev);
        if ((rc = next_event(p, &ev))) goto fail;
        if (ev.type == YAML_DOCUMENT_START_EVENT) {
            rc = parser_error_at(p, ev.start_mark, "only one YAML document is allowed", NULL);
            yaml_event_delete(&ev);
            goto fail;
        }
    }
    yaml_event_delete(&ev); /* STREAM_END */
    if (ms_node_is_null(root)) {
        yaml_mark_t m = {0, 0, 0};
        if (root) m.line = (size_t)root->line - 1, m.column = (size_t)root->col - 1;
        ms_node_free(root);
        if (!(root = node_new(MS_NODE_MAP, m)))
            return ms_error_set(p->err, MS_ENOMEM, "%s: out of memory", p->name);
    }
    *out = root;
    return MS_OK;
fail:
    ms_node_free(root);
    return rc;
}

int ms_node_parse_string(const char *name, const char *text, size_t len, ms_node **out,
                         ms_error *err)
{
    parser p = {.name = name, .err = err};
    *out = NULL;
    if (!yaml_parser_initialize(&p.yp))
        return ms_error_set(err, MS_ENOMEM, "%s: out of memory", name);
    yaml_parser_set_input_string(&p.yp, (const unsigned char *)text, len);
    int rc = parse_stream(&p, out);
    yaml_parser_delete(&p.yp);
    return rc;
}

int ms_node_parse_file(const char *path, ms_node **out, ms_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ms_error_set(err, errno == ENOENT ? MS_ENOENT : MS_EIO, "%s: %s", path,
                            strerror(errno));
    parser p = {.name = path, .err = err};
    int rc;
    if (!yaml_parser_initialize(&p.yp)) {
        rc = ms_error_set(err, MS_ENOMEM, "%s: out of memory", path);
    } else {
        yaml_parser_set_input_file(&p.yp, f);
        rc = parse_stream(&p, out);
        yaml_parser_delete(&p.yp);
    }
    fclose(f);
    return rc;
}

const ms_node *ms_node_get(const ms_node *map, const char *key)
{
    if (!map || map->type != MS_NODE_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[i]->key, key) == 0) return map->items[i];
    return NULL;
}

/* Maps compare by key regardless of order; sequences in order; scalars by
 * text and quoting (10 and "10" differ for Lua). */
int ms_node_equal(const ms_node *a, const ms_node *b)
{
    if (!a || !b) return a == b;
    if (a->type != b->type || a->n != b->n) return 0;
    switch (a->type) {
    case MS_NODE_SCALAR:
        return a->plain == b->plain && strcmp(a->value, b->value) == 0;
    case MS_NODE_SEQ:
        for (size_t i = 0; i < a->n; i++)
            if (!ms_node_equal(a->items[i], b->items[i])) return 0;
        return 1;
    case MS_NODE_MAP:
        for (size_t i = 0; i < a->n; i++)
            if (!ms_node_equal(a->items[i], ms_node_get(b, a->items[i]->key))) return 0;
        return 1;
    }
    return 0;
}
