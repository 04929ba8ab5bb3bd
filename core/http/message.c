/*
 * message.c: methods, status texts and header lookup for the message model in http.h.
 *
 * The tables here are const and built at compile time, so every thread reads them freely.
 */
#include "tmt/http.h"

#include <string.h>

struct method_name {
    const char *name;
    unsigned char len;
    enum tmt_http_method m;
};

static const struct method_name methods[] = {
    {"GET", 3, TMT_HTTP_GET},       {"HEAD", 4, TMT_HTTP_HEAD},
    {"POST", 4, TMT_HTTP_POST},     {"PUT", 3, TMT_HTTP_PUT},
    {"DELETE", 6, TMT_HTTP_DELETE}, {"OPTIONS", 7, TMT_HTTP_OPTIONS},
    {"PATCH", 5, TMT_HTTP_PATCH},   {"CONNECT", 7, TMT_HTTP_CONNECT},
    {"TRACE", 5, TMT_HTTP_TRACE},
};

enum tmt_http_method tmt_http_method_parse(const char *p, size_t len)
{
    /* GET dominates; test it before the table walk. */
    if (len == 3 && p[0] == 'G' && p[1] == 'E' && p[2] == 'T')
        return TMT_HTTP_GET;
    for (size_t i = 0; i < TMT_ARRAY_LEN(methods); i++) {
        if (methods[i].len == len && memcmp(methods[i].name, p, len) == 0)
            return methods[i].m;
    }
    return TMT_HTTP_OTHER;
}

const char *tmt_http_method_name(enum tmt_http_method m)
{
    for (size_t i = 0; i < TMT_ARRAY_LEN(methods); i++) {
        if (methods[i].m == m)
            return methods[i].name;
    }
    return "OTHER";
}

const char *tmt_http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

bool tmt_http_slice_ieq(struct tmt_slice s, const char *lower_lit)
{
    size_t n = strlen(lower_lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)s.p[i]) != (unsigned char)lower_lit[i])
            return false;
    }
    return true;
}

const struct tmt_http_header *tmt_http_header_find(const struct tmt_http_header *h, size_t n,
                                                   const char *lower_name)
{
    for (size_t i = 0; i < n; i++) {
        if (tmt_http_slice_ieq(h[i].name, lower_name))
            return &h[i];
    }
    return NULL;
}

long tmt_http_query_param(struct tmt_slice query, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), i = 0;
    while (i < query.len) {
        size_t end = i;
        while (end < query.len && query.p[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && query.p[eq] != '=')
            eq++;
        if (eq - i == nl && memcmp(query.p + i, name, nl) == 0) {
            size_t n = 0;
            for (size_t k = eq + 1; k < end; k++) {
                char c = query.p[k];
                if (c == '%') {
                    int h = k + 2 < end ? tmt_hex_value((unsigned char)query.p[k + 1]) : -1;
                    int l = k + 2 < end ? tmt_hex_value((unsigned char)query.p[k + 2]) : -1;
                    if (h < 0 || l < 0)
                        return -2;
                    c = (char)(h * 16 + l);
                    k += 2;
                }
                if (n + 1 > cap)
                    return -2;
                out[n++] = c;
            }
            return (long)n;
        }
        i = end + 1;
    }
    return -1;
}

bool tmt_http_list_has(struct tmt_slice value, const char *lower_token)
{
    size_t i = 0;
    while (i < value.len) {
        while (i < value.len && (value.p[i] == ' ' || value.p[i] == '\t' || value.p[i] == ','))
            i++;
        size_t start = i;
        while (i < value.len && value.p[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value.p[end - 1] == ' ' || value.p[end - 1] == '\t'))
            end--;
        if (end > start &&
            tmt_http_slice_ieq((struct tmt_slice){value.p + start, end - start}, lower_token))
            return true;
    }
    return false;
}

static bool path_unreserved(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

size_t tmt_http_path_normalize(struct tmt_slice in, char *out, size_t cap)
{
    static const char hx[] = "0123456789ABCDEF";
    if (in.len == 0 || in.p[0] != '/')
        return 0;
    size_t n = 0, i = 0;
    while (i < in.len) {
        while (i < in.len && in.p[i] == '/')
            i++;
        if (i == in.len)
            break;
        /* One path component, written after a '/' at seg and dropped or undone if it is . or .. */
        size_t seg = n;
        if (n + 1 > cap)
            return 0;
        out[n++] = '/';
        while (i < in.len && in.p[i] != '/') {
            char c = in.p[i];
            if (c != '%') {
                if (n + 1 > cap)
                    return 0;
                out[n++] = c;
                i++;
                continue;
            }
            int h = in.len - i >= 3 ? tmt_hex_value((unsigned char)in.p[i + 1]) : -1;
            int l = in.len - i >= 3 ? tmt_hex_value((unsigned char)in.p[i + 2]) : -1;
            if (h < 0 || l < 0 || n + 3 > cap)
                return 0;
            char d = (char)(h * 16 + l);
            if (path_unreserved(d)) {
                out[n++] = d;
            } else {
                out[n++] = '%';
                out[n++] = hx[h];
                out[n++] = hx[l];
            }
            i += 3;
        }
        size_t sl = n - seg - 1;
        if (sl == 1 && out[seg + 1] == '.') {
            n = seg;
        } else if (sl == 2 && out[seg + 1] == '.' && out[seg + 2] == '.') {
            if (seg == 0)
                return 0; /* above the root */
            n = seg;
            while (out[n - 1] != '/')
                n--;
            n--;
        }
    }
    if (n == 0 || in.p[in.len - 1] == '/') {
        if (n + 1 > cap)
            return 0;
        out[n++] = '/';
    }
    return n;
}
