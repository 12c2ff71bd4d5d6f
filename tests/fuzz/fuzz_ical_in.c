/* iCalendar (as a CalendarServer user can write it) -> EWS requests. */
#include "fuzz_common.h"
#include "../../mapping/ical_in.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *ics = fuzz_text(data, size);
    map_ctx mc = fuzz_ctx();
    ical_in_result *r = NULL;
    size_t n = 0;
    if (ical_in_map_all(ics, &mc, &r, &n, NULL) == CB_OK) {
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; r[i].ev && k < r[i].ev->n; k++) {
                sbuf b, d, u;
                sbuf_init(&b);
                sbuf_init(&d);
                sbuf_init(&u);
                ews_item_write_create(r[i].ev->items[k], "owner/1/x.ics", "tag", &b);
                ews_item_write_occurrences(r[i].ev->items[k], "MASTER", &d, &u);
                /* What reaches Exchange is well-formed UTF-8, whatever came in. */
                if (b.s && !sbuf_utf8_valid(b.s)) abort();
                sbuf_free(&b);
                sbuf_free(&d);
                sbuf_free(&u);
            }
        }
        ical_in_results_free(r, n);
    }
    free(ics);
    return 0;
}
