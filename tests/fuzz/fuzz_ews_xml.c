/* Any EWS answer (what a server, or whoever sits in its place, sends),
 * and any Autodiscover answer. */
#include "fuzz_common.h"
#include "../../bridge/exchange/autodiscover.h"
#include "../../bridge/exchange/ews_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ews_response *r = NULL;
    cb_err e;
    if (ews_xml_parse((const char *)data, size, &r, &e) == CB_OK) {
        /* Every copied string is terminated within its field. */
        for (size_t i = 0; i < r->nmsgs; i++)
            if (strlen(r->msgs[i].code) >= sizeof r->msgs[i].code) abort();
        ews_response_free(r);
    }
    char *key[3] = {0};
    (void)autodiscover_parse((const char *)data, size, 3, key, &e);
    for (int i = 0; i < 3; i++) {
        /* A key is printable, short and has one separator. */
        if (key[i] && (strlen(key[i]) >= AUTODISCOVER_KEY_MAX || !strchr(key[i], '|'))) abort();
        free(key[i]);
    }
    return 0;
}
