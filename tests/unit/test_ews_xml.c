#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../bridge/ews_stream.h"
#include "../../bridge/ews_xml.h"

#define SAMPLES "../shared/ews/samples/"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

static void parses_real_server_busy_fault(void **st)
{
    (void)st;
    size_t len;
    char *x = slurp(SAMPLES "error-serverbusy-fault.xml", &len);
    if (!x) skip();   /* ../shared absent: nothing to read */
    ews_response *r;
    cb_err e;
    assert_int_equal(ews_xml_parse(x, len, &r, &e), CB_OK);
    assert_true(r->fault);
    assert_string_equal(r->fault_code, "ErrorServerBusy");
    assert_int_equal(r->backoff_ms, 297749);
    ews_response_free(r);
    free(x);
}

static void parses_real_batch_answers_in_order(void **st)
{
    (void)st;
    size_t len;
    char *x = slurp(SAMPLES "batch-deleteitem-response-mixed.xml", &len);
    if (!x) skip();
    ews_response *r;
    cb_err e;
    assert_int_equal(ews_xml_parse(x, len, &r, &e), CB_OK);
    assert_false(r->fault);
    assert_int_equal(r->nmsgs, 3);   /* one answer per item, each on its own */
    for (size_t i = 0; i < r->nmsgs; i++) {
        assert_false(r->msgs[i].ok);
        assert_string_equal(r->msgs[i].code, "ErrorItemNotFound");
    }
    ews_response_free(r);
    free(x);
    x = slurp(SAMPLES "createitem-calendaritem-ref-response.xml", &len);
    assert_int_equal(ews_xml_parse(x, len, &r, &e), CB_OK);
    assert_int_equal(r->nmsgs, 1);
    assert_string_equal(r->msgs[0].item_id, "AAAlAFV");
    assert_string_equal(r->msgs[0].change_key, "DwAAABYA");
    ews_response_free(r);
    free(x);
}

static void rejects_non_soap_and_hostile_input(void **st)
{
    (void)st;
    ews_response *r;
    cb_err e;
    const char *html = "<html><body>500</body></html>";
    assert_int_equal(ews_xml_parse(html, strlen(html), &r, &e), CB_EPARSE);
    const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
                      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
                      "<m:R xmlns:m=\"m\"><m:ResponseMessages><m:X ResponseClass=\"Error\">"
                      "<m:MessageText>&e;</m:MessageText></m:X></m:ResponseMessages></m:R>"
                      "</s:Body></s:Envelope>";
    assert_int_equal(ews_xml_parse(xxe, strlen(xxe), &r, &e), CB_OK);
    assert_int_equal(r->nmsgs, 1);
    assert_null(strstr(r->msgs[0].text, "root:"));
    ews_response_free(r);
}

static void envelope_carries_version_and_impersonation(void **st)
{
    (void)st;
    sbuf b;
    sbuf_init(&b);
    ews_xml_envelope(&b, "Exchange2016", "a&b@x.org", "<m:GetFolder/>");
    assert_non_null(strstr(b.s, "<t:RequestServerVersion Version=\"Exchange2016\"/>"));
    assert_non_null(strstr(b.s, "<t:PrimarySmtpAddress>a&amp;b@x.org</t:PrimarySmtpAddress>"));
    sbuf_free(&b);
}

/* A real SyncFolderItems answer: state, last-in-range, and the item
 * changes in order: Update, Create, Create, Delete. ReadFlagChange is not
 * an item change, and the <t:Delete>true</t:Delete> inside the items'
 * ResponseObjects is not a deletion. */
static void parses_real_sync_folder_items(void **st)
{
    (void)st;
    size_t len;
    char *x = slurp(SAMPLES "syncfolderitems-response-changes.xml", &len);
    if (!x) skip();
    ews_response *r;
    cb_err e;
    assert_int_equal(ews_xml_parse(x, len, &r, &e), CB_OK);
    assert_string_equal(r->sync_state, "H4sIAAAAAAAEAO29B2AcSZY==");
    assert_true(r->sync_last);
    assert_int_equal(r->nchanges, 4);
    assert_int_equal(r->changes[0].kind, 'U');
    assert_string_equal(r->changes[0].item_id, "q04QAAAA==");
    size_t creates = 0, deletes = 0;
    for (size_t i = 0; i < r->nchanges; i++) {
        creates += r->changes[i].kind == 'C';
        deletes += r->changes[i].kind == 'D';
    }
    assert_int_equal(creates, 2);
    assert_int_equal(deletes, 1);
    assert_int_equal(r->changes[3].kind, 'D');
    ews_response_free(r);
    free(x);
}

static void parses_real_subscribe_answer(void **st)
{
    (void)st;
    size_t len;
    char *x = slurp(SAMPLES "subscribe-streaming-response.xml", &len);
    if (!x) skip();
    ews_response *r;
    cb_err e;
    assert_int_equal(ews_xml_parse(x, len, &r, &e), CB_OK);
    assert_int_equal(r->nmsgs, 1);
    assert_true(r->msgs[0].ok);
    assert_string_equal(r->msgs[0].subscription_id,
                        "JgBibjFwcjAzbWIyMDIubmFtcHJkMDMucHJvZC5vdXRsb29rLmNvbRAAAADwXxVesOnHS5BxUHKwAW88SHjwd1iB0Ag=");
    ews_response_free(r);
    free(x);
}

/* Streamed envelopes: the real Exchange 2016 calendar capture (one
 * envelope notifying two subscriptions), and an error naming two. */
static void parses_streamed_notifications(void **st)
{
    (void)st;
    const char *err =
        "<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>"
        "<m:GetStreamingEventsResponse xmlns:m=\"m\" xmlns:t=\"t\"><m:ResponseMessages>"
        "<m:GetStreamingEventsResponseMessage ResponseClass=\"Error\"><m:ResponseCode>"
        "ErrorSubscriptionNotFound</m:ResponseCode><m:ErrorSubscriptionIds><t:SubscriptionId>A"
        "</t:SubscriptionId><t:SubscriptionId>B</t:SubscriptionId></m:ErrorSubscriptionIds>"
        "<m:ConnectionStatus>Closed</m:ConnectionStatus></m:GetStreamingEventsResponseMessage>"
        "</m:ResponseMessages></m:GetStreamingEventsResponse></Body></Envelope>";
    ews_response *r;
    cb_err e;
    assert_int_equal(ews_xml_parse(err, strlen(err), &r, &e), CB_OK);
    assert_false(r->msgs[0].ok);
    assert_string_equal(r->msgs[0].connection_status, "Closed");
    assert_int_equal(r->nnotices, 2);
    assert_true(r->notices[0].error && r->notices[1].error);
    assert_string_equal(r->notices[1].subscription_id, "B");
    ews_response_free(r);
    size_t len;
    char *x = slurp(SAMPLES "getstreamingevents-exchange2016-calendar-events.xml", &len);
    if (!x) skip();
    assert_int_equal(ews_xml_parse(x, len, &r, &e), CB_OK);
    assert_true(r->msgs[0].ok);
    assert_int_equal(r->nnotices, 2);
    assert_false(r->notices[0].error);
    assert_true(r->notices[0].events >= 2);   /* ModifiedEvent, FreeBusyChangedEvent, ... */
    assert_true(r->notices[1].events >= 1);
    assert_string_not_equal(r->notices[0].subscription_id, r->notices[1].subscription_id);
    assert_int_equal(strncmp(r->notices[0].subscription_id, "FwBleGNoMDMu", 12), 0);
    ews_response_free(r);
    free(x);
}

/* The stream's framing: envelopes one after another, prefixed or not,
 * cut anywhere by chunk boundaries. */
static void splits_streamed_envelopes(void **st)
{
    (void)st;
    const char *a = "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"x\"><s:Body>one</s:Body></s:Envelope>";
    const char *b = "<Envelope xmlns=\"x\"><soap11:Body xmlns:soap11=\"x\">two</soap11:Body></Envelope >";
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s<Envelope xmlns=\"x\"><Bo", a, b);
    size_t n = ews_stream_envelope_len(buf, strlen(buf));
    assert_int_equal(n, strlen(a));
    size_t m = ews_stream_envelope_len(buf + n, strlen(buf) - n);
    assert_int_equal(m, strlen(b));
    assert_int_equal(ews_stream_envelope_len(buf + n + m, strlen(buf) - n - m), 0);
    for (size_t cut = 0; cut < strlen(a); cut++)   /* incomplete: never a match */
        assert_int_equal(ews_stream_envelope_len(a, cut), 0);
    size_t len;
    char *x = slurp(SAMPLES "getstreamingevents-multi-envelope-exchange2013sp1.excerpt.txt", &len);
    if (!x) return;
    /* The real excerpt: one complete envelope, then a cut-off one. */
    size_t first = ews_stream_envelope_len(x, len);
    assert_true(first > 0 && first < len);
    assert_non_null(strstr(x + first, "<Envelope"));
    assert_int_equal(ews_stream_envelope_len(x + first, len - first), 0);
    free(x);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(parses_real_server_busy_fault),
        cmocka_unit_test(parses_real_sync_folder_items),
        cmocka_unit_test(parses_real_subscribe_answer),
        cmocka_unit_test(splits_streamed_envelopes),
        cmocka_unit_test(parses_streamed_notifications),
        cmocka_unit_test(parses_real_batch_answers_in_order),
        cmocka_unit_test(rejects_non_soap_and_hostile_input),
        cmocka_unit_test(envelope_carries_version_and_impersonation),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
