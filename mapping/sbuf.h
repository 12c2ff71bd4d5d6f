/* sbuf.h — a growable string buffer with XML escaping.
 *
 * Appends never fail visibly: on allocation failure the buffer enters an
 * error state (sbuf_failed) and further appends are ignored, so building a
 * document needs one check at the end instead of one per line.
 * The buffer owns its memory: sbuf_free, or sbuf_take to transfer it.
 */
#ifndef SBUF_H
#define SBUF_H

#include <stddef.h>

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

void sbuf_init(sbuf *b);
void sbuf_free(sbuf *b);
void sbuf_cat(sbuf *b, const char *s);
void sbuf_catn(sbuf *b, const char *s, size_t n);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with &, <, >, " and ' escaped; control characters that XML 1.0
 * cannot carry are dropped. */
void sbuf_xml(sbuf *b, const char *s);
int sbuf_failed(const sbuf *b);
/* Returns the string (never NULL unless failed) and resets b. */
char *sbuf_take(sbuf *b);

/* How many characters (UTF-8 lead bytes) s holds. */
size_t sbuf_utf8_chars(const char *s);

/* 1 when s is well-formed UTF-8 that XML 1.0 can carry, else 0. */
int sbuf_utf8_valid(const char *s);

#endif
