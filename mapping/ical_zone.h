/* ical_zone.h — which zone an iCalendar date-time is in, as Exchange and
 * as libical will see it.
 *
 * A TZID that names an IANA zone (or an alias, or a prefixed name) is taken
 * as that zone, with its Windows ID from CLDR; the VTIMEZONE sent along is
 * then ignored, as CalendarServer itself does for zones it knows. A TZID
 * with no IANA name is carried by its VTIMEZONE's own rules (tzdef). UTC
 * stays UTC; floating times and dates use the person's zone.
 */
#ifndef ICAL_ZONE_H
#define ICAL_ZONE_H

#include <libical/ical.h>

#include "ews_item.h"

typedef struct ical_zone {
    icaltimezone *zone;      /* never NULL after a successful resolve */
    const char *windows;     /* Windows ID, or NULL with tzd set */
    tzdef *tzd;              /* owned by the caller when set */
    const char *tzid;        /* the TZID as written, or NULL */
    int unknown;             /* no rules found: UTC used */
} ical_zone;

/* Resolves the zone of date-time property p of a component in cal. */
int ical_zone_resolve(icalcomponent *cal, icalproperty *p, const map_ctx *ctx,
                      tzdef_cache *cache, ical_zone *out);

/* t (the value of p, which may be in any zone) as wall-clock time in the
 * zone of target: how EXDATE and RECURRENCE-ID find their instance. */
struct icaltimetype ical_zone_wall_in(icalcomponent *cal, icalproperty *p,
                                      struct icaltimetype t, const map_ctx *ctx,
                                      tzdef_cache *cache, const ical_zone *target);

/* The property's value as wall-clock time in z, then as UTC seconds. */
struct icaltimetype ical_zone_wall(icalproperty *p, const ical_zone *z);
long long ical_zone_utc(struct icaltimetype wall, const ical_zone *z);

#endif
