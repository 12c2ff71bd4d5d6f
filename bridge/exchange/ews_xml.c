#include "ews_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../mapping/ews_item.h"
#include "../../mapping/xml_in.h"

#define NS_DECL "xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" " \
    "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" " \
    "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\""
#define MAX_MSGS 100000

void ews_xml_envelope(sbuf *b, const char *server_version, const char *impersonate,
                      const char *operation_xml)
{
    sbuf_printf(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<soap:Envelope %s>"
                   "<soap:Header><t:RequestServerVersion Version=\"", NS_DECL);
    sbuf_xml(b, server_version);
    sbuf_cat(b, "\"/>");
    if (impersonate) {
        sbuf_cat(b, "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>");
        sbuf_xml(b, impersonate);
        sbuf_cat(b, "</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>");
    }
    sbuf_cat(b, "</soap:Header><soap:Body>");
    sbuf_cat(b, operation_xml);
    sbuf_cat(b, "</soap:Body></soap:Envelope>");
}

size_t ews_xml_answer_limit(const char *operation_xml)
{
    static const struct { const char *op; size_t mb; } LIMITS[] = {
        {"GetItem", 64}, {"FindItem", 32}, {"SyncFolderItems", 16},
        {"GetUserAvailability", 16}};
    const char *p = operation_xml ? strchr(operation_xml, ':') : NULL;
    for (size_t i = 0; p && i < sizeof LIMITS / sizeof *LIMITS; i++) {
        size_t n = strlen(LIMITS[i].op);
        if (!strncmp(p + 1, LIMITS[i].op, n) && strchr(" >/", p[1 + n]))
            return LIMITS[i].mb << 20;
    }
    return (size_t)4 << 20;
}

/* ---- parsing ---------------------------------------------------------- */

static int is(xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static xmlNode *find_desc(xmlNode *n, const char *name)
{
    return xml_in_find(n, name);
}

static void copy_text(xmlNode *n, char *dst, size_t size)
{
    dst[0] = '\0';
    xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
    if (!t) return;
    const char *s = (const char *)t;
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') s++;
    snprintf(dst, size, "%s", s);
    size_t len = strlen(dst);
    while (len && (dst[len - 1] == ' ' || dst[len - 1] == '\n' || dst[len - 1] == '\r'))
        dst[--len] = '\0';
    xmlFree(t);
}

static void copy_attr(xmlNode *n, const char *name, char *dst, size_t size)
{
    dst[0] = '\0';
    xmlChar *v = n ? xmlGetProp(n, BAD_CAST name) : NULL;
    if (v) snprintf(dst, size, "%s", (const char *)v);
    xmlFree(v);
}

static void parse_fault(xmlNode *fault, ews_response *r)
{
    r->fault = 1;
    char code[128];
    copy_text(find_desc(fault, "faultcode"), code, sizeof code);
    const char *colon = strchr(code, ':');
    snprintf(r->fault_code, sizeof r->fault_code, "%.63s", colon ? colon + 1 : code);
    xmlNode *rc = find_desc(fault, "ResponseCode");
    if (rc) copy_text(rc, r->fault_code, sizeof r->fault_code);
    copy_text(find_desc(fault, "faultstring"), r->fault_text, sizeof r->fault_text);
    for (xmlNode *v = find_desc(fault, "Value"); v; v = v->next) {
        if (!is(v, "Value")) continue;
        char name[64], val[32];
        copy_attr(v, "Name", name, sizeof name);
        copy_text(v, val, sizeof val);
        if (!strcmp(name, "BackOffMilliseconds")) r->backoff_ms = atol(val);
    }
}

static void parse_found_item(xmlNode *item, ews_found *f)
{
    memset(f, 0, sizeof *f);
    for (xmlNode *c = item->children; c; c = c->next) {
        if (is(c, "ItemId")) {
            copy_attr(c, "Id", f->item_id, sizeof f->item_id);
            copy_attr(c, "ChangeKey", f->change_key, sizeof f->change_key);
        } else if (is(c, "ExtendedProperty")) {
            char name[64];
            copy_attr(find_desc(c, "ExtendedFieldURI"), "PropertyName", name, sizeof name);
            if (!strcmp(name, EWS_PROP_SOURCE))
                copy_text(find_desc(c, "Value"), f->source, sizeof f->source);
            else if (!strcmp(name, EWS_PROP_TAG))
                copy_text(find_desc(c, "Value"), f->tag, sizeof f->tag);
        }
    }
}

static int parse_found(xmlNode *items, ews_response *r)
{
    for (xmlNode *c = items ? items->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || r->nfound >= MAX_MSGS) continue;
        ews_found *v = realloc(r->found, (r->nfound + 1) * sizeof *v);
        if (!v) return -1;
        r->found = v;
        parse_found_item(c, &v[r->nfound++]);
    }
    return 0;
}

static int parse_changes(xmlNode *changes, ews_response *r)
{
    for (xmlNode *c = changes ? changes->children : NULL; c; c = c->next) {
        char kind = is(c, "Create") ? 'C' : is(c, "Update") ? 'U' : is(c, "Delete") ? 'D' : 0;
        xmlNode *id = kind ? find_desc(c, "ItemId") : NULL;
        if (!id || r->nchanges >= MAX_MSGS) continue;
        ews_change *v = realloc(r->changes, (r->nchanges + 1) * sizeof *v);
        if (!v) return -1;
        r->changes = v;
        ews_change *ch = &v[r->nchanges++];
        ch->kind = kind;
        copy_attr(id, "Id", ch->item_id, sizeof ch->item_id);
        copy_attr(id, "ChangeKey", ch->change_key, sizeof ch->change_key);
    }
    return 0;
}

static int add_notice(ews_response *r, xmlNode *id, int events, int error)
{
    if (r->nnotices >= MAX_MSGS) return 0;
    ews_notice *v = realloc(r->notices, (r->nnotices + 1) * sizeof *v);
    if (!v) return -1;
    r->notices = v;
    ews_notice *n = &v[r->nnotices++];
    copy_text(id, n->subscription_id, sizeof n->subscription_id);
    n->events = events;
    n->error = error;
    return 0;
}

/* Notifications and ErrorSubscriptionIds of a streamed envelope. */
static int parse_stream(xmlNode *c, ews_response *r)
{
    for (xmlNode *n = c->children; n; n = n->next) {
        if (is(c, "ErrorSubscriptionIds") && is(n, "SubscriptionId")) {
            if (add_notice(r, n, 0, 1) < 0) return -1;
            continue;
        }
        if (!is(n, "Notification")) continue;
        int events = 0;
        for (xmlNode *e = n->children; e; e = e->next)
            events += e->type == XML_ELEMENT_NODE && strstr((const char *)e->name, "Event") &&
                      !is(e, "StatusEvent");
        if (add_notice(r, find_desc(n, "SubscriptionId"), events, 0) < 0) return -1;
    }
    return 0;
}

static int parse_sync(xmlNode *c, ews_response *r)
{
    if (is(c, "IncludesLastItemInRange")) {
        char v[16];
        copy_text(c, v, sizeof v);
        r->sync_last = !strcmp(v, "true");
    } else if (is(c, "SyncState")) {
        xmlChar *t = xmlNodeGetContent(c);
        free(r->sync_state);
        r->sync_state = t ? strdup((const char *)t) : NULL;
        xmlFree(t);
        if (!r->sync_state) return -1;
    } else if (is(c, "Changes")) {
        return parse_changes(c, r);
    }
    return 0;
}

static int parse_msg(xmlNode *m, ews_response *r)
{
    if (r->nmsgs >= MAX_MSGS) return 0;
    ews_msg *v = realloc(r->msgs, (r->nmsgs + 1) * sizeof *v);
    if (!v) return -1;
    r->msgs = v;
    ews_msg *msg = &v[r->nmsgs++];
    memset(msg, 0, sizeof *msg);
    char cls[32];
    copy_attr(m, "ResponseClass", cls, sizeof cls);
    msg->ok = strcmp(cls, "Error") != 0;
    for (xmlNode *c = m->children; c; c = c->next) {
        if (is(c, "ResponseCode")) copy_text(c, msg->code, sizeof msg->code);
        else if (is(c, "MessageText")) copy_text(c, msg->text, sizeof msg->text);
        else if (is(c, "RootFolder") && parse_found(find_desc(c, "Items"), r) < 0) return -1;
        else if (is(c, "SubscriptionId"))
            copy_text(c, msg->subscription_id, sizeof msg->subscription_id);
        else if (is(c, "ConnectionStatus"))
            copy_text(c, msg->connection_status, sizeof msg->connection_status);
        else if ((is(c, "Notifications") || is(c, "ErrorSubscriptionIds")) && parse_stream(c, r) < 0)
            return -1;
        else if (parse_sync(c, r) < 0) return -1;
    }
    xmlNode *id = find_desc(m, "ItemId");
    if (id && !find_desc(m, "RootFolder")) {
        copy_attr(id, "Id", msg->item_id, sizeof msg->item_id);
        copy_attr(id, "ChangeKey", msg->change_key, sizeof msg->change_key);
    }
    return 0;
}

int ews_xml_parse(const char *xml, size_t len, ews_response **out, cb_err *err)
{
    *out = NULL;
    cb_err e = {0};
    xmlDoc *doc = xml_in_read(xml, len, &e);
    if (!doc) return cb_errf(err, e.code, "EWS answer: %s", e.msg);
    xmlNode *env = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *body = NULL;
    for (xmlNode *c = env ? env->children : NULL; c; c = c->next)
        if (is(c, "Body")) body = c;
    if (!body) {
        xmlFreeDoc(doc);
        return cb_errf(err, CB_EPARSE, "EWS answer is not a SOAP envelope");
    }
    ews_response *r = calloc(1, sizeof *r);
    int rc = r ? 0 : -1;
    xmlNode *fault = find_desc(body, "Fault");
    if (r && fault) parse_fault(fault, r);
    xmlNode *msgs = r && !fault ? find_desc(body, "ResponseMessages") : NULL;
    for (xmlNode *m = msgs ? msgs->children : NULL; m && !rc; m = m->next)
        if (m->type == XML_ELEMENT_NODE) rc = parse_msg(m, r);
    xmlFreeDoc(doc);
    if (rc) {
        ews_response_free(r);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    *out = r;
    return CB_OK;
}

void ews_response_free(ews_response *r)
{
    if (!r) return;
    free(r->msgs);
    free(r->found);
    free(r->changes);
    free(r->notices);
    free(r->sync_state);
    free(r);
}
