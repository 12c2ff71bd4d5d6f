#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(sbuf *b)
{
    memset(b, 0, sizeof *b);
}

void sbuf_free(sbuf *b)
{
    free(b->s);
    sbuf_init(b);
}

static int grow(sbuf *b, size_t add)
{
    if (b->failed) return 0;
    if (b->len + add + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + add + 1) cap *= 2;
    char *n = realloc(b->s, cap);
    if (!n) {
        b->failed = 1;
        return 0;
    }
    b->s = n;
    b->cap = cap;
    return 1;
}

void sbuf_catn(sbuf *b, const char *s, size_t n)
{
    if (!grow(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sbuf_cat(sbuf *b, const char *s)
{
    sbuf_catn(b, s, strlen(s));
}

/* Formats into the room the buffer has, and only when that was too little
 * grows it and formats again (most writes fit: one pass, not two). */
void sbuf_printf(sbuf *b, const char *fmt, ...)
{
    if (b->failed || !grow(b, 64)) return;
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->s[b->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        if (!grow(b, (size_t)n)) {
            b->s[b->len] = '\0';
            return;
        }
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* Length of the well-formed UTF-8 sequence at c that XML 1.0 allows, or 0
 * (overlong forms, surrogates, beyond U+10FFFF, U+FFFE/U+FFFF). */
static size_t utf8_len(const unsigned char *c)
{
    unsigned cp;
    size_t n;
    if (c[0] < 0x80) return 1;
    if (c[0] >= 0xc2 && c[0] <= 0xdf) cp = c[0] & 0x1f, n = 2;
    else if (c[0] >= 0xe0 && c[0] <= 0xef) cp = c[0] & 0x0f, n = 3;
    else if (c[0] >= 0xf0 && c[0] <= 0xf4) cp = c[0] & 0x07, n = 4;
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((c[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (c[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff) return 0;
    return n;
}

size_t sbuf_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

int sbuf_utf8_valid(const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t n = utf8_len(c);
        if (!n) return 0;
        c += n;
    }
    return 1;
}

void sbuf_xml(sbuf *b, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t n = utf8_len(c);
        switch (*c) {
        case '&': sbuf_cat(b, "&amp;"); break;
        case '<': sbuf_cat(b, "&lt;"); break;
        case '>': sbuf_cat(b, "&gt;"); break;
        case '"': sbuf_cat(b, "&quot;"); break;
        case '\'': sbuf_cat(b, "&apos;"); break;
        default:
            /* What XML cannot carry never reaches the document: control
             * characters are dropped, a broken byte becomes U+FFFD. */
            if (!n) sbuf_cat(b, "\xef\xbf\xbd");
            else if (*c >= 0x20 || *c == '\t' || *c == '\n' || *c == '\r')
                sbuf_catn(b, (const char *)c, n);
        }
        c += n ? n : 1;
    }
}

int sbuf_failed(const sbuf *b)
{
    return b->failed;
}

char *sbuf_take(sbuf *b)
{
    if (b->failed) {
        sbuf_free(b);
        return NULL;
    }
    char *s = b->s ? b->s : calloc(1, 1);
    sbuf_init(b);
    return s;
}
