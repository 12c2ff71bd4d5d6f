/* readparse — make bench's floor: what calbridge cannot do faster than.
 * It reads every object of the people map's homes the way calbridge's
 * first sync does (pg_source's scan, page by page) and parses each with
 * libical, nothing more: no mapping, no state, no EWS.
 *
 *   readparse -d DSN PEOPLE.csv
 *
 * Prints "N events, S s CPU, U us per event" (this process's CPU time;
 * PostgreSQL's own work is not counted, nor is it in calbridge's figure).
 */
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bridge/apple/pg_source.h"
#include "../mapping/people.h"

static int cmp_owner(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[1], "-d")) {
        fprintf(stderr, "usage: readparse -d DSN PEOPLE.csv\n");
        return 2;
    }
    cb_err e = {0};
    people *pp;
    pg_source *src;
    if (people_load(argv[3], &pp, &e) || pg_source_open(argv[2], &src, &e)) {
        fprintf(stderr, "readparse: %s\n", e.msg);
        return 1;
    }
    const char **owners = calloc(pp->n + 1, sizeof *owners);
    for (size_t i = 0; owners && i < pp->n; i++) owners[i] = pp->v[i].owner_uid;
    qsort(owners, pp->n, sizeof *owners, cmp_owner);
    double t0 = cpu_s();
    pg_cursor after;
    pg_scan_pos pos = {.owner = ""};
    long events = 0, bad = 0;
    int end = 0, rc = owners ? pg_source_scan_begin(src, owners, pp->n, &after, &e) : CB_ENOMEM;
    while (rc == CB_OK && !end) {
        pg_changes *ch = NULL;
        rc = pg_source_scan_page(src, owners, pp->n, &pos, 1000, &ch, &end, &e);
        for (size_t i = 0; rc == CB_OK && i < ch->n; i++) {
            icalcomponent *c = icalparser_parse_string(ch->v[i].ics);
            if (c && icalcomponent_get_first_component(c, ICAL_VEVENT_COMPONENT)) events++;
            else bad++;
            icalcomponent_free(c);
        }
        pg_changes_free(ch);
    }
    double cpu = cpu_s() - t0;
    if (rc != CB_OK) fprintf(stderr, "readparse: %s\n", e.msg);
    else printf("%ld events, %.2f s CPU, %.1f us per event%s\n", events, cpu,
                events ? cpu * 1e6 / (double)events : 0.0, bad ? " (some not parsed)" : "");
    free(owners);
    pg_source_close(src);
    people_free(pp);
    return rc == CB_OK ? 0 : 1;
}
