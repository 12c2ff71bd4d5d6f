/* tzdef.h — custom time zones: a VTIMEZONE as an EWS TimeZoneDefinition
 * and back.
 *
 * Used for the zones that have no IANA name and so no Windows ID (Lotus
 * Notes' "Eastern", "US-Eastern" and the like): the zone is carried by its
 * own rules. One standard offset, and optionally one daylight period with
 * yearly "n-th weekday of month" transitions — what both formats share.
 */
#ifndef TZDEF_H
#define TZDEF_H

#include <libical/ical.h>
#include <stddef.h>

#include "sbuf.h"

typedef struct tzdef_rule {
    int month;        /* 1..12 */
    int dow;          /* 0 = Sunday .. 6 */
    int occurrence;   /* 1..4, -1 = last */
    int seconds;      /* local wall-clock time of the change */
} tzdef_rule;

typedef struct tzdef {
    char *id;             /* the TZID */
    int std_offset;       /* seconds east of UTC */
    int dst_offset;
    int has_dst;
    tzdef_rule to_dst, to_std;
} tzdef;

/* Zones built from definitions, kept alive while times refer to them;
 * asking again for the same definition returns the zone already built. */
typedef struct tzdef_cache {
    icaltimezone **v;
    tzdef **defs;
    size_t n;
} tzdef_cache;

/* From the newest STANDARD/DAYLIGHT observances of vtz. -1 with why filled
 * when its rules are not of that shape. */
int tzdef_from_vtimezone(icalcomponent *vtz, tzdef **out, char *why, size_t why_len);
tzdef *tzdef_dup(const tzdef *d);
void tzdef_free(tzdef *d);

/* <t:StartTimeZone Id=... Name=...><t:Periods>...</t:StartTimeZone> with
 * element as the element name. */
void tzdef_write(const tzdef *d, const char *element, sbuf *b);
/* BEGIN:VTIMEZONE ... END:VTIMEZONE (CRLF lines). */
void tzdef_to_vtimezone(const tzdef *d, sbuf *b);
/* The zone as libical sees it, owned by cache (NULL when it cannot be
 * built). */
icaltimezone *tzdef_zone(const tzdef *d, tzdef_cache *cache);
void tzdef_cache_free(tzdef_cache *cache);

/* xs:duration <-> seconds ("-P0DT1H0M0.0S", "PT2H30M"). 0 on success. */
int tzdef_parse_duration(const char *s, int *seconds);
void tzdef_write_duration(int seconds, sbuf *b);

#endif
