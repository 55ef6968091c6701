/*
 * curl_lazy.c - libcurl, loaded when first used.
 *
 * Linking libcurl pulls its whole dependency chain (TLS, Kerberos, LDAP)
 * into every moonstat process, a few MiB of resident pages, although most
 * hosts never configure an HTTP forwarder or call ms.http. So moonstat is
 * not linked with libcurl: this file defines the libcurl functions the code
 * uses, and the first call dlopen()s libcurl.so.4 and forwards to it. When
 * libcurl cannot be loaded every call fails the way libcurl reports a
 * failure (NULL, CURLE_FAILED_INIT, CURLM_INTERNAL_ERROR) and the reason is
 * logged once.
 */
#define CURL_DISABLE_TYPECHECK /* we define the real functions here */
#include <dlfcn.h>
#include <stdarg.h>

#include <curl/curl.h>

#include "ms_log.h"

#define LIBCURL "libcurl.so.4"

static struct {
    int tried, ok;
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    char *(*easy_escape)(CURL *, const char *, int);
    void (*free_)(void *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
    CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    const char *(*multi_strerror)(CURLMcode);
} L;

/* Load libcurl and resolve every function, once. 1 when usable. */
static int load(void)
{
    if (L.tried) return L.ok;
    L.tried = 1;
    void *h = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        ms_log_error("HTTP is unavailable: cannot load %s: %s (Debian: apt-get install libcurl4)",
                     LIBCURL, dlerror());
        return 0;
    }
    struct {
        void **slot;
        const char *name;
    } syms[] = {
        {(void **)&L.global_init, "curl_global_init"},
        {(void **)&L.easy_init, "curl_easy_init"},
        {(void **)&L.easy_setopt, "curl_easy_setopt"},
        {(void **)&L.easy_getinfo, "curl_easy_getinfo"},
        {(void **)&L.easy_cleanup, "curl_easy_cleanup"},
        {(void **)&L.easy_strerror, "curl_easy_strerror"},
        {(void **)&L.easy_escape, "curl_easy_escape"},
        {(void **)&L.free_, "curl_free"},
        {(void **)&L.slist_append, "curl_slist_append"},
        {(void **)&L.slist_free_all, "curl_slist_free_all"},
        {(void **)&L.multi_init, "curl_multi_init"},
        {(void **)&L.multi_setopt, "curl_multi_setopt"},
        {(void **)&L.multi_assign, "curl_multi_assign"},
        {(void **)&L.multi_socket_action, "curl_multi_socket_action"},
        {(void **)&L.multi_add_handle, "curl_multi_add_handle"},
        {(void **)&L.multi_remove_handle, "curl_multi_remove_handle"},
        {(void **)&L.multi_cleanup, "curl_multi_cleanup"},
        {(void **)&L.multi_info_read, "curl_multi_info_read"},
        {(void **)&L.multi_strerror, "curl_multi_strerror"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            ms_log_error("HTTP is unavailable: %s has no %s", LIBCURL, syms[i].name);
            return 0;
        }
    }
    L.ok = 1;
    return 1;
}

CURLcode curl_global_init(long flags)
{
    return load() ? L.global_init(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void)
{
    return load() ? L.easy_init() : NULL;
}

/* The option number says the argument's type (curl.h's CURLOPTTYPE_*). */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    if (!load()) return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        rc = L.easy_setopt(h, opt, va_arg(ap, long));
    else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
        rc = L.easy_setopt(h, opt, va_arg(ap, curl_off_t));
    else /* object, function and blob pointers */
        rc = L.easy_setopt(h, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    if (!load()) return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    CURLcode rc = L.easy_getinfo(h, info, va_arg(ap, void *)); /* always a pointer */
    va_end(ap);
    return rc;
}

void curl_easy_cleanup(CURL *h)
{
    if (load()) L.easy_cleanup(h);
}

const char *curl_easy_strerror(CURLcode rc)
{
    return load() ? L.easy_strerror(rc) : "libcurl could not be loaded";
}

char *curl_easy_escape(CURL *h, const char *s, int n)
{
    return load() ? L.easy_escape(h, s, n) : NULL;
}

void curl_free(void *p)
{
    if (load()) L.free_(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
    return load() ? L.slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
    if (load()) L.slist_free_all(l);
}

CURLM *curl_multi_init(void)
{
    return load() ? L.multi_init() : NULL;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
    if (!load()) return CURLM_INTERNAL_ERROR;
    va_list ap;
    va_start(ap, opt);
    CURLMcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        rc = L.multi_setopt(m, opt, va_arg(ap, long));
    else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
        rc = L.multi_setopt(m, opt, va_arg(ap, curl_off_t));
    else
        rc = L.multi_setopt(m, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLMcode curl_multi_assign(CURLM *m, curl_socket_t s, void *p)
{
    return load() ? L.multi_assign(m, s, p) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t s, int ev, int *running)
{
    return load() ? L.multi_socket_action(m, s, ev, running) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
    return load() ? L.multi_add_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
    return load() ? L.multi_remove_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
    return load() ? L.multi_cleanup(m) : CURLM_INTERNAL_ERROR;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
    return load() ? L.multi_info_read(m, left) : NULL;
}

const char *curl_multi_strerror(CURLMcode rc)
{
    return load() ? L.multi_strerror(rc) : "libcurl could not be loaded";
}
