/* report.h — what one run did: counters and the events that failed or were
 * carried with something left out, printed as the readable summary of
 * `calbridge sync --once` and `make demo`.
 */
#ifndef REPORT_H
#define REPORT_H

#include <stdio.h>
#include <stddef.h>

typedef struct report_entry {
    char *key;      /* source key */
    char *message;
    int failed;     /* 1 failed, 0 carried with a warning */
} report_entry;

typedef struct report {
    long people, read, created, updated, deleted, unchanged, skipped, failed, adopted;
    /* Exchange -> Apple */
    long ex_read, ex_written, ex_deleted, echoes, conflicts, held_back;
    report_entry *v;
    size_t n;
} report;

void report_init(report *r);
void report_free(report *r);
void report_add(report *r, const char *key, int failed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prints the summary; at most max_entries entries of each kind. */
void report_print(const report *r, FILE *f, size_t max_entries);

#endif
