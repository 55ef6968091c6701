/*
 * fuzz_httpd.c - libFuzzer harness for the HTTP request parser (the scrape
 * endpoint faces the network). The harness includes httpd.c to reach its
 * static parser, the way the server calls it: find the end of the head in a
 * buffer of at most MS_HTTPD_MAX_HEAD bytes, then parse it in place.
 */
#include "../src/httpd.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[MS_HTTPD_MAX_HEAD];
    if (size > sizeof buf) size = sizeof buf;
    memcpy(buf, data, size);
    size_t off = 0;
    while (off < size) { /* pipelined heads, as conn_process walks them */
        size_t n = head_end(buf + off, size - off);
        if (!n) break;
        request r;
        if (parse_head(buf + off, n, &r) != 0) break;
        if (strlen(r.path) == 0 || r.path[0] != '/') __builtin_trap();
        off += n;
    }
    return 0;
}
