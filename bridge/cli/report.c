#include "report.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void report_init(report *r)
{
    memset(r, 0, sizeof *r);
}

void report_free(report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].key);
        free(r->v[i].message);
    }
    free(r->v);
    report_init(r);
}

void report_add(report *r, const char *key, int failed, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report_entry *v = realloc(r->v, (r->n + 1) * sizeof *v);
    if (!v) return;
    r->v = v;
    v[r->n].key = strdup(key ? key : "-");
    v[r->n].message = strdup(msg);
    v[r->n].failed = failed;
    r->n++;
}

static void print_entries(const report *r, FILE *f, int failed, size_t max)
{
    size_t shown = 0, total = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].failed != failed) continue;
        if (total++ < max) {
            fprintf(f, "    %s: %s\n", r->v[i].key, r->v[i].message);
            shown++;
        }
    }
    if (total > shown) fprintf(f, "    ... and %zu more\n", total - shown);
}

void report_print(const report *r, FILE *f, size_t max_entries)
{
    fprintf(f, "calbridge sync summary\n");
    fprintf(f, "  people            %ld\n", r->people);
    fprintf(f, "  events read       %ld\n", r->read);
    fprintf(f, "  items created     %ld\n", r->created);
    fprintf(f, "  items updated     %ld\n", r->updated);
    fprintf(f, "  items deleted     %ld\n", r->deleted);
    fprintf(f, "  unchanged         %ld\n", r->unchanged);
    fprintf(f, "  adopted (found after a crash) %ld\n", r->adopted);
    fprintf(f, "  skipped (not events) %ld\n", r->skipped);
    {
        fprintf(f, "  Exchange changes read       %ld\n", r->ex_read);
        fprintf(f, "  written into Apple          %ld\n", r->ex_written);
        fprintf(f, "  deleted from Apple          %ld\n", r->ex_deleted);
        fprintf(f, "  own writes recognised (no echo) %ld\n", r->echoes);
        fprintf(f, "  conflicts (mirror-side edits overwritten) %ld\n", r->conflicts);
        fprintf(f, "  people held back by the mass-delete guard %ld\n", r->held_back);
    }
    fprintf(f, "  errors            %ld\n", r->failed);
    size_t failures = 0;
    for (size_t i = 0; i < r->n; i++) failures += r->v[i].failed;
    if (failures) {
        fprintf(f, "  failed or held back:\n");
        print_entries(r, f, 1, max_entries);
    }
    size_t warned = 0;
    for (size_t i = 0; i < r->n; i++) warned += !r->v[i].failed;
    if (warned) {
        fprintf(f, "  carried with something left out:\n");
        print_entries(r, f, 0, max_entries);
    }
}
