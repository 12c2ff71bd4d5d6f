/* A GetStreamingEvents body, cut into envelopes as it arrives, each parsed. */
#include "fuzz_common.h"
#include "../../bridge/exchange/ews_stream.h"
#include "../../bridge/exchange/ews_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t left = size, n;
    while (left && (n = ews_stream_envelope_len(p, left))) {
        if (n > left) abort();
        ews_response *r = NULL;
        if (ews_xml_parse(p, n, &r, NULL) == CB_OK) ews_response_free(r);
        p += n;
        left -= n;
    }
    return 0;
}
