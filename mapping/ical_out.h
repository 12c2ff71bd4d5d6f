/* ical_out.h — Exchange items back to iCalendar, as CalendarServer stores
 * events.
 *
 * The reverse of ical_in.h: a master with RRULE, EXDATE for deleted
 * occurrences and one RECURRENCE-ID override per modified occurrence; the
 * zone as the Apple TZID it came from (stamped on the item) or the IANA
 * name of its Windows ID, with the VTIMEZONE included; custom zones from
 * their definition; travel time, comments, organizer and URL from the
 * stamps and body sections ical_in.c wrote. Singles calbridge expanded
 * come back as one event each.
 */
#ifndef ICAL_OUT_H
#define ICAL_OUT_H

#include "ews_item.h"

/* A VCALENDAR holding events ev[0..n-1]; NULL with err set on failure. */
char *ical_out_calendar(ews_event *const *ev, size_t n, const map_ctx *ctx, cb_err *err);

#endif
