#include "autodiscover.h"

#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "../../mapping/xml_in.h"

#define NS_AD "http://schemas.microsoft.com/exchange/2010/Autodiscover"

void autodiscover_request(sbuf *b, const char *url, const char *const *smtp, size_t n)
{
    sbuf_printf(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope "
                   "xmlns:a=\"" NS_AD "\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\" "
                   "xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Header>"
                   "<a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>"
                   "<wsa:Action>" NS_AD "/Autodiscover/GetUserSettings</wsa:Action><wsa:To>");
    sbuf_xml(b, url);
    sbuf_cat(b, "</wsa:To></soap:Header><soap:Body><a:GetUserSettingsRequestMessage><a:Request>"
                "<a:Users>");
    for (size_t i = 0; i < n; i++) {
        sbuf_cat(b, "<a:User><a:Mailbox>");
        sbuf_xml(b, smtp[i]);
        sbuf_cat(b, "</a:Mailbox></a:User>");
    }
    sbuf_cat(b, "</a:Users><a:RequestedSettings><a:Setting>GroupingInformation</a:Setting>"
                "<a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request>"
                "</a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>");
}

static int is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

/* The text of a setting, if it is printable and short enough to be a key. */
static int setting(xmlNode *settings, const char *name, char *out, size_t size)
{
    for (xmlNode *s = settings ? settings->children : NULL; s; s = s->next) {
        if (!is(s, "UserSetting")) continue;
        xmlNode *nm = xml_in_find(s, "Name"), *v = xml_in_find(s, "Value");
        xmlChar *t = nm ? xmlNodeGetContent(nm) : NULL;
        int match = t && !strcmp((const char *)t, name);
        xmlFree(t);
        if (!match || !v) continue;
        xmlChar *val = xmlNodeGetContent(v);
        size_t len = val ? strlen((const char *)val) : 0;
        int ok = len && len < size;
        for (size_t i = 0; ok && i < len; i++) ok = val[i] >= 0x20 && val[i] < 0x7f && val[i] != '|';
        if (ok) memcpy(out, val, len + 1);
        xmlFree(val);
        return ok;
    }
    return 0;
}

int autodiscover_parse(const char *xml, size_t len, size_t n, char **key, cb_err *err)
{
    xmlDoc *doc = xml_in_read(xml, len, err);
    if (!doc) return err->code;
    xmlNode *resp = xml_in_find(xmlDocGetRootElement(doc), "UserResponses");
    if (!resp) {
        xmlNode *code = xml_in_find(xmlDocGetRootElement(doc), "ErrorCode");
        xmlChar *t = code ? xmlNodeGetContent(code) : NULL;
        cb_errf(err, CB_EREMOTE, "Autodiscover: no UserResponses (ErrorCode %.64s)",
                t ? (const char *)t : "none");
        xmlFree(t);
        xmlFreeDoc(doc);
        return CB_EREMOTE;
    }
    size_t i = 0;
    for (xmlNode *u = resp->children; u && i < n; u = u->next) {
        if (!is(u, "UserResponse")) continue;
        char grouping[AUTODISCOVER_KEY_MAX / 2], url[AUTODISCOVER_KEY_MAX / 2];
        xmlNode *settings = xml_in_find(u, "UserSettings");
        if (setting(settings, "GroupingInformation", grouping, sizeof grouping) &&
            setting(settings, "ExternalEwsUrl", url, sizeof url)) {
            size_t kl = strlen(grouping) + strlen(url) + 2;
            free(key[i]);
            if ((key[i] = malloc(kl))) snprintf(key[i], kl, "%s|%s", grouping, url);
        }
        i++;
    }
    xmlFreeDoc(doc);
    return CB_OK;
}

int autodiscover_groups(ews_client *c, const char *url, const char *const *smtp, size_t n,
                        char **key, cb_err *err)
{
    for (size_t at = 0; at < n; at += AUTODISCOVER_USERS) {
        size_t k = n - at < AUTODISCOVER_USERS ? n - at : AUTODISCOVER_USERS;
        sbuf req, ans;
        sbuf_init(&req);
        sbuf_init(&ans);
        autodiscover_request(&req, url, smtp + at, k);
        long status = 0;
        int rc = sbuf_failed(&req) ? cb_errf(err, CB_ENOMEM, "out of memory")
                                   : ews_client_post_now(c, url, req.s, &ans, &status, err);
        if (rc == CB_OK && status != 200)
            rc = cb_errf(err, CB_EREMOTE, "Autodiscover %s: HTTP %ld", url, status);
        if (rc == CB_OK) rc = autodiscover_parse(ans.s ? ans.s : "", ans.len, k, key + at, err);
        sbuf_free(&req);
        sbuf_free(&ans);
        if (rc) return rc;
    }
    return CB_OK;
}
