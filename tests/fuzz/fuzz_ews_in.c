/* A GetItem answer (items an Exchange user can edit) -> the iCalendar
 * calbridge writes into CalendarServer; the same bytes as the masters'
 * answer and as their exceptions' (split at the middle), read as one. */
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
    char **ids = NULL;
    if (ews_in_modified_ids((const char *)data, size, &ids, &n, NULL) == CB_OK) {
        for (size_t i = 0; i < n; i++) free(ids[i]);
        free(ids);
    }
    const char *docs[2] = {(const char *)data, (const char *)data + size / 2};
    size_t lens[2] = {size / 2, size - size / 2};
    if (ews_in_parse_many(docs, lens, 2, fuzz_tz, &ev, &n, NULL) == CB_OK) ews_in_events_free(ev, n);
    return 0;
}
