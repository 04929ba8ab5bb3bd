/*
 * h1_chunked.c: the chunked transfer coding decoder (RFC 9112 section 7.1) declared in h1.h.
 *
 * A byte-driven state machine whose whole state lives in struct tmt_h1_chunked, so input may be
 * split anywhere: one call with all bytes and many calls with any split give the same data and the
 * same result. Data bytes are moved to the front of the caller's buffer with memmove (the write
 * position never passes the read position); everything else is read one byte at a time, which is
 * cheap next to the data runs, copied in one piece per call and chunk.
 *
 * Line ends: a chunk-size line and a trailer line may end in CRLF or a bare LF, as head lines may
 * (RFC 9112 section 2.2); the end of chunk data must be exactly CRLF. A CR anywhere else, or not
 * followed by LF, is an error.
 *
 * Limits: a chunk size of more than 64 bits, or written with more than CHUNK_DIGITS_MAX digits
 * (leading zeros included), is TMT_ELIMIT; so are more than TMT_H1_CHUNK_EXT_MAX bytes after the
 * size on one line (whitespace, ';' and extensions) and more than TMT_H1_TRAILERS_MAX bytes of
 * trailer field lines (line ends included, the final empty line not). Extensions are skipped:
 * after the size only optional whitespace and then ';' may come, and no control byte but HTAB.
 * Trailer fields are checked (token name, colon, value without control bytes but HTAB, no
 * obs-fold) and dropped.
 *
 * After an error the decoder stays failed: further calls return the same error and consume
 * nothing. After the end, further calls return 0 and consume nothing.
 */
#include "tmt/h1.h"

#include <string.h>

#include "h1_int.h"
#include "tmt/err.h"

#define CHUNK_DIGITS_MAX 64

enum chunk_state {
    CH_SIZE_START = 0, /* first hex digit of a chunk size (a zeroed decoder starts here) */
    CH_SIZE,           /* more digits, whitespace, ';' or the line end */
    CH_SIZE_WS,        /* whitespace after the size: ';' or the line end may follow */
    CH_EXT,            /* chunk extensions: skipped to the line end */
    CH_SIZE_LF,        /* CR seen on the size line */
    CH_DATA,
    CH_DATA_CR, /* chunk data read: CR must follow */
    CH_DATA_LF,
    CH_TRAILER_START, /* start of a trailer field line, or of the final empty line */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF, /* CR seen at the end of a trailer field line */
    CH_END_LF,     /* CR seen on the final empty line */
    CH_DONE,
    CH_FAILED_INVAL,
    CH_FAILED_LIMIT,
};

void tmt_h1_chunked_init(struct tmt_h1_chunked *d)
{
    TMT_ASSERT(d != NULL);
    *d = (struct tmt_h1_chunked){._state = CH_SIZE_START};
}

/* Bytes refused inside extensions and trailer values: controls other than HTAB, and DEL. */
static inline bool is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int fail(struct tmt_h1_chunked *d, int code)
{
    d->_state = code == TMT_ELIMIT ? CH_FAILED_LIMIT : CH_FAILED_INVAL;
    return code;
}

/*
 * Handles the byte that ends a chunk-size line's content: CR, LF, or anything else (an error).
 * Returns 0 or an error.
 */
static int size_line_end(struct tmt_h1_chunked *d, unsigned char c)
{
    if (c == '\r') {
        d->_state = CH_SIZE_LF;
        return 0;
    }
    if (c != '\n')
        return fail(d, TMT_EINVAL);
    d->_state = d->_chunk_left > 0 ? CH_DATA : CH_TRAILER_START;
    return 0;
}

/* Counts one more byte after the size; TMT_ELIMIT past TMT_H1_CHUNK_EXT_MAX. */
static int count_ext(struct tmt_h1_chunked *d)
{
    if (++d->_line_bytes > TMT_H1_CHUNK_EXT_MAX)
        return fail(d, TMT_ELIMIT);
    return 0;
}

static int count_trailer(struct tmt_h1_chunked *d)
{
    if (++d->_trailer_bytes > TMT_H1_TRAILERS_MAX)
        return fail(d, TMT_ELIMIT);
    return 0;
}

/* One byte outside chunk data. Returns 0, 1 at the end of the message, or an error. */
static int step(struct tmt_h1_chunked *d, unsigned char c)
{
    int h;
    switch ((enum chunk_state)d->_state) {
    case CH_SIZE_START:
        h = tmt_hex_value(c);
        if (h < 0)
            return fail(d, TMT_EINVAL);
        d->_chunk_left = (uint64_t)h;
        d->_size_digits = 1;
        d->_line_bytes = 0;
        d->_state = CH_SIZE;
        return 0;
    case CH_SIZE:
        h = tmt_hex_value(c);
        if (h >= 0) {
            if (d->_chunk_left > (UINT64_MAX >> 4) || ++d->_size_digits > CHUNK_DIGITS_MAX)
                return fail(d, TMT_ELIMIT);
            d->_chunk_left = (d->_chunk_left << 4) | (uint64_t)h;
            return 0;
        }
        if (c == ' ' || c == '\t') {
            d->_state = CH_SIZE_WS;
            return count_ext(d);
        }
        if (c == ';') {
            d->_state = CH_EXT;
            return count_ext(d);
        }
        return size_line_end(d, c);
    case CH_SIZE_WS:
        if (c == ' ' || c == '\t')
            return count_ext(d);
        if (c == ';') {
            d->_state = CH_EXT;
            return count_ext(d);
        }
        return size_line_end(d, c);
    case CH_EXT:
        if (c == '\r' || c == '\n')
            return size_line_end(d, c);
        if (is_ctl(c))
            return fail(d, TMT_EINVAL);
        return count_ext(d);
    case CH_SIZE_LF:
        if (c != '\n')
            return fail(d, TMT_EINVAL);
        d->_state = d->_chunk_left > 0 ? CH_DATA : CH_TRAILER_START;
        return 0;
    case CH_DATA_CR:
        if (c != '\r')
            return fail(d, TMT_EINVAL);
        d->_state = CH_DATA_LF;
        return 0;
    case CH_DATA_LF:
        if (c != '\n')
            return fail(d, TMT_EINVAL);
        d->_state = CH_SIZE_START;
        return 0;
    case CH_TRAILER_START:
        if (c == '\r') {
            d->_state = CH_END_LF;
            return 0;
        }
        if (c == '\n')
            return 1;
        /* Whitespace here would be obs-fold or a name starting with it: both refused. */
        if (!(tmt_h1_char_class[c] & H1_C_TOKEN))
            return fail(d, TMT_EINVAL);
        d->_state = CH_TRAILER_NAME;
        return count_trailer(d);
    case CH_TRAILER_NAME:
        if (c == ':')
            d->_state = CH_TRAILER_VALUE;
        else if (!(tmt_h1_char_class[c] & H1_C_TOKEN))
            return fail(d, TMT_EINVAL);
        return count_trailer(d);
    case CH_TRAILER_VALUE:
        if (c == '\r')
            d->_state = CH_TRAILER_LF;
        else if (c == '\n')
            d->_state = CH_TRAILER_START;
        else if (is_ctl(c))
            return fail(d, TMT_EINVAL);
        return count_trailer(d);
    case CH_TRAILER_LF:
        if (c != '\n')
            return fail(d, TMT_EINVAL);
        d->_state = CH_TRAILER_START;
        return count_trailer(d);
    case CH_END_LF:
        if (c != '\n')
            return fail(d, TMT_EINVAL);
        return 1;
    case CH_DATA:
    case CH_DONE:
    case CH_FAILED_INVAL:
    case CH_FAILED_LIMIT:
        break;
    }
    TMT_UNREACHABLE("chunked decoder state");
}

int tmt_h1_chunked_decode(struct tmt_h1_chunked *d, char *buf, size_t len, size_t *out_len,
                          size_t *consumed)
{
    TMT_ASSERT(d != NULL && out_len != NULL && consumed != NULL);
    *out_len = 0;
    *consumed = 0;
    switch (d->_state) {
    case CH_DONE:
        return 0;
    case CH_FAILED_INVAL:
        return TMT_EINVAL;
    case CH_FAILED_LIMIT:
        return TMT_ELIMIT;
    default:
        break;
    }

    size_t r = 0, w = 0;
    int rc = TMT_EAGAIN;
    while (r < len) {
        if (d->_state == CH_DATA) {
            size_t n = len - r;
            if (n > d->_chunk_left)
                n = (size_t)d->_chunk_left;
            if (w != r)
                memmove(buf + w, buf + r, n);
            w += n;
            r += n;
            d->_chunk_left -= n;
            if (d->_chunk_left == 0)
                d->_state = CH_DATA_CR;
            continue;
        }
        int s = step(d, (unsigned char)buf[r++]);
        if (s == 1) {
            d->_state = CH_DONE;
            rc = 0;
            break;
        }
        if (s < 0) {
            rc = s;
            break;
        }
    }
    *out_len = w;
    *consumed = r;
    return rc;
}
