/*
 * h1_int.h: what the HTTP/1.1 head parser (h1_parse.c) and the chunked decoder (h1_chunked.c)
 * share: the byte class table.
 *
 * The table is const and built at compile time, so any thread reads it freely. Each byte maps to
 * a set of H1_C_* bits; a scanning loop tests one bit per byte with no branch per class.
 */
#ifndef TMT_H1_INT_H
#define TMT_H1_INT_H

#include <stdint.h>

enum {
    H1_C_TOKEN = 0x01, /* tchar (RFC 9110 section 5.6.2) */
    H1_C_PATH = 0x02,  /* request-target byte before '?': VCHAR except '?' and '#' */
    H1_C_QUERY = 0x04, /* request-target byte after '?': VCHAR except '#' */
    H1_C_VALUE = 0x08, /* field-value and reason-phrase byte: HTAB, SP, VCHAR, obs-text */
    H1_C_HOST = 0x10,  /* Host and authority byte: unreserved, '%', sub-delims, ':', '[', ']' */
};

/* Byte classes; never contains H1_C_* bits for CR, LF or NUL, which is what ends every scan. */
extern const uint8_t tmt_h1_char_class[256];

#endif
