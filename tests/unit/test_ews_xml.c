#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../bridge/exchange/autodiscover.h"
#include "../../bridge/exchange/ews_stream.h"
#include "../../bridge/exchange/ews_xml.h"
#include "../../mapping/ews_in.h"

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
    /* An external entity is not merely left unresolved: the DTD that
     * declares it is refused, and the message says so. */
    r = NULL;
    assert_int_equal(ews_xml_parse(xxe, strlen(xxe), &r, &e), CB_EPARSE);
    assert_null(r);
    assert_non_null(strstr(e.msg, "DTD"));
    assert_null(strstr(e.msg, "root:"));
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

#define SOAP_OPEN "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
#define SOAP_CLOSE "</s:Body></s:Envelope>"

/* Two chained internal entities: SIGSEGV (unbounded recursion) before. */
static void refuses_chained_entities(void **st)
{
    (void)st;
    const char *x = "<?xml version=\"1.0\"?><!DOCTYPE s:Envelope [<!ENTITY a \"<x>&b;</x>\">"
                    "<!ENTITY b \"<y>&a;</y>\">]>" SOAP_OPEN "<m:ResponseMessages "
                    "xmlns:m=\"m\">&a;&b;</m:ResponseMessages>" SOAP_CLOSE;
    ews_response *r = NULL;
    cb_err e = {0};
    assert_int_equal(ews_xml_parse(x, strlen(x), &r, &e), CB_EPARSE);
    assert_null(r);
    assert_non_null(strstr(e.msg, "DTD"));
}

/* One entity referenced 100,000 times: 1 GB and 13 s before. */
static void refuses_entity_expansion(void **st)
{
    (void)st;
    sbuf b;
    sbuf_init(&b);
    sbuf_cat(&b, "<?xml version=\"1.0\"?><!DOCTYPE s:Envelope [<!ENTITY big \"");
    for (int i = 0; i < 10240; i++) sbuf_cat(&b, "x");
    sbuf_cat(&b, "\">]>" SOAP_OPEN "<m:ResponseMessages xmlns:m=\"m\"><m:R>");
    for (int i = 0; i < 100000; i++) sbuf_cat(&b, "&big;");
    sbuf_cat(&b, "</m:R></m:ResponseMessages>" SOAP_CLOSE);
    ews_response *r = NULL;
    cb_err e = {0};
    assert_int_equal(ews_xml_parse(b.s, b.len, &r, &e), CB_EPARSE);
    assert_non_null(strstr(e.msg, "DTD"));
    /* The GetItem reader (ews_in) refuses it the same way. */
    ews_event **ev = NULL;
    size_t n = 0;
    assert_int_equal(ews_in_parse(b.s, b.len, NULL, &ev, &n, &e), CB_EPARSE);
    assert_null(ev);
    sbuf_free(&b);
}

/* 1,000,000 nested elements: SIGSEGV before (XML_PARSE_HUGE lifted the
 * depth limit). Refused, and quickly: nothing walks it recursively. */
static void refuses_deep_nesting(void **st)
{
    (void)st;
    sbuf b;
    sbuf_init(&b);
    sbuf_cat(&b, SOAP_OPEN);
    for (int i = 0; i < 1000000; i++) sbuf_cat(&b, "<a>");
    for (int i = 0; i < 1000000; i++) sbuf_cat(&b, "</a>");
    sbuf_cat(&b, SOAP_CLOSE);
    assert_false(sbuf_failed(&b));
    ews_response *r = NULL;
    cb_err e = {0};
    assert_int_equal(ews_xml_parse(b.s, b.len, &r, &e), CB_EPARSE);
    ews_event **ev = NULL;
    size_t n = 0;
    assert_int_equal(ews_in_parse(b.s, b.len, NULL, &ev, &n, &e), CB_EPARSE);
    sbuf_free(&b);
    /* 200 levels is within the limit and the fault is still found. */
    sbuf_init(&b);
    sbuf_cat(&b, SOAP_OPEN);
    for (int i = 0; i < 200; i++) sbuf_cat(&b, "<a>");
    sbuf_cat(&b, "<s:Fault><faultcode>a:ErrorX</faultcode></s:Fault>");
    for (int i = 0; i < 200; i++) sbuf_cat(&b, "</a>");
    sbuf_cat(&b, SOAP_CLOSE);
    assert_int_equal(ews_xml_parse(b.s, b.len, &r, &e), CB_OK);
    assert_true(r->fault);
    assert_string_equal(r->fault_code, "ErrorX");
    ews_response_free(r);
    sbuf_free(&b);
}

static void answer_limits_follow_the_operation(void **st)
{
    (void)st;
    assert_int_equal(ews_xml_answer_limit("<m:GetItem><m:ItemShape/></m:GetItem>"), 64u << 20);
    assert_int_equal(ews_xml_answer_limit("<m:SyncFolderItems>"), 16u << 20);
    assert_int_equal(ews_xml_answer_limit("<m:CreateItem SendMeetingInvitations=\"x\">"), 4u << 20);
    /* A prefix of a longer name does not count. */
    assert_int_equal(ews_xml_answer_limit("<m:GetItemX>"), 4u << 20);
}

/* GetUserSettings as the documentation shows it: the answer's UserResponses
 * line up with the request's Users; a user without both settings, a value
 * with control characters or the key separator, and an error answer give
 * no key. */
static void autodiscover_reads_grouping(void **st)
{
    (void)st;
    const char *smtp[] = {"a@example.org", "b&c@example.org"};
    sbuf b;
    sbuf_init(&b);
    autodiscover_request(&b, "https://mail.example.org/autodiscover/autodiscover.svc", smtp, 2);
    assert_non_null(strstr(b.s, "<wsa:Action>http://schemas.microsoft.com/exchange/2010/"
                                "Autodiscover/Autodiscover/GetUserSettings</wsa:Action>"));
    assert_non_null(strstr(b.s, "<a:Mailbox>b&amp;c@example.org</a:Mailbox>"));
    assert_non_null(strstr(b.s, "<a:Setting>GroupingInformation</a:Setting>"));
    sbuf_free(&b);
    const char *ans =
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
        "<GetUserSettingsResponseMessage xmlns=\"http://schemas.microsoft.com/exchange/2010/"
        "Autodiscover\"><Response><ErrorCode>NoError</ErrorCode><UserResponses>"
        "<UserResponse><ErrorCode>NoError</ErrorCode><UserSettings>"
        "<UserSetting><Name>GroupingInformation</Name><Value>PR01</Value></UserSetting>"
        "<UserSetting><Name>ExternalEwsUrl</Name><Value>https://x/EWS/Exchange.asmx</Value>"
        "</UserSetting></UserSettings></UserResponse>"
        "<UserResponse><ErrorCode>InvalidUser</ErrorCode><UserSettings/></UserResponse>"
        "<UserResponse><UserSettings><UserSetting><Name>GroupingInformation</Name>"
        "<Value>PR|02</Value></UserSetting><UserSetting><Name>ExternalEwsUrl</Name>"
        "<Value>u</Value></UserSetting></UserSettings></UserResponse>"
        "</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>";
    char *key[3] = {0};
    cb_err e;
    assert_int_equal(autodiscover_parse(ans, strlen(ans), 3, key, &e), CB_OK);
    assert_string_equal(key[0], "PR01|https://x/EWS/Exchange.asmx");
    assert_null(key[1]);
    assert_null(key[2]);
    free(key[0]);
    const char *err = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
                      "<GetUserSettingsResponseMessage><Response><ErrorCode>InvalidRequest"
                      "</ErrorCode></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>";
    assert_int_equal(autodiscover_parse(err, strlen(err), 1, key, &e), CB_EREMOTE);
    assert_non_null(strstr(e.msg, "InvalidRequest"));
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
        cmocka_unit_test(refuses_chained_entities),
        cmocka_unit_test(refuses_entity_expansion),
        cmocka_unit_test(refuses_deep_nesting),
        cmocka_unit_test(answer_limits_follow_the_operation),
        cmocka_unit_test(autodiscover_reads_grouping),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
