/* sim_buf.h — the simulator's growable string with XML escaping. Its own,
 * like everything in tests/ewssim: the simulator models Exchange, and links
 * nothing of calbridge. Allocation failure aborts (a test server). */
#ifndef SIM_BUF_H
#define SIM_BUF_H

#include <stddef.h>

typedef struct sim_buf {
    char *s;
    size_t len, cap;
} sim_buf;

void sim_buf_init(sim_buf *b);
void sim_buf_free(sim_buf *b);
void sim_buf_cat(sim_buf *b, const char *s);
void sim_buf_catn(sim_buf *b, const char *s, size_t n);
void sim_buf_printf(sim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with &, <, >, " and ' escaped. */
void sim_buf_xml(sim_buf *b, const char *s);
/* The string (never NULL); b is empty again. */
char *sim_buf_take(sim_buf *b);

#endif
