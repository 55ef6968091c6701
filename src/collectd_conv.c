/*
 * collectd_conv.c - Lua converters for the collectd listener (bucky's
 * contract, docs/collectd.md): every *.lua file of <paths.lua>/converters
 * (each entry that has one) and of the configured directories returns a table of collectd plugin
 * name -> function, with an optional `priority` (default 0) for all of them; `_default` is the
 * catch-all. A function gets the value (host, plugin, plugin_instance, type,
 * type_instance, ds, value, time, interval) and returns a list of name parts,
 * or nil to drop the value. For each plugin the highest priority wins (on a
 * tie, the file loaded first). One Lua state per load, on the main thread; a
 * reload builds a new one.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>

#include "ms_collectd.h"
#include "ms_lua.h"

struct ms_cd_conv {
    ms_lua *lua;
    int n; /* converters registered */
};

/* 1 when dir is already among the n of v (textually). */
static int listed(char *const *v, size_t n, const char *dir)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && !strcmp(v[i], dir)) return 1;
    return 0;
}

static void free_dirs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Register the functions of the table on top of the stack (from `file`) in
 * the registry table "conv" = { plugin = { fn, priority } }; pops it. */
static int register_file(lua_State *L, const char *file, ms_error *err)
{
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return ms_error_set(err, MS_ELUA, "%s: a converter file returns a table", file);
    }
    int top = lua_gettop(L), added = 0;
    lua_getfield(L, top, "priority");
    double prio = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    if (!lua_isnil(L, -1) && !lua_isnumber(L, -1)) {
        lua_settop(L, top - 1);
        return ms_error_set(err, MS_ELUA, "%s: priority is a number", file);
    }
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "ms_cd_conv");
    int reg = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, top)) {
        if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "priority")) {
            if (!lua_isfunction(L, -1)) {
                ms_error_set(err, MS_ELUA, "%s: converter '%s' is not a function", file,
                             lua_tostring(L, -2));
                lua_settop(L, top - 1);
                return MS_ELUA;
            }
            lua_pushvalue(L, -2); /* plugin */
            lua_rawget(L, reg);
            double old = -1e300;
            if (lua_istable(L, -1)) {
                lua_rawgeti(L, -1, 2);
                old = lua_tonumber(L, -1);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
            if (prio > old) {
                lua_pushvalue(L, -2); /* plugin */
                lua_createtable(L, 2, 0);
                lua_pushvalue(L, -3); /* fn */
                lua_rawseti(L, -2, 1);
                lua_pushnumber(L, prio);
                lua_rawseti(L, -2, 2);
                lua_rawset(L, reg);
                added++;
            }
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top - 1);
    return added;
}

int ms_cd_conv_load(ms_cd_conv **out, const ms_strlist *dirs, const ms_strlist *lua_paths,
                    void (*warn)(const char *msg), ms_error *err)
{
    *out = NULL;
    /* the default directories first: <each paths.lua entry>/converters */
    char *all[MS_CD_CONV_MAXDIRS];
    size_t nall = 0;
    for (size_t i = 0; lua_paths && i < lua_paths->n && nall < MS_CD_CONV_MAXDIRS; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/converters", lua_paths->v[i]);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && !listed(all, nall, path))
            all[nall++] = strdup(path);
    }
    for (size_t i = 0; dirs && i < dirs->n && nall < MS_CD_CONV_MAXDIRS; i++)
        if (!listed(all, nall, dirs->v[i])) all[nall++] = strdup(dirs->v[i]);
    for (size_t i = 0; i < nall; i++)
        if (!all[i]) {
            free_dirs(all, nall);
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        }
    if (!nall) return MS_OK;
    ms_cd_conv *c = calloc(1, sizeof *c);
    if (!c) {
        free_dirs(all, nall);
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    ms_lua_opts o = {1, 64u << 20, lua_paths};
    if (!(c->lua = ms_lua_new(&o, err))) {
        free_dirs(all, nall);
        free(c);
        return err ? err->code : MS_ELUA;
    }
    lua_State *L = ms_lua_state(c->lua);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "ms_cd_conv");
    int rc = MS_OK;
    for (size_t d = 0; d < nall; d++) {
        struct dirent **ents = NULL;
        int n = scandir(all[d], &ents, NULL, by_name);
        if (n < 0) {
            char m[600];
            snprintf(m, sizeof m, "%s: cannot read the directory", all[d]);
            if (warn) warn(m);
            if (rc == MS_OK) rc = ms_error_set(err, MS_EIO, "converters: %s", m);
            continue;
        }
        for (int i = 0; i < n; i++) {
            size_t l = strlen(ents[i]->d_name);
            if (l > 4 && !strcmp(ents[i]->d_name + l - 4, ".lua")) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", all[d], ents[i]->d_name);
                ms_error e2 = {0};
                int r = ms_lua_dofile(L, path, 1, &e2);
                if (r == MS_OK) r = register_file(L, path, &e2);
                if (r < 0) {
                    if (warn) warn(e2.msg);
                    if (rc == MS_OK) rc = ms_error_set(err, r, "%s", e2.msg);
                } else {
                    c->n += r;
                }
            }
            free(ents[i]);
        }
        free(ents);
    }
    free_dirs(all, nall);
    *out = c;
    return rc;
}

static void setstr(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

int ms_cd_conv_apply(ms_cd_conv *c, const ms_cd_vl *vl, const char *ds, double value, char *buf,
                     size_t cap, size_t *nparts, ms_error *err)
{
    if (!c || !c->n) return 0;
    lua_State *L = ms_lua_state(c->lua);
    lua_settop(L, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, "ms_cd_conv");
    lua_getfield(L, 1, vl->plugin);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_getfield(L, 1, "_default");
        if (!lua_istable(L, -1)) {
            lua_settop(L, 0);
            return 0;
        }
    }
    lua_rawgeti(L, -1, 1);
    lua_createtable(L, 0, 9);
    setstr(L, "host", vl->host);
    setstr(L, "plugin", vl->plugin);
    setstr(L, "plugin_instance", vl->plugin_instance);
    setstr(L, "type", vl->type);
    setstr(L, "type_instance", vl->type_instance);
    setstr(L, "ds", ds ? ds : "");
    lua_pushnumber(L, value);
    lua_setfield(L, -2, "value");
    lua_pushnumber(L, vl->time);
    lua_setfield(L, -2, "time");
    lua_pushnumber(L, vl->interval);
    lua_setfield(L, -2, "interval");
    int rc = ms_lua_pcall(L, 1, 1, err);
    if (rc != MS_OK) {
        lua_settop(L, 0);
        return rc;
    }
    if (lua_isnil(L, -1)) {
        lua_settop(L, 0);
        return -1; /* dropped */
    }
    if (!lua_istable(L, -1)) {
        lua_settop(L, 0);
        return ms_error_set(
            err, MS_ELUA, "converter for plugin '%s' returned neither a list nor nil", vl->plugin);
    }
    size_t n = lua_objlen(L, -1), k = 0, used = 0;
    for (size_t i = 1; i <= n && k < 64; i++) {
        lua_rawgeti(L, -1, (int)i);
        if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
            size_t l;
            const char *s = lua_tolstring(L, -1, &l);
            if (l && used + l + 1 <= cap && !memchr(s, 0, l)) {
                memcpy(buf + used, s, l + 1);
                used += l + 1;
                k++;
            }
        }
        lua_pop(L, 1);
    }
    lua_settop(L, 0);
    if (!k)
        return ms_error_set(err, MS_ELUA, "converter for plugin '%s' returned an empty list",
                            vl->plugin);
    *nparts = k;
    return 1;
}

void ms_cd_conv_free(ms_cd_conv *c)
{
    if (!c) return;
    ms_lua_free(c->lua);
    free(c);
}
