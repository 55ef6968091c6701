/*
 * fuzz_collectd.c - libFuzzer harness for the collectd binary protocol
 * parser (ms_cd_parse), including the crypto paths: the first byte picks how
 * the rest is fed: as a raw packet (at a security level with users), signed
 * with user/secret, or encrypted with user/secret (so the parser's inner
 * packets get mutated too), and a raw packet parsed with no users. Checked:
 * strings handed over are NUL-terminated and short, counts stay in range.
 */
#include <stdlib.h>
#include <string.h>

#include "ms_collectd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s)
{
    if (!s || strnlen(s, MS_CD_NAME_MAX) >= MS_CD_NAME_MAX) __builtin_trap();
}

static void on_values(void *ud, const ms_cd_vl *vl)
{
    (void)ud;
    check_str(vl->host);
    check_str(vl->plugin);
    check_str(vl->plugin_instance);
    check_str(vl->type);
    check_str(vl->type_instance);
    if (vl->n == 0 || vl->n > MS_CD_VALUES_MAX || !*vl->plugin || !*vl->type) __builtin_trap();
    for (size_t i = 0; i < vl->n; i++)
        if (vl->values[i].type < 0 || vl->values[i].type > 3) __builtin_trap();
}

static void on_notif(void *ud, const ms_cd_vl *vl)
{
    (void)ud;
    check_str(vl->host);
    if (!vl->message || strnlen(vl->message, 1025) > 1024) __builtin_trap();
}

static const char *pw_of(void *ud, const char *user)
{
    (void)ud;
    return !strcmp(user, "user") ? "secret" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0] & 3, level = (data[0] >> 2) % 3;
    data++;
    size--;
    ms_cd_sink k = {on_values, on_notif, pw_of, NULL, level};
    const char *why = NULL;
    static uint8_t buf[70000];
    static const uint8_t iv[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    long n;
    switch (mode) {
    case 0:
        ms_cd_parse(data, size, &k, NULL, &why);
        break;
    case 1:
        n = ms_cd_sign(data, size, "user", "secret", buf, sizeof buf);
        if (n > 0) ms_cd_parse(buf, (size_t)n, &k, NULL, &why);
        break;
    case 2:
        n = ms_cd_encrypt(data, size, "user", "secret", iv, buf, sizeof buf);
        if (n > 0) ms_cd_parse(buf, (size_t)n, &k, NULL, &why);
        break;
    default:
        k.password = NULL;
        k.level = 0;
        ms_cd_parse(data, size, &k, NULL, &why);
    }
    return 0;
}
