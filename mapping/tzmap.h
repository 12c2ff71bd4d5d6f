/* tzmap.h — IANA time-zone names to Windows time-zone IDs.
 *
 * The table is CLDR's windowsZones.xml (Debian unicode-cldr-core), read at
 * start; aliases such as "US/Pacific" are resolved through the link lines of
 * tzdata's tzdata.zi (Debian tzdata) so that the names Apple clients write
 * find their canonical zone. Nothing is hand-written.
 */
#ifndef TZMAP_H
#define TZMAP_H

#include <libical/ical.h>

#include "cb_err.h"

#define TZMAP_CLDR_PATH "/usr/share/unicode/cldr/common/supplemental/windowsZones.xml"
#define TZMAP_TZDATA_PATH "/usr/share/zoneinfo/tzdata.zi"

typedef struct tzmap tzmap;

/* tzdata_path may be NULL (no alias resolution). */
int tzmap_load(const char *cldr_path, const char *tzdata_path, tzmap **out,
               cb_err *err);
void tzmap_free(tzmap *m);
/* The Windows ID for an IANA name or alias, or NULL. Names written by some
 * clients with a prefix ("/mozilla.org/20050126_1/Europe/Berlin") are
 * matched by their last two path segments. */
const char *tzmap_windows(const tzmap *m, const char *iana);
/* The canonical IANA name of a Windows ID (CLDR territory 001), or NULL. */
const char *tzmap_iana(const tzmap *m, const char *windows);
/* libical's built-in zone of that name, or NULL (remembered: the first call
 * for an ID searches libical's table, the next ones do not). */
icaltimezone *tzmap_zone(const tzmap *m, const char *windows);
size_t tzmap_size(const tzmap *m);

#endif
