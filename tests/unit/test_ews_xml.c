#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(parses_real_server_busy_fault),
        cmocka_unit_test(parses_real_batch_answers_in_order),
        cmocka_unit_test(rejects_non_soap_and_hostile_input),
        cmocka_unit_test(envelope_carries_version_and_impersonation),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
