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

void sbuf_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sbuf_xml(sbuf *b, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '&': sbuf_cat(b, "&amp;"); break;
        case '<': sbuf_cat(b, "&lt;"); break;
        case '>': sbuf_cat(b, "&gt;"); break;
        case '"': sbuf_cat(b, "&quot;"); break;
        case '\'': sbuf_cat(b, "&apos;"); break;
        default:
            if (*c < 0x20 && *c != '\t' && *c != '\n' && *c != '\r') break;
            sbuf_catn(b, (const char *)c, 1);
        }
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
