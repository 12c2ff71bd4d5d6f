#include "sim_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_buf_init(sim_buf *b)
{
    memset(b, 0, sizeof *b);
}

void sim_buf_free(sim_buf *b)
{
    free(b->s);
    sim_buf_init(b);
}

static void grow(sim_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) abort();
    b->s = s;
    b->cap = cap;
}

void sim_buf_catn(sim_buf *b, const char *s, size_t n)
{
    grow(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sim_buf_cat(sim_buf *b, const char *s)
{
    sim_buf_catn(b, s, strlen(s));
}

void sim_buf_printf(sim_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) abort();
    grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sim_buf_xml(sim_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sim_buf_cat(b, "&amp;"); break;
        case '<': sim_buf_cat(b, "&lt;"); break;
        case '>': sim_buf_cat(b, "&gt;"); break;
        case '"': sim_buf_cat(b, "&quot;"); break;
        case '\'': sim_buf_cat(b, "&apos;"); break;
        default: sim_buf_catn(b, s, 1);
        }
    }
}

char *sim_buf_take(sim_buf *b)
{
    char *s = b->s ? b->s : strdup("");
    if (!s) abort();
    sim_buf_init(b);
    return s;
}
