/* A GetItem answer (items an Exchange user can edit) -> the iCalendar
 * calbridge writes into CalendarServer. */
#include "fuzz_common.h"
#include "../../mapping/ews_in.h"
#include "../../mapping/ical_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ews_event **ev = NULL;
    size_t n = 0;
    if (ews_in_parse((const char *)data, size, fuzz_tz, &ev, &n, NULL) == CB_OK) {
        map_ctx mc = fuzz_ctx();
        for (size_t i = 0; i < n; i++) {
            char *ics = ical_out_calendar(&ev[i], 1, &mc, NULL);
            free(ics);
        }
        ews_in_events_free(ev, n);
    }
    return 0;
}
