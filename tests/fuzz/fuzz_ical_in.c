/* iCalendar (as a CalendarServer user can write it) -> EWS requests; and
 * the same text stored by the Apple writer in per-user form, with itself
 * as the stored text it merges from. */
#include "fuzz_common.h"
#include "../../mapping/ical_in.h"
#include "../../mapping/peruser.h"

static void store_as_owner(const char *ics, const map_ctx *mc)
{
    icalcomponent *cal = icalparser_parse_string(ics);
    if (!cal || icalcomponent_isa(cal) != ICAL_VCALENDAR_COMPONENT || peruser_has_blocks(ics)) {
        if (cal) icalcomponent_free(cal);
        return;
    }
    char *text = peruser_store(cal, "fuzz-owner", ics, mc, NULL);
    peruser_index *ix = text ? peruser_index_new(text, cal, mc) : NULL;
    peruser_row rows[4];
    icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    if (ix && ev) peruser_index_rows(ix, ev, 0, 0, rows, 4);
    peruser_index_free(ix);
    /* What CalendarServer gets back must read as the owner's again. */
    icalcomponent *back = text ? peruser_parse(text, "fuzz-owner", mc) : NULL;
    if (text && !back) abort();
    if (back) icalcomponent_free(back);
    free(text);
    icalcomponent_free(cal);
}

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
    store_as_owner(ics, &mc);
    free(ics);
    return 0;
}
