/*
 * ms_config.h - config.yaml: libyaml into a node tree, then into typed structs
 * through declarative schemas (key, type, default, help).
 *
 * Two layers:
 *  - ms_node: the whole YAML document as a tree of scalars, maps and sequences,
 *    each node remembering its line and column (1-based). Sections owned by
 *    scripts (per-check keys, forwarder options) stay as nodes and are handed
 *    to Lua as tables.
 *  - ms_field tables: a schema that fills a C struct from a map node, applying
 *    defaults, converting durations ("10s", "500ms"), sizes ("64MiB") and
 *    addresses ("host:port"), and rejecting unknown keys and wrong types with
 *    "file:line:col: message".
 */
#ifndef MS_CONFIG_H
#define MS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ms_err.h"

/* ---- node tree ---- */

typedef enum { MS_NODE_SCALAR = 0, MS_NODE_MAP, MS_NODE_SEQ } ms_node_type;

typedef struct ms_node ms_node;
struct ms_node {
    ms_node_type type;
    int line, col; /* where the node starts, 1-based */
    char *key;     /* when the node is a map value: its key; else NULL */
    int key_line, key_col;
    char *value;     /* SCALAR: the text (never NULL for scalars) */
    int plain;       /* SCALAR: 1 when unquoted (so `10` may be a number, "10" is a string) */
    size_t n;        /* MAP: number of key/value pairs; SEQ: number of items */
    ms_node **items; /* MAP: values (each with ->key); SEQ: items */
};

/* Parse a YAML file into a tree. Returns MS_OK and *out (caller frees with
 * ms_node_free) or an error with "file:line:col: message". An empty file gives
 * an empty map. Duplicate keys in a map are an error. */
int ms_node_parse_file(const char *path, ms_node **out, ms_error *err);

/* Same for a string (tests); `name` is used in messages in place of a file. */
int ms_node_parse_string(const char *name, const char *text, size_t len, ms_node **out,
                         ms_error *err);

void ms_node_free(ms_node *n);

/* Value of `key` in map `map`, or NULL (also NULL when map is NULL or not a map). */
const ms_node *ms_node_get(const ms_node *map, const char *key);

/* Is n absent or a YAML null (empty, "~" or "null", unquoted)? */
int ms_node_is_null(const ms_node *n);

/* Deep equality of two trees, ignoring positions (used by reload to see what changed). */
int ms_node_equal(const ms_node *a, const ms_node *b);

/* ---- scalar conversions (also used by Lua-side option checking through the FFI) ---- */

/* "10s" "500ms" "2m" "1h" "1d" "1.5s" or a bare number of seconds -> seconds. */
int ms_parse_duration(const char *s, double *out);
/* "64MiB" "512KiB" "1GiB" "10MB" "4kB" "100" (bytes) -> bytes. */
int ms_parse_size(const char *s, uint64_t *out);
/* "host:port", "[v6]:port", ":port" (host defaults to 127.0.0.1). Host is copied
 * into host[hostcap]. */
int ms_parse_address(const char *s, char *host, size_t hostcap, int *port);
/* true/false/yes/no/on/off. */
int ms_parse_bool(const char *s, int *out);

/* ---- schemas ---- */

typedef enum {
    MS_T_STRING = 0, /* char* (owned, malloc'd; "" when absent and no default) */
    MS_T_BOOL,       /* int */
    MS_T_INT,        /* int64_t */
    MS_T_NUMBER,     /* double */
    MS_T_DURATION,   /* double seconds */
    MS_T_SIZE,       /* uint64_t bytes */
    MS_T_ADDRESS,    /* ms_address */
    MS_T_STRLIST,    /* ms_strlist; a single scalar is a list of one */
    MS_T_TAGS,       /* ms_tags: map of scalar -> scalar */
    MS_T_NODE        /* const ms_node* pointing into the tree (not owned), NULL if absent */
} ms_type;

typedef struct ms_strlist {
    size_t n;
    char **v; /* owned */
} ms_strlist;

typedef struct ms_tags {
    size_t n;
    char **k, **v; /* owned; in document order */
} ms_tags;

typedef struct ms_address {
    char host[256];
    int port;
} ms_address;

typedef struct ms_field {
    const char *key;
    ms_type type;
    const char *def; /* default as text in the same syntax as YAML (NULL: zero/empty) */
    size_t offset;   /* offsetof into the target struct */
    const char *help;
} ms_field;

/* Fill `out` from map node `map` (NULL means an empty map) following `fields`
 * (terminated by a {NULL} entry). Every field gets its default first. Unknown
 * keys are an error unless allow_extra is set. `file` names the source in
 * messages. On error, fields already set remain owned by `out`: free them with
 * ms_schema_free. */
int ms_schema_apply(const ms_field *fields, const ms_node *map, void *out, int allow_extra,
                    const char *file, ms_error *err);

/* Free what ms_schema_apply allocated in `out` (strings, lists, tags). */
void ms_schema_free(const ms_field *fields, void *out);

/* Write the schema as a Markdown table (key, type, default, help) - used to
 * generate docs/config.md so docs and code cannot drift. */
void ms_schema_write_doc(const ms_field *fields, const char *section, void *stream /* FILE* */);

/* ---- the moonstat config ---- */

typedef struct ms_agent_config {
    char *hostname;  /* "" in file: the system's (filled in by ms_config_load) */
    double interval; /* default check interval, s */
    ms_tags tags;    /* added to every sample */
    char *log_level;
    uint64_t max_series;     /* bound of the series table */
    double shutdown_timeout; /* how long SIGTERM waits for forwarders to flush */
    /* defaults for every check; each check's section may override them */
    double check_timeout;        /* s */
    double check_jitter;         /* s; -1 (default "auto"): 10% of the check's interval */
    uint64_t check_memory;       /* bytes of Lua heap per check */
    double check_slice;          /* s; longest a check runs before it yields the loop */
    double check_turn_budget;    /* s; check work (starts, resumes) one loop turn does */
    double stats_interval;       /* how often moonstat_* self metrics are emitted */
    double flush_interval;       /* how often the pipeline forwards what it gathered */
    int64_t pipeline_batch;      /* samples gathered before an early flush (bound: twice this) */
    int processor_drop_on_error; /* a sample whose processor raised: 1 dropped, 0 passed on */
    char *state_dir;             /* where moonstat keeps state (forwarder spools) */
} ms_agent_config;

typedef struct ms_paths_config {
    ms_strlist checks, scripts, lua, forwarders; /* absolute after ms_config_load */
} ms_paths_config;

typedef struct ms_config {
    char *path;    /* the file it came from (owned) */
    char *dir;     /* its directory, to resolve relative paths (owned) */
    ms_node *root; /* the whole document (owned) */
    ms_agent_config agent;
    ms_paths_config paths;
    const ms_node *checks;     /* map check-name -> section, or NULL */
    const ms_node *forwarders; /* map forwarder-name -> section, or NULL */
    const ms_node *listeners;  /* owned by the listener modules, or NULL */
    const ms_node *processors; /* list, or NULL */
    const ms_node *scripts;    /* exec bridge section, or NULL */
} ms_config;

/* Load and validate `path`. On success *out is owned by the caller
 * (ms_config_free). On failure err holds "file:line:col: message". */
int ms_config_load(const char *path, ms_config **out, ms_error *err);
void ms_config_free(ms_config *c);

/* The schemas, exported for docs generation and for tests. */
extern const ms_field ms_config_agent_fields[];
extern const ms_field ms_config_paths_fields[];

/* Resolve `p` against the config's directory; returns a malloc'd string. */
char *ms_config_resolve(const ms_config *c, const char *p);

#endif
