/*
 * ms_processor.h - processor lists: Lua files (lua/processors/<name>.lua)
 * that reshape, tag, filter and drop samples. The pipeline runs the global
 * list (config `processors:`) on every flushed batch before the router; a
 * forwarder runs its own list (`forwarders.NAME.processors:`) on a private
 * copy of what it sends. See docs/processors.md.
 *
 * A list is loaded into the pipeline's JIT state and run by one Lua call per
 * batch (lua/moonstat/processor.lua loops over the samples). Each entry is a
 * name or a one-key map name -> settings; settings are checked against the
 * file's declared defaults with config.yaml line:col. The core key
 * `drop_on_error` (default agent.processor_drop_on_error) says what happens
 * to a sample whose processor raises: dropped, or passed on unchanged.
 *
 * Loaded instances are remembered per state and place (ctx + name): an entry
 * whose file and settings did not change is reused on reload (its caches
 * too), and with `reload` set, a file that fails to load keeps its previous
 * version (logged with file:line).
 */
#ifndef MS_PROCESSOR_H
#define MS_PROCESSOR_H

#include <lua.h>

#include "ms_config.h"
#include "ms_err.h"
#include "ms_sample.h"

typedef struct ms_procs ms_procs;

/* Load the list `list` (a YAML sequence, or NULL for none) into L. `ctx`
 * names it in messages and in the last-good registry ("processors" or
 * "forwarders.NAME.processors"); `forwarder` (NULL for the global list) is
 * added as a tag to its moonstat_processor_* metrics. With `live` set the
 * list registers its metrics. With `reload` set, a processor that fails to
 * load but loaded before is logged and keeps its previous version; any other
 * error is returned (the caller keeps what it runs).
 * *out is NULL for an empty list. Caller owns *out (ms_procs_free). */
int ms_procs_new(lua_State *L, const ms_config *cfg, const ms_node *list, const char *ctx,
                 const char *forwarder, int live, int reload, ms_procs **out, ms_error *err);

/* Run the list over `b`, taking the caller's reference; returns the
 * reference to the processed batch: `b` itself changed in place, or a copy
 * when b was shared (copy-on-write). Samples may be dropped (n shrinks, maybe
 * to 0). NULL p returns b untouched. */
ms_batch *ms_procs_apply(ms_procs *p, ms_batch *b);

/* Has any processor file of the list changed on disk (or moved in
 * paths.lua) since it was loaded? */
int ms_procs_changed(const ms_procs *p, const ms_config *cfg);

void ms_procs_free(ms_procs *p);

/* Forget every remembered instance of state L (before closing it). */
void ms_procs_forget(lua_State *L);

#endif
