#include "sim_ops.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- the store -------------------------------------------------------- */

typedef struct sim_field {
    char *name;   /* element local name; "ExtendedProperty:<name>" for those */
    char *xml;    /* the element, serialised with t: prefixes */
} sim_field;

/* A deleted or modified occurrence of a recurring master. */
typedef struct sim_occ {
    int index;              /* InstanceIndex */
    int deleted;
    char orig[32], start[32], end[32];
    struct sim_item *own;   /* an exception's own fields (Subject, ...); NULL none */
} sim_occ;

typedef struct sim_item {
    char id[96];
    unsigned ck;
    char *mailbox;
    char folder[16];
    sim_field *f;
    size_t nf;
    sim_occ *occ;
    size_t nocc;
    long long mtime;        /* LastModifiedTime, UTC seconds */
    size_t pos;             /* its index in sim_store.items */
    unsigned long long mhash;   /* of mailbox: a folder listing skips other
                                 * mailboxes' items without reading their name */
} sim_item;

typedef struct sim_change {
    char *mailbox;
    char folder[16];
    char id[96];
    char kind;   /* C, U, D */
} sim_change;

typedef struct sim_sub {
    char id[64];
    char *mailbox;
    char folder[16];
    size_t pos;             /* the next log entry to notify */
    int expired;
    int server;             /* the mailbox server it lives on (sim_route.h) */
} sim_sub;

struct sim_store {
    sim_item **items;
    size_t n, cap;
    sim_change *log;
    size_t nlog, caplog;
    unsigned long next_id;
    unsigned next_ck;
    sim_sub *subs;
    size_t nsubs;
    unsigned long next_sub;
    unsigned sync_gen;      /* bumped to invalidate every SyncState */
    int endless;            /* SyncFolderItems never reaches the end */
    int item_busy;          /* the next N items written get ErrorServerBusy */
    int server;             /* the mailbox server the request reached */
    const sim_zones *tz;    /* for expanding recurrences */
    sim_item **byid;        /* open addressing on ItemId: a lookup costs the same */
    size_t idcap, idused;   /* at 100,000 items as at 10 (issue 16's profile) */
};

#define GONE ((sim_item *)1)   /* a deleted slot of byid */

sim_store *sim_store_new(const sim_zones *tz)
{
    sim_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    /* A restarted Exchange (a new incarnation of the store) never reuses
     * an ItemId or a subscription id, and refuses the SyncStates of the
     * last one: all three start from the start time. */
    unsigned long boot = (unsigned long)time(NULL) & 0xffffff;
    s->next_id = boot << 24 | 1, s->next_sub = boot << 24, s->sync_gen = (unsigned)boot;
    s->next_ck = 1, s->tz = tz;
    return s;
}

static void item_free(sim_item *it);

/* FNV-1a, of ItemIds as they are and of mailbox names as Exchange
 * compares them (fold: without case). */
static unsigned long long fnv(const char *s, int fold)
{
    unsigned long long h = 14695981039346656037ULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        h = (h ^ (unsigned char)(fold ? tolower(*c) : *c)) * 1099511628211ULL;
    return h;
}

/* A series' exceptions and deletions are gone (a new pattern, or the item). */
static void occ_clear(sim_item *it)
{
    for (size_t i = 0; i < it->nocc; i++) item_free(it->occ[i].own);
    free(it->occ);
    it->occ = NULL;
    it->nocc = 0;
}

static void item_free(sim_item *it)
{
    if (!it) return;
    for (size_t i = 0; i < it->nf; i++) {
        free(it->f[i].name);
        free(it->f[i].xml);
    }
    free(it->f);
    occ_clear(it);
    free(it->mailbox);
    free(it);
}

void sim_store_reset(sim_store *s)
{
    for (size_t i = 0; i < s->n; i++) item_free(s->items[i]);
    for (size_t i = 0; i < s->nlog; i++) free(s->log[i].mailbox);
    for (size_t i = 0; i < s->nsubs; i++) free(s->subs[i].mailbox);
    free(s->items);
    free(s->log);
    free(s->subs);
    free(s->byid);
    unsigned long id = s->next_id, sub = s->next_sub;
    unsigned gen = s->sync_gen;
    const sim_zones *tz = s->tz;
    memset(s, 0, sizeof *s);
    s->tz = tz;
    s->next_id = id;   /* ids stay unique across resets */
    s->next_sub = sub;
    s->sync_gen = gen + 1;
    s->next_ck = 1;
}

void sim_store_free(sim_store *s)
{
    if (!s) return;
    sim_store_reset(s);
    free(s);
}

static void normalise_times(sim_store *s, sim_item *it);

static void log_change(sim_store *s, sim_item *it, char kind)
{
    it->mtime = (long long)time(NULL);
    if (s->nlog == s->caplog) {
        size_t cap = s->caplog ? s->caplog * 2 : 256;
        sim_change *v = realloc(s->log, cap * sizeof *v);
        if (!v) abort();
        s->log = v;
        s->caplog = cap;
    }
    sim_change *c = &s->log[s->nlog++];
    c->mailbox = strdup(it->mailbox);
    snprintf(c->folder, sizeof c->folder, "%s", it->folder);
    snprintf(c->id, sizeof c->id, "%s", it->id);
    c->kind = kind;
}

static void id_index(sim_store *s);

/* The slot of id in byid, or of the first free one where it would go. */
static size_t id_slot(const sim_store *s, const char *id, int for_insert)
{
    size_t mask = s->idcap - 1, i = (size_t)fnv(id, 0) & mask, free_at = (size_t)-1;
    for (;; i = (i + 1) & mask) {
        sim_item *it = s->byid[i];
        if (!it) return for_insert && free_at != (size_t)-1 ? free_at : i;
        if (it == GONE) {
            if (free_at == (size_t)-1) free_at = i;
        } else if (!strcmp(it->id, id)) {
            return i;
        }
    }
}

static void id_put(sim_store *s, sim_item *it)
{
    if ((s->idused + 1) * 2 > s->idcap) id_index(s);
    size_t i = id_slot(s, it->id, 1);
    if (!s->byid[i]) s->idused++;
    s->byid[i] = it;
}

static void id_del(sim_store *s, const sim_item *it)
{
    size_t i = s->idcap ? id_slot(s, it->id, 0) : 0;
    if (s->idcap && s->byid[i] == it) s->byid[i] = GONE;
}

/* byid rebuilt from items (grown, tombstones gone). */
static void id_index(sim_store *s)
{
    size_t cap = 64;
    while (cap < (s->n + 1) * 4) cap *= 2;
    free(s->byid);
    if (!(s->byid = calloc(cap, sizeof *s->byid))) abort();
    s->idcap = cap;
    s->idused = 0;
    for (size_t i = 0; i < s->n; i++) {
        s->items[i]->pos = i;
        size_t k = id_slot(s, s->items[i]->id, 1);
        s->byid[k] = s->items[i];
        s->idused++;
    }
}

static sim_item *find_item(sim_store *s, const char *mailbox, const char *id, size_t *idx)
{
    if (!s->idcap) return NULL;
    sim_item *it = s->byid[id_slot(s, id, 0)];
    if (!it || it == GONE || strcmp(it->mailbox, mailbox)) return NULL;
    if (idx) *idx = it->pos;
    return it;
}

/* ---- XML helpers ------------------------------------------------------ */

static xmlNode *child(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name)) return c;
    return NULL;
}

static char *text_of(xmlNode *n)
{
    return n ? (char *)xmlNodeGetContent(n) : NULL;
}

static char *attr(xmlNode *n, const char *name)
{
    return n ? (char *)xmlGetProp(n, BAD_CAST name) : NULL;
}

/* Serialises with canonical t: prefixes whatever prefixes the client used. */
static void ser(xmlNode *n, sim_buf *b)
{
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        sim_buf_xml(b, (const char *)n->content);
        return;
    }
    if (n->type != XML_ELEMENT_NODE) return;
    sim_buf_printf(b, "<t:%s", n->name);
    for (xmlAttr *a = n->properties; a; a = a->next) {
        char *v = (char *)xmlNodeListGetString(n->doc, a->children, 1);
        sim_buf_printf(b, " %s=\"", a->name);
        sim_buf_xml(b, v ? v : "");
        sim_buf_cat(b, "\"");
        xmlFree(v);
    }
    sim_buf_cat(b, ">");
    for (xmlNode *c = n->children; c; c = c->next) ser(c, b);
    sim_buf_printf(b, "</t:%s>", n->name);
}

static char *field_key(xmlNode *el)
{
    char key[300];
    if (!strcmp((const char *)el->name, "ExtendedProperty")) {
        char *pn = attr(child(el, "ExtendedFieldURI"), "PropertyName");
        snprintf(key, sizeof key, "ExtendedProperty:%s", pn ? pn : "?");
        xmlFree(pn);
    } else {
        snprintf(key, sizeof key, "%s", el->name);
    }
    return strdup(key);
}

static void set_field(sim_item *it, xmlNode *el)
{
    char *key = field_key(el);
    sim_buf b;
    sim_buf_init(&b);
    ser(el, &b);
    for (size_t i = 0; i < it->nf; i++)
        if (!strcmp(it->f[i].name, key)) {
            free(key);
            free(it->f[i].xml);
            it->f[i].xml = sim_buf_take(&b);
            return;
        }
    sim_field *v = realloc(it->f, (it->nf + 1) * sizeof *v);
    if (!v) abort();
    it->f = v;
    v[it->nf].name = key;
    v[it->nf].xml = sim_buf_take(&b);
    it->nf++;
}

/* An item created without a UID gets one, as Exchange derives it from the
 * GlobalObjectId it assigns (the PidLidGlobalObjectId byte array in hex,
 * [MS-OXOCAL] 2.2.1.27): every calendar item has one. */
static void give_uid(sim_item *it)
{
    sim_field *v = realloc(it->f, (it->nf + 1) * sizeof *v);
    char x[160];
    if (!v) abort();
    it->f = v;
    snprintf(x, sizeof x, "<t:UID>040000008200E00074C5B7101A82E008000000000000000000000000000000"
             "0000000010000000%.16s</t:UID>", it->id + 9);
    v[it->nf].name = strdup("UID");
    v[it->nf].xml = strdup(x);
    if (!v[it->nf].name || !v[it->nf].xml) abort();
    it->nf++;
}

static void del_field(sim_item *it, const char *key)
{
    for (size_t i = 0; i < it->nf; i++)
        if (!strcmp(it->f[i].name, key)) {
            free(it->f[i].name);
            free(it->f[i].xml);
            it->f[i] = it->f[--it->nf];
            return;
        }
}

/* The text of a stored field ("<t:Start>2024-..</t:Start>" -> "2024-.."). */
static const char *field_xml(const sim_item *it, const char *key)
{
    for (size_t i = 0; i < it->nf; i++)
        if (!strcmp(it->f[i].name, key)) return it->f[i].xml;
    return NULL;
}

static void field_text(const sim_item *it, const char *key, char *out, size_t size)
{
    out[0] = '\0';
    const char *x = field_xml(it, key);
    if (x && !strncmp(key, "ExtendedProperty:", 17)) x = strstr(x, "<t:Value>");
    const char *gt = x ? strchr(x, '>') : NULL;
    const char *lt = gt ? strchr(gt, '<') : NULL;
    if (gt && lt) snprintf(out, size, "%.*s", (int)(lt - gt - 1), gt + 1);
}

/* Schema order of the fields we store, so GetItem answers read naturally. */
static const char *const ORDER[] = {
    "Subject", "Sensitivity", "Body", "Categories", "Importance", "ReminderIsSet",
    "ReminderMinutesBeforeStart", "ExtendedProperty", "UID", "Start", "End",
    "IsAllDayEvent", "LegacyFreeBusyStatus", "Location", "Organizer",
    "RequiredAttendees", "OptionalAttendees", "Resources", "Recurrence",
    "StartTimeZone", "EndTimeZone", NULL};

static void write_occurrence_lists(const sim_item *it, sim_buf *b)
{
    int mod = 0, del = 0;
    for (size_t i = 0; i < it->nocc; i++) mod |= !it->occ[i].deleted, del |= it->occ[i].deleted;
    if (mod) sim_buf_cat(b, "<t:ModifiedOccurrences>");
    for (size_t i = 0; mod && i < it->nocc; i++)
        if (!it->occ[i].deleted)
            sim_buf_printf(b, "<t:Occurrence><t:ItemId Id=\"%s_occ%d\"/><t:Start>%s</t:Start>"
                           "<t:End>%s</t:End><t:OriginalStart>%s</t:OriginalStart></t:Occurrence>",
                        it->id, it->occ[i].index, it->occ[i].start, it->occ[i].end, it->occ[i].orig);
    if (mod) sim_buf_cat(b, "</t:ModifiedOccurrences>");
    if (del) sim_buf_cat(b, "<t:DeletedOccurrences>");
    for (size_t i = 0; del && i < it->nocc; i++)
        if (it->occ[i].deleted)
            sim_buf_printf(b, "<t:DeletedOccurrence><t:Start>%s</t:Start></t:DeletedOccurrence>",
                        it->occ[i].orig);
    if (del) sim_buf_cat(b, "</t:DeletedOccurrences>");
}

static void write_item(const sim_item *it, sim_buf *b)
{
    sim_buf_printf(b, "<t:CalendarItem><t:ItemId Id=\"%s\" ChangeKey=\"DwAAAB%08u\"/>",
                it->id, it->ck);
    sim_buf_printf(b, "<t:ParentFolderId Id=\"%s.%s\"/><t:ItemClass>IPM.Appointment</t:ItemClass>",
                it->folder, it->mailbox);
    for (const char *const *o = ORDER; *o; o++) {
        for (size_t i = 0; i < it->nf; i++)
            if (!strncmp(it->f[i].name, *o, strlen(*o)) &&
                (it->f[i].name[strlen(*o)] == '\0' || it->f[i].name[strlen(*o)] == ':'))
                sim_buf_cat(b, it->f[i].xml);
        if (!strcmp(*o, "Recurrence")) write_occurrence_lists(it, b);
        if (!strcmp(*o, "ExtendedProperty") && it->mtime) {
            char t[32];
            sim_xs_format(it->mtime, t);
            sim_buf_printf(b, "<t:LastModifiedTime>%s</t:LastModifiedTime>", t);
        }
    }
    sim_buf_cat(b, "</t:CalendarItem>");
}

static void write_id(const sim_item *it, sim_buf *b)
{
    sim_buf_printf(b, "<t:CalendarItem><t:ItemId Id=\"%s\" ChangeKey=\"DwAAAB%08u\"/></t:CalendarItem>",
                it->id, it->ck);
}

/* ---- responses -------------------------------------------------------- */

static void msg_error(sim_buf *b, const char *op, const char *code, const char *text)
{
    sim_buf_printf(b, "<m:%sResponseMessage ResponseClass=\"Error\"><m:MessageText>", op);
    sim_buf_xml(b, text);
    sim_buf_printf(b, "</m:MessageText><m:ResponseCode>%s</m:ResponseCode>"
                   "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:%sResponseMessage>",
                code, op);
}

/* Exchange throttles per item inside a 200 answer: this item is not
 * applied, its neighbours are ("EWS throttling in Exchange", learn.microsoft
 * .com/exchange/client-developer/exchange-web-services/ews-throttling-in-
 * exchange; ErrorServerBusy under HTTP 200 as clients meet it, see
 * ../shared/research/ews-production-gaps.md [S4][S5][S8]). */
static int busy_item(sim_store *s, sim_buf *b, const char *op)
{
    if (s->item_busy <= 0) return 0;
    s->item_busy--;
    msg_error(b, op, "ErrorServerBusy", "The server cannot service this request right now. "
              "Try again later.");
    return 1;
}

static void open_response(sim_buf *b, const char *op)
{
    sim_buf_printf(b, "<m:%sResponse xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" "
                   "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
                   "<m:ResponseMessages>", op);
}

static void close_response(sim_buf *b, const char *op)
{
    sim_buf_printf(b, "</m:ResponseMessages></m:%sResponse>", op);
}

static const char *folder_of(xmlNode *parent_ids)
{
    xmlNode *d = child(parent_ids, "DistinguishedFolderId");
    char *id = attr(d, "Id");
    const char *f = "calendar";
    if (id && !strcmp(id, "inbox")) f = "inbox";
    if (id && !strcmp(id, "deleteditems")) f = "deleteditems";
    xmlFree(id);
    return f;
}

/* ---- operations ------------------------------------------------------- */

static void op_create(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    char *smi = attr(op, "SendMeetingInvitations");
    const char *folder = folder_of(child(op, "SavedItemFolderId"));
    open_response(b, "CreateItem");
    for (xmlNode *c = child(op, "Items") ? child(op, "Items")->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (strcmp((const char *)c->name, "CalendarItem")) {
            msg_error(b, "CreateItem", "ErrorInvalidItemForOperation",
                      "The simulator only creates calendar items.");
            continue;
        }
        if (!smi) {
            msg_error(b, "CreateItem", "ErrorSendMeetingInvitationsRequired",
                      "SendMeetingInvitations attribute is required for calendar items.");
            continue;
        }
        if (busy_item(s, b, "CreateItem")) continue;
        sim_item *it = calloc(1, sizeof *it);
        if (!it) abort();
        snprintf(it->id, sizeof it->id, "AAMkAGsim%012lxAAA=", s->next_id++);
        it->ck = s->next_ck++;
        it->mailbox = strdup(mailbox);
        it->mhash = fnv(mailbox, 1);
        snprintf(it->folder, sizeof it->folder, "%s", folder);
        for (xmlNode *f = c->children; f; f = f->next)
            if (f->type == XML_ELEMENT_NODE) set_field(it, f);
        if (!field_xml(it, "UID")) give_uid(it);
        normalise_times(s, it);
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 1024;
            s->items = realloc(s->items, s->cap * sizeof *s->items);
            if (!s->items) abort();
        }
        it->pos = s->n;
        s->items[s->n++] = it;
        id_put(s, it);
        log_change(s, it, 'C');
        sim_buf_cat(b, "<m:CreateItemResponseMessage ResponseClass=\"Success\">"
                    "<m:ResponseCode>NoError</m:ResponseCode><m:Items>");
        write_id(it, b);
        sim_buf_cat(b, "</m:Items></m:CreateItemResponseMessage>");
    }
    close_response(b, "CreateItem");
    xmlFree(smi);
}

/* The modified occurrence an ItemId of a master's ModifiedOccurrences
 * names ("<master>_occ<index>"), or NULL. */
static const sim_occ *exception_of(sim_store *s, const char *mailbox, const char *id,
                                   const sim_item **master)
{
    const char *at = id ? strstr(id, "_occ") : NULL;
    while (at && strstr(at + 4, "_occ")) at = strstr(at + 4, "_occ");
    if (!at || at - id >= 96) return NULL;
    char mid[96];
    snprintf(mid, sizeof mid, "%.*s", (int)(at - id), id);
    const sim_item *m = find_item(s, mailbox, mid, NULL);
    int index = atoi(at + 4);
    for (size_t i = 0; m && i < m->nocc; i++)
        if (m->occ[i].index == index && !m->occ[i].deleted) {
            *master = m;
            return &m->occ[i];
        }
    return NULL;
}

/* An exception as GetItem answers it: the master's fields, its own over
 * them, its times, CalendarItemType Exception and RecurrenceId. */
static void write_exception(const sim_item *m, const sim_occ *o, sim_buf *b)
{
    sim_buf_printf(b, "<t:CalendarItem><t:ItemId Id=\"%s_occ%d\" ChangeKey=\"DwAAAB%08u\"/>",
                   m->id, o->index, m->ck);
    sim_buf_printf(b, "<t:ParentFolderId Id=\"%s.%s\"/><t:ItemClass>IPM.Appointment</t:ItemClass>",
                   m->folder, m->mailbox);
    for (const char *const *k = ORDER; *k; k++) {
        if (!strcmp(*k, "Start"))
            sim_buf_printf(b, "<t:RecurrenceId>%s</t:RecurrenceId><t:Start>%s</t:Start>", o->orig,
                           o->start);
        else if (!strcmp(*k, "End"))
            sim_buf_printf(b, "<t:End>%s</t:End>", o->end);
        if (!strcmp(*k, "Start") || !strcmp(*k, "End") || !strcmp(*k, "Recurrence")) continue;
        const sim_item *from[2] = {o->own, m};
        for (int w = 0; w < 2; w++) {
            int any = 0;
            for (size_t i = 0; from[w] && i < from[w]->nf; i++)
                if (!strncmp(from[w]->f[i].name, *k, strlen(*k)) &&
                    (from[w]->f[i].name[strlen(*k)] == '\0' || from[w]->f[i].name[strlen(*k)] == ':'))
                    sim_buf_cat(b, from[w]->f[i].xml), any = 1;
            if (any) break;
        }
        if (!strcmp(*k, "LegacyFreeBusyStatus"))
            sim_buf_cat(b, "<t:CalendarItemType>Exception</t:CalendarItemType>");
    }
    sim_buf_cat(b, "</t:CalendarItem>");
}

static void op_get(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    open_response(b, "GetItem");
    for (xmlNode *c = child(op, "ItemIds") ? child(op, "ItemIds")->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        char *id = attr(c, "Id");
        sim_item *it = id ? find_item(s, mailbox, id, NULL) : NULL;
        const sim_item *m = NULL;
        const sim_occ *o = it ? NULL : exception_of(s, mailbox, id, &m);
        xmlFree(id);
        if (o) {
            sim_buf_cat(b, "<m:GetItemResponseMessage ResponseClass=\"Success\">"
                        "<m:ResponseCode>NoError</m:ResponseCode><m:Items>");
            write_exception(m, o, b);
            sim_buf_cat(b, "</m:Items></m:GetItemResponseMessage>");
            continue;
        }
        if (!it) {
            msg_error(b, "GetItem", "ErrorItemNotFound",
                      "The specified object was not found in the store.");
            continue;
        }
        sim_buf_cat(b, "<m:GetItemResponseMessage ResponseClass=\"Success\">"
                    "<m:ResponseCode>NoError</m:ResponseCode><m:Items>");
        write_item(it, b);
        sim_buf_cat(b, "</m:Items></m:GetItemResponseMessage>");
    }
    close_response(b, "GetItem");
}

static char *path_key(xmlNode *path)
{
    char key[300];
    char *v = attr(path, "FieldURI");
    if (v) {
        const char *colon = strchr(v, ':');
        snprintf(key, sizeof key, "%s", colon ? colon + 1 : v);
    } else {
        v = attr(path, "PropertyName");
        snprintf(key, sizeof key, "ExtendedProperty:%s", v ? v : "?");
    }
    xmlFree(v);
    return strdup(key);
}

static int sets_pattern(xmlNode *updates)
{
    for (xmlNode *u = updates ? updates->children : NULL; u; u = u->next) {
        xmlNode *path = child(u, "FieldURI");
        char *uri = attr(path, "FieldURI");
        int hit = uri && (!strcmp(uri, "calendar:Recurrence") || !strcmp(uri, "calendar:Start"));
        xmlFree(uri);
        if (hit) return 1;
    }
    return 0;
}

static void apply_updates(sim_item *it, xmlNode *updates)
{
    for (xmlNode *u = updates ? updates->children : NULL; u; u = u->next) {
        if (u->type != XML_ELEMENT_NODE) continue;
        xmlNode *path = NULL, *value = NULL;
        for (xmlNode *c = u->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE) continue;
            if (!strcmp((const char *)c->name, "CalendarItem")) value = c;
            else path = c;
        }
        char *key = path ? path_key(path) : NULL;
        if (key && !strcmp((const char *)u->name, "DeleteItemField")) del_field(it, key);
        else if (value)
            for (xmlNode *f = value->children; f; f = f->next)
                if (f->type == XML_ELEMENT_NODE) set_field(it, f);
        free(key);
    }
}

/* ---- occurrences ------------------------------------------------------ */

static sim_times times_of(const sim_item *it)
{
    return (sim_times){field_xml(it, "Start"), field_xml(it, "End"), field_xml(it, "Recurrence"),
                       field_xml(it, "StartTimeZone"), field_xml(it, "IsAllDayEvent")};
}

/* Exchange keeps times in UTC and answers them so, whatever the client
 * sent: a wall time is read in the item's StartTimeZone ("Time zones and
 * EWS in Exchange"). Clients must read them back in that zone. */
static void normalise_times(sim_store *s, sim_item *it)
{
    static const char *const F[] = {"Start", "End"};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < it->nf; i++) {
            long long t;
            if (strcmp(it->f[i].name, F[k]) ||
                sim_recur_utc(s->tz, field_xml(it, "StartTimeZone"), it->f[i].xml, &t))
                continue;
            char v[32];
            sim_buf b;
            sim_xs_format(t, v);
            sim_buf_init(&b);
            sim_buf_printf(&b, "<t:%s>%s</t:%s>", F[k], v, F[k]);
            free(it->f[i].xml);
            it->f[i].xml = sim_buf_take(&b);
        }
}

/* The start and end of occurrence index (1-based) of a master's pattern,
 * expanded as Exchange does; 0 when the index is out of range. */
static int pattern_occurrence(sim_store *s, const sim_item *master, int index, long long *start,
                              long long *end)
{
    sim_times t = times_of(master);
    if (index <= 0 || !t.recurrence) return 0;
    sim_span *v = calloc((size_t)index, sizeof *v);
    if (!v) abort();
    size_t n = sim_recur_expand(s->tz, &t, 253402300799LL, (size_t)index, v);
    int found = n == (size_t)index;
    if (found) *start = v[index - 1].start, *end = v[index - 1].end;
    free(v);
    return found;
}

/* The master an OccurrenceItemId names, and the occurrence's record
 * (created on first use); NULL when either does not exist. */
static sim_occ *occurrence(sim_store *s, const char *mailbox, xmlNode *oid, sim_item **master)
{
    char *mid = attr(oid, "RecurringMasterId"), *ix = attr(oid, "InstanceIndex");
    sim_item *m = mid ? find_item(s, mailbox, mid, NULL) : NULL;
    int index = ix ? atoi(ix) : 0;
    xmlFree(mid);
    xmlFree(ix);
    long long st, en;
    if (!m || !pattern_occurrence(s, m, index, &st, &en)) return NULL;
    *master = m;
    for (size_t i = 0; i < m->nocc; i++)
        if (m->occ[i].index == index) return &m->occ[i];
    sim_occ *v = realloc(m->occ, (m->nocc + 1) * sizeof *v);
    if (!v) abort();
    m->occ = v;
    sim_occ *o = &v[m->nocc++];
    memset(o, 0, sizeof *o);
    o->index = index;
    sim_xs_format(st, o->orig);
    sim_xs_format(st, o->start);
    sim_xs_format(en, o->end);
    return o;
}

/* Start and End set on an occurrence move it; every other field set makes
 * it an exception with fields of its own, which GetItem of its ItemId
 * answers (the master's lists carry only its times). */
static void apply_occurrence_updates(sim_occ *o, xmlNode *updates)
{
    if (!o->own && !(o->own = calloc(1, sizeof *o->own))) abort();
    apply_updates(o->own, updates);
    for (xmlNode *u = updates ? updates->children : NULL; u; u = u->next) {
        xmlNode *value = child(u, "CalendarItem");
        for (xmlNode *f = value ? value->children : NULL; f; f = f->next) {
            char *t = f->type == XML_ELEMENT_NODE ? text_of(f) : NULL;
            long long v;
            if (t && sim_xs_parse(t, &v) == 0) {
                if (!strcmp((const char *)f->name, "Start")) sim_xs_format(v, o->start);
                if (!strcmp((const char *)f->name, "End")) sim_xs_format(v, o->end);
            }
            xmlFree(t);
        }
    }
}

/* The start an occurrence has now (moved, or the pattern's); 0 when the
 * pattern has no such occurrence or it is deleted. */
static int current_start(sim_store *s, const sim_item *m, int index, long long *start)
{
    for (size_t i = 0; i < m->nocc; i++)
        if (m->occ[i].index == index)
            return !m->occ[i].deleted && sim_xs_parse(m->occ[i].start, start) == 0;
    long long end;
    return pattern_occurrence(s, m, index, start, &end);
}

/* Exchange keeps occurrences in order: one may not be moved onto or past
 * the day of its neighbour ("ErrorOccurrenceCrossingBoundary",
 * ResponseCodeType; Exchange compares calendar days). */
static int crosses_boundary(sim_store *s, const sim_item *m, const sim_occ *o, xmlNode *updates)
{
    long long to = 0, prev, next;
    for (xmlNode *u = updates ? updates->children : NULL; u; u = u->next) {
        xmlNode *f = child(child(u, "CalendarItem"), "Start");
        char *t = f ? text_of(f) : NULL;
        if (t && sim_xs_parse(t, &to) != 0) to = 0;
        xmlFree(t);
    }
    if (!to) return 0;
    long long day = to / 86400;
    return (current_start(s, m, o->index - 1, &prev) && prev / 86400 >= day) ||
           (current_start(s, m, o->index + 1, &next) && next / 86400 <= day);
}

static void occurrence_error(sim_buf *b, const char *op)
{
    msg_error(b, op, "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
              "Occurrence index is out of recurrence range.");
}

static void op_update(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    char *smi = attr(op, "SendMeetingInvitationsOrCancellations");
    char *cr = attr(op, "ConflictResolution");
    open_response(b, "UpdateItem");
    for (xmlNode *c = child(op, "ItemChanges") ? child(op, "ItemChanges")->children : NULL;
         c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        xmlNode *idn = child(c, "ItemId");
        if (child(c, "OccurrenceItemId")) {
            sim_item *m = NULL;
            sim_occ *o = occurrence(s, mailbox, child(c, "OccurrenceItemId"), &m);
            if (!o) {
                occurrence_error(b, "UpdateItem");
                continue;
            }
            if (o->deleted) {   /* a deleted occurrence cannot be reached, only re-created
                                 * by setting the pattern again (ResponseCodeType) */
                msg_error(b, "UpdateItem", "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                          "Occurrence was deleted from the recurrence.");
                continue;
            }
            if (crosses_boundary(s, m, o, child(c, "Updates"))) {
                msg_error(b, "UpdateItem", "ErrorOccurrenceCrossingBoundary",
                          "An occurrence cannot be moved to or past the date of an adjacent "
                          "occurrence.");
                continue;
            }
            apply_occurrence_updates(o, child(c, "Updates"));
            m->ck = s->next_ck++;
            log_change(s, m, 'U');
            sim_buf_printf(b, "<m:UpdateItemResponseMessage ResponseClass=\"Success\"><m:ResponseCode>"
                           "NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id=\"%s_occ%d\" "
                           "ChangeKey=\"DwAAAB%08u\"/></t:CalendarItem></m:Items><m:ConflictResults>"
                           "<t:Count>0</t:Count></m:ConflictResults></m:UpdateItemResponseMessage>",
                        m->id, o->index, m->ck);
            continue;
        }
        if (busy_item(s, b, "UpdateItem")) continue;
        char *id = attr(idn, "Id"), *ck = attr(idn, "ChangeKey");
        sim_item *it = id ? find_item(s, mailbox, id, NULL) : NULL;
        char cur[32];
        if (it) snprintf(cur, sizeof cur, "DwAAAB%08u", it->ck);
        if (!it)
            msg_error(b, "UpdateItem", "ErrorItemNotFound",
                      "The specified object was not found in the store.");
        else if (!smi)
            msg_error(b, "UpdateItem", "ErrorSendMeetingInvitationsOrCancellationsRequired",
                      "SendMeetingInvitationsOrCancellations attribute is required for calendar items.");
        else if (ck && cr && !strcmp(cr, "NeverOverwrite") && strcmp(ck, cur))
            msg_error(b, "UpdateItem", "ErrorIrresolvableConflict",
                      "The send or update operation could not be performed because the change key "
                      "passed in the request does not match the current change key for the item.");
        else {
            apply_updates(it, child(c, "Updates"));
            normalise_times(s, it);
            /* A new pattern or start drops the exceptions, as in Exchange. */
            if (sets_pattern(child(c, "Updates"))) occ_clear(it);
            it->ck = s->next_ck++;
            log_change(s, it, 'U');
            sim_buf_cat(b, "<m:UpdateItemResponseMessage ResponseClass=\"Success\">"
                        "<m:ResponseCode>NoError</m:ResponseCode><m:Items>");
            write_id(it, b);
            sim_buf_cat(b, "</m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>"
                        "</m:UpdateItemResponseMessage>");
        }
        xmlFree(id);
        xmlFree(ck);
    }
    close_response(b, "UpdateItem");
    xmlFree(smi);
    xmlFree(cr);
}

static void op_delete(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    char *smc = attr(op, "SendMeetingCancellations");
    char *type = attr(op, "DeleteType");
    open_response(b, "DeleteItem");
    for (xmlNode *c = child(op, "ItemIds") ? child(op, "ItemIds")->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (!strcmp((const char *)c->name, "OccurrenceItemId")) {
            sim_item *m = NULL;
            sim_occ *o = occurrence(s, mailbox, c, &m);
            if (!o) {
                occurrence_error(b, "DeleteItem");
                continue;
            }
            if (o->deleted) {   /* ResponseCodeType, EWS reference */
                msg_error(b, "DeleteItem", "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                          "Occurrence was deleted from the recurrence.");
                continue;
            }
            o->deleted = 1;
            m->ck = s->next_ck++;
            log_change(s, m, 'U');
            sim_buf_cat(b, "<m:DeleteItemResponseMessage ResponseClass=\"Success\">"
                        "<m:ResponseCode>NoError</m:ResponseCode></m:DeleteItemResponseMessage>");
            continue;
        }
        if (busy_item(s, b, "DeleteItem")) continue;
        char *id = attr(c, "Id");
        size_t idx;
        sim_item *it = id ? find_item(s, mailbox, id, &idx) : NULL;
        xmlFree(id);
        if (!it) {
            msg_error(b, "DeleteItem", "ErrorItemNotFound",
                      "The specified object was not found in the store.");
            continue;
        }
        if (!smc) {
            msg_error(b, "DeleteItem", "ErrorSendMeetingCancellationsRequired",
                      "SendMeetingCancellations attribute is required for calendar items.");
            continue;
        }
        log_change(s, it, 'D');
        if (type && !strcmp(type, "MoveToDeletedItems")) {
            snprintf(it->folder, sizeof it->folder, "deleteditems");
            log_change(s, it, 'C');
        } else {
            id_del(s, it);
            item_free(it);
            s->items[idx] = s->items[--s->n];
            if (idx < s->n) s->items[idx]->pos = idx;
        }
        sim_buf_cat(b, "<m:DeleteItemResponseMessage ResponseClass=\"Success\">"
                    "<m:ResponseCode>NoError</m:ResponseCode></m:DeleteItemResponseMessage>");
    }
    close_response(b, "DeleteItem");
    xmlFree(smc);
    xmlFree(type);
}

/* Restrictions: IsEqualTo / IsNotEqualTo on a path and a constant, Exists,
 * And, Or, Not — the forms a sync client uses. */
static int eval(const sim_item *it, xmlNode *r)
{
    if (!r) return 1;
    const char *n = (const char *)r->name;
    if (!strcmp(n, "And") || !strcmp(n, "Or")) {
        int and = !strcmp(n, "And");
        for (xmlNode *c = r->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE) continue;
            if (eval(it, c) != and) return !and;
        }
        return and;
    }
    xmlNode *first = r->children;
    while (first && first->type != XML_ELEMENT_NODE) first = first->next;
    if (!strcmp(n, "Not")) return !eval(it, first);
    if (!first) return 0;
    char *key = path_key(first);
    char have[1024];
    field_text(it, key, have, sizeof have);
    int exists = 0;
    for (size_t i = 0; i < it->nf; i++) exists |= !strcmp(it->f[i].name, key);
    free(key);
    if (!strcmp(n, "Exists")) return exists;
    char *want = attr(child(child(r, "FieldURIOrConstant"), "Constant"), "Value");
    int eq = want && exists && !strcmp(have, want);
    xmlFree(want);
    if (!strcmp(n, "IsEqualTo")) return eq;
    if (!strcmp(n, "IsNotEqualTo")) return !eq;
    return 0;
}

static int in_view(const sim_item *it, xmlNode *view)
{
    if (!view) return 1;
    char *vs = attr(view, "StartDate"), *ve = attr(view, "EndDate");
    char st[64], en[64];
    field_text(it, "Start", st, sizeof st);
    field_text(it, "End", en, sizeof en);
    int recurring = 0;
    for (size_t i = 0; i < it->nf; i++) recurring |= !strcmp(it->f[i].name, "Recurrence");
    /* Compares UTC "Z" strings; a series is shown if it started before the
     * window ends (occurrences are not expanded). */
    int ok = vs && ve && strcmp(st, ve) < 0 && (recurring || strcmp(en, vs) > 0);
    xmlFree(vs);
    xmlFree(ve);
    return ok;
}

static void op_find(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    const char *folder = folder_of(child(op, "ParentFolderIds"));
    xmlNode *view = child(op, "CalendarView");
    xmlNode *restr = child(op, "Restriction");
    xmlNode *r = restr ? restr->children : NULL;
    while (r && r->type != XML_ELEMENT_NODE) r = r->next;
    open_response(b, "FindItem");
    sim_buf matches;
    sim_buf_init(&matches);
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        sim_item *it = s->items[i];
        if (strcmp(it->mailbox, mailbox) || strcmp(it->folder, folder)) continue;
        if (!in_view(it, view) || !eval(it, r)) continue;
        write_item(it, &matches);
        n++;
    }
    sim_buf_printf(b, "<m:FindItemResponseMessage ResponseClass=\"Success\">"
                   "<m:ResponseCode>NoError</m:ResponseCode>"
                   "<m:RootFolder TotalItemsInView=\"%zu\" IncludesLastItemInRange=\"true\">"
                   "<t:Items>", n);
    if (matches.s) sim_buf_cat(b, matches.s);
    sim_buf_cat(b, "</t:Items></m:RootFolder></m:FindItemResponseMessage>");
    sim_buf_free(&matches);
    close_response(b, "FindItem");
}

static void op_get_folder(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    open_response(b, "GetFolder");
    for (xmlNode *c = child(op, "FolderIds") ? child(op, "FolderIds")->children : NULL;
         c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        char *id = attr(c, "Id");
        const char *f = id && !strcmp(id, "inbox") ? "inbox"
                        : id && !strcmp(id, "deleteditems") ? "deleteditems" : "calendar";
        size_t count = 0;
        for (size_t i = 0; i < s->n; i++)
            count += !strcmp(s->items[i]->mailbox, mailbox) && !strcmp(s->items[i]->folder, f);
        int cal = !strcmp(f, "calendar");
        sim_buf_printf(b, "<m:GetFolderResponseMessage ResponseClass=\"Success\">"
                       "<m:ResponseCode>NoError</m:ResponseCode><m:Folders>"
                       "<t:%s><t:FolderId Id=\"%s.", cal ? "CalendarFolder" : "Folder", f);
        sim_buf_xml(b, mailbox);
        sim_buf_printf(b, "\" ChangeKey=\"AQAAAA==\"/><t:FolderClass>%s</t:FolderClass>"
                       "<t:DisplayName>%s</t:DisplayName><t:TotalCount>%zu</t:TotalCount>"
                       "<t:ChildFolderCount>0</t:ChildFolderCount></t:%s>"
                       "</m:Folders></m:GetFolderResponseMessage>",
                    cal ? "IPF.Appointment" : "IPF.Note",
                    cal ? "Calendar" : !strcmp(f, "inbox") ? "Inbox" : "Deleted Items",
                    count, cal ? "CalendarFolder" : "Folder");
        xmlFree(id);
    }
    close_response(b, "GetFolder");
}


/* SyncState is "sim:<generation>:<log position>" (replaying the log from
 * there) or, while a first sync is listing, "init:<generation>:<log
 * position>:<items listed>"; base64 so it looks as opaque as Exchange's. A
 * new generation (sim_store_invalidate_sync) makes every earlier state
 * ErrorInvalidSyncStateData. */
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64(const char *in, sim_buf *b)
{
    size_t n = strlen(in);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        char o[5] = {B64[v >> 18 & 63], B64[v >> 12 & 63],
                     i + 1 < n ? B64[v >> 6 & 63] : '=', i + 2 < n ? B64[v & 63] : '=', 0};
        sim_buf_cat(b, o);
    }
}

static void unb64(const char *in, char *out, size_t size)
{
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (const char *c = in; *c && *c != '=' && o < size - 1; c++) {
        const char *p = strchr(B64, *c);
        if (!p) break;
        v = v << 6 | (unsigned)(p - B64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(v >> bits & 0xff);
        }
    }
    out[o] = '\0';
}

/* Where a SyncState points: the log position to replay from, or (a first
 * sync still listing) the log position it started at and how many current
 * items it has listed. 0 when it is not one of this generation's. */
static int parse_state(const char *state, unsigned gen, long *pos, long *listed)
{
    char text[64];
    unsigned g;
    unb64(state, text, sizeof text);
    *listed = -1;
    if (sscanf(text, "init:%u:%ld:%ld", &g, pos, listed) == 3) return g == gen;
    return sscanf(text, "sim:%u:%ld", &g, pos) == 2 && g == gen;
}

/* A first sync (no SyncState) lists the items there are now, as Creates,
 * never a Delete: what was deleted before is not reported ("Synchronize
 * items by using EWS in Exchange", learn.microsoft.com/exchange/client-
 * developer/exchange-web-services/how-to-synchronize-items-by-using-ews-in-
 * exchange; research gap 10). Changes made meanwhile are replayed from the
 * log afterwards. */
static void list_current(sim_store *s, const char *mailbox, const char *folder, long pos0,
                         long listed, long max, sim_buf *b)
{
    sim_buf ch;
    sim_buf_init(&ch);
    long more = 0, n = 0;   /* more: every item of the folder */
    unsigned long long h = fnv(mailbox, 1);
    for (size_t i = 0; i < s->n; i++) {
        sim_item *it = s->items[i];
        if (it->mhash != h || strcmp(it->mailbox, mailbox) || strcmp(it->folder, folder) ||
            more++ < listed || n >= max)
            continue;
        sim_buf_cat(&ch, "<t:Create>");
        write_id(it, &ch);
        sim_buf_cat(&ch, "</t:Create>");
        n++;
    }
    char st[64];
    if (listed + n < more) snprintf(st, sizeof st, "init:%u:%ld:%ld", s->sync_gen, pos0, listed + n);
    else snprintf(st, sizeof st, "sim:%u:%ld", s->sync_gen, pos0);
    sim_buf_cat(b, "<m:SyncFolderItemsResponseMessage ResponseClass=\"Success\">"
                "<m:ResponseCode>NoError</m:ResponseCode><m:SyncState>");
    b64(st, b);
    sim_buf_printf(b, "</m:SyncState><m:IncludesLastItemInRange>false</m:IncludesLastItemInRange>"
                   "<m:Changes>%s</m:Changes></m:SyncFolderItemsResponseMessage>", ch.s ? ch.s : "");
    sim_buf_free(&ch);
}

static void op_sync(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    const char *folder = folder_of(child(op, "SyncFolderId"));
    char *state = text_of(child(op, "SyncState"));
    char *maxs = text_of(child(op, "MaxChangesReturned"));
    long from = (long)s->nlog, listed = 0;
    int valid = !(state && *state) || parse_state(state, s->sync_gen, &from, &listed);
    long max = maxs ? atol(maxs) : 512;
    int first = !(state && *state);
    xmlFree(state);
    xmlFree(maxs);
    open_response(b, "SyncFolderItems");
    if (!valid || from < 0 || (size_t)from > s->nlog) {
        msg_error(b, "SyncFolderItems", "ErrorInvalidSyncStateData",
                  "Synchronization state data is corrupt or otherwise invalid.");
        close_response(b, "SyncFolderItems");
        return;
    }
    if (first || listed >= 0) {
        list_current(s, mailbox, folder, from, first ? 0 : listed, max, b);
        close_response(b, "SyncFolderItems");
        return;
    }
    sim_buf ch;
    sim_buf_init(&ch);
    long n = 0;
    size_t pos = (size_t)from;
    for (; pos < s->nlog && n < max; pos++) {
        sim_change *c = &s->log[pos];
        if (strcmp(c->mailbox, mailbox) || strcmp(c->folder, folder)) continue;
        sim_item *it = find_item(s, mailbox, c->id, NULL);
        if (c->kind == 'D' || !it || strcmp(it->folder, folder))
            sim_buf_printf(&ch, "<t:Delete><t:ItemId Id=\"%s\"/></t:Delete>", c->id);
        else {
            sim_buf_cat(&ch, c->kind == 'C' ? "<t:Create>" : "<t:Update>");
            write_id(it, &ch);
            sim_buf_cat(&ch, c->kind == 'C' ? "</t:Create>" : "</t:Update>");
        }
        n++;
    }
    char st[64];
    /* endless=2: a fresh state every time as well, so only a page cap ends it. */
    if (s->endless > 1) snprintf(st, sizeof st, "sim:%u:%zu:%d", s->sync_gen, pos, s->endless++);
    else snprintf(st, sizeof st, "sim:%u:%zu", s->sync_gen, pos);
    sim_buf_cat(b, "<m:SyncFolderItemsResponseMessage ResponseClass=\"Success\">"
                "<m:ResponseCode>NoError</m:ResponseCode><m:SyncState>");
    b64(st, b);
    sim_buf_printf(b, "</m:SyncState><m:IncludesLastItemInRange>%s</m:IncludesLastItemInRange>"
                   "<m:Changes>", pos >= s->nlog && !s->endless ? "true" : "false");
    if (ch.s) sim_buf_cat(b, ch.s);
    sim_buf_cat(b, "</m:Changes></m:SyncFolderItemsResponseMessage>");
    sim_buf_free(&ch);
    close_response(b, "SyncFolderItems");
}

/* ---- notifications ---------------------------------------------------- */

static void op_subscribe(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    xmlNode *req = child(op, "StreamingSubscriptionRequest");
    open_response(b, "Subscribe");
    if (!req) {
        msg_error(b, "Subscribe", "ErrorInvalidSubscriptionRequest",
                  "The simulator only offers streaming subscriptions.");
        close_response(b, "Subscribe");
        return;
    }
    size_t live = 0;
    for (size_t i = 0; i < s->nsubs; i++)
        live += !s->subs[i].expired && !strcmp(s->subs[i].mailbox, mailbox);
    if (live >= SIM_MAX_SUBSCRIPTIONS) {
        /* EWSMaxSubscriptions, charged to the target mailbox ("EWS
         * throttling in Exchange"). */
        msg_error(b, "Subscribe", "ErrorExceededSubscriptionCount", "You have exceeded the "
                  "maximum number of subscriptions for this mailbox.");
        close_response(b, "Subscribe");
        return;
    }
    sim_sub *v = realloc(s->subs, (s->nsubs + 1) * sizeof *v);
    if (!v) abort();
    s->subs = v;
    sim_sub *u = &v[s->nsubs++];
    memset(u, 0, sizeof *u);
    /* Like Exchange's: opaque base64 naming the server and a GUID. */
    char raw[64];
    snprintf(raw, sizeof raw, "ewssim.local:%012lx", ++s->next_sub);
    sim_buf id;
    sim_buf_init(&id);
    b64(raw, &id);
    snprintf(u->id, sizeof u->id, "%s", id.s);
    sim_buf_free(&id);
    u->mailbox = strdup(mailbox);
    snprintf(u->folder, sizeof u->folder, "%s", folder_of(child(req, "FolderIds")));
    u->pos = s->nlog;
    u->server = s->server;
    sim_buf_printf(b, "<m:SubscribeResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError"
                   "</m:ResponseCode><m:SubscriptionId>%s</m:SubscriptionId>"
                   "</m:SubscribeResponseMessage>", u->id);
    close_response(b, "Subscribe");
}

static sim_sub *find_sub(sim_store *s, const char *id)
{
    for (size_t i = 0; id && i < s->nsubs; i++)
        if (!strcmp(s->subs[i].id, id)) return &s->subs[i];
    return NULL;
}

static void op_unsubscribe(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    (void)mailbox;
    char *id = text_of(child(op, "SubscriptionId"));
    sim_sub *u = find_sub(s, id);
    xmlFree(id);
    open_response(b, "Unsubscribe");
    if (!u || u->expired || u->server != s->server) {   /* another server knows nothing of it */
        msg_error(b, "Unsubscribe", "ErrorSubscriptionNotFound", "The specified subscription "
                  "was not found.");
    } else {
        u->expired = 1;
        sim_buf_cat(b, "<m:UnsubscribeResponseMessage ResponseClass=\"Success\"><m:ResponseCode>"
                    "NoError</m:ResponseCode></m:UnsubscribeResponseMessage>");
    }
    close_response(b, "Unsubscribe");
}

int sim_store_sub_server(sim_store *s, const char *id)
{
    sim_sub *u = find_sub(s, id);
    return u && !u->expired ? u->server : -1;
}

void sim_store_set_server(sim_store *s, int server)
{
    s->server = server;
}

size_t sim_store_sub_events(sim_store *s, const char *id, sim_buf *out)
{
    sim_sub *u = find_sub(s, id);
    if (!u || u->expired) return 0;
    size_t n = 0;
    for (; u->pos < s->nlog; u->pos++) {
        sim_change *c = &s->log[u->pos];
        if (strcmp(c->mailbox, u->mailbox) || strcmp(c->folder, u->folder)) continue;
        const char *ev = c->kind == 'C' ? "CreatedEvent" : c->kind == 'U' ? "ModifiedEvent"
                                                                          : "DeletedEvent";
        if (!n) sim_buf_printf(out, "<m:Notification><t:SubscriptionId>%s</t:SubscriptionId>", u->id);
        sim_buf_printf(out, "<t:%s><t:TimeStamp>2026-01-01T00:00:00Z</t:TimeStamp>"
                         "<t:ItemId Id=\"%s\"/><t:ParentFolderId Id=\"%s.%s\"/></t:%s>",
                    ev, c->id, c->folder, c->mailbox, ev);
        n++;
    }
    if (n) sim_buf_cat(out, "</m:Notification>");
    return n;
}

void sim_store_expire_subs(sim_store *s)
{
    for (size_t i = 0; i < s->nsubs; i++) s->subs[i].expired = 1;
}

void sim_store_set_item_busy(sim_store *s, int n)
{
    s->item_busy = n;
}

void sim_store_set_endless(sim_store *s, int on)
{
    s->endless = on;
}

static int in_calendar_of(const sim_item *it, const char *mailbox)
{
    return !strcasecmp(it->mailbox, mailbox) && !strcmp(it->folder, "calendar");
}

void sim_store_vanish(sim_store *s, const char *mailbox)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        sim_item *it = s->items[i];
        if (in_calendar_of(it, mailbox)) item_free(it);
        else s->items[k++] = it;
    }
    s->n = k;
    id_index(s);
}

static void touch(sim_store *s, sim_item *it)
{
    it->ck = s->next_ck++;
    log_change(s, it, 'U');
}

void sim_store_touch(sim_store *s, const char *mailbox)
{
    for (size_t i = 0; i < s->n; i++)
        if (in_calendar_of(s->items[i], mailbox)) touch(s, s->items[i]);
}

int sim_store_touch_one(sim_store *s, const char *mailbox, unsigned pick)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) n += in_calendar_of(s->items[i], mailbox);
    for (size_t i = 0, k = 0; n && i < s->n; i++)
        if (in_calendar_of(s->items[i], mailbox) && k++ == pick % n) {
            touch(s, s->items[i]);
            return 1;
        }
    return 0;
}

void sim_store_invalidate_sync(sim_store *s)
{
    s->sync_gen++;
}

/* ---- availability ----------------------------------------------------- */

static int busy_code(const char *busy)
{
    if (!busy || !strcmp(busy, "Free")) return 0;
    if (!strcmp(busy, "Tentative")) return 1;
    if (!strcmp(busy, "OOF")) return 3;
    return strcmp(busy, "NoData") ? 2 : 4;
}

static const sim_occ *occ_of(const sim_item *it, int index)
{
    for (size_t i = 0; i < it->nocc; i++)
        if (it->occ[i].index == index) return &it->occ[i];
    return NULL;
}

static void mark(char *d, size_t slots, long long from, int minutes, long long a, long long z,
                 int code)
{
    for (size_t j = 0; j < slots; j++) {
        long long s = from + (long long)j * minutes * 60, e = s + minutes * 60;
        if (a < e && z > s && d[j] - '0' < code) d[j] = (char)('0' + code);
    }
}

/* MergedFreeBusy: one digit per interval, the strongest status touching it;
 * a series' deleted occurrences are free, its modified ones where they
 * were moved. */
static void merged(sim_store *s, const char *mailbox, long long from, long long to, int minutes,
                   sim_buf *b)
{
    size_t slots = (size_t)((to - from) / (minutes * 60LL)), cap = 50000;
    char *d = calloc(slots + 1, 1);
    sim_span *v = calloc(cap, sizeof *v);
    if (!d || !v) abort();
    memset(d, '0', slots);
    for (size_t i = 0; i < s->n; i++) {
        const sim_item *it = s->items[i];
        char busy[32];
        if (!in_calendar_of(it, mailbox)) continue;
        field_text(it, "LegacyFreeBusyStatus", busy, sizeof busy);
        int code = busy_code(*busy ? busy : "Busy");
        sim_times t = times_of(it);
        size_t n = code ? sim_recur_expand(s->tz, &t, to, cap, v) : 0;
        for (size_t k = 0; k < n; k++) {
            const sim_occ *o = occ_of(it, (int)k + 1);
            long long a = v[k].start, z = v[k].end;
            if (o && o->deleted) continue;
            if (o && (sim_xs_parse(o->start, &a) || sim_xs_parse(o->end, &z))) continue;
            if (a < to && z > from) mark(d, slots, from, minutes, a, z, code);
        }
    }
    free(v);
    sim_buf_cat(b, d);
    free(d);
}

static void op_availability(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *b)
{
    (void)mailbox;
    xmlNode *opts = child(op, "FreeBusyViewOptions"), *win = child(opts, "TimeWindow");
    char *st = text_of(child(win, "StartTime")), *en = text_of(child(win, "EndTime"));
    char *iv = text_of(child(opts, "MergedFreeBusyIntervalInMinutes"));
    long long from = 0, to = 0;
    /* Times are read as UTC: the tests send a zero-bias TimeZone. */
    sim_xs_parse(st ? st : "", &from);
    sim_xs_parse(en ? en : "", &to);
    int minutes = iv ? atoi(iv) : 30;
    if (minutes < 5) minutes = 30;
    xmlFree(st), xmlFree(en), xmlFree(iv);
    sim_buf_cat(b, "<m:GetUserAvailabilityResponse xmlns:m=\"http://schemas.microsoft.com/exchange/"
                "services/2006/messages\" xmlns:t=\"http://schemas.microsoft.com/exchange/"
                "services/2006/types\"><m:FreeBusyResponseArray>");
    for (xmlNode *md = child(child(op, "MailboxDataArray"), "MailboxData"); md; md = md->next) {
        if (md->type != XML_ELEMENT_NODE) continue;
        char *addr = text_of(child(child(md, "Email"), "Address"));
        sim_buf_cat(b, "<m:FreeBusyResponse><m:ResponseMessage ResponseClass=\"Success\">"
                    "<m:ResponseCode>NoError</m:ResponseCode></m:ResponseMessage><m:FreeBusyView>"
                    "<t:FreeBusyViewType>MergedOnly</t:FreeBusyViewType><t:MergedFreeBusy>");
        if (to > from) merged(s, addr ? addr : "", from, to, minutes, b);
        sim_buf_cat(b, "</t:MergedFreeBusy></m:FreeBusyView></m:FreeBusyResponse>");
        xmlFree(addr);
    }
    sim_buf_cat(b, "</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>");
}

const char *sim_ops_dispatch(sim_store *s, const char *mailbox, xmlNode *op, sim_buf *out)
{
    static const struct {
        const char *name;
        void (*fn)(sim_store *, const char *, xmlNode *, sim_buf *);
    } OPS[] = {
        {"CreateItem", op_create}, {"GetItem", op_get}, {"UpdateItem", op_update},
        {"DeleteItem", op_delete}, {"FindItem", op_find}, {"GetFolder", op_get_folder},
        {"SyncFolderItems", op_sync}, {"Subscribe", op_subscribe},
        {"Unsubscribe", op_unsubscribe}, {"GetUserAvailabilityRequest", op_availability},
    };
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (!strcmp((const char *)op->name, OPS[i].name)) {
            OPS[i].fn(s, mailbox, op, out);
            return OPS[i].name;
        }
    return NULL;
}

void sim_store_dump(sim_store *s, sim_buf *out)
{
    char src[1024], tag[64], uid[512], subj[512], st[64], en[64];
    for (size_t i = 0; i < s->n; i++) {
        sim_item *it = s->items[i];
        field_text(it, "ExtendedProperty:calbridge-source", src, sizeof src);
        field_text(it, "ExtendedProperty:calbridge-tag", tag, sizeof tag);
        field_text(it, "UID", uid, sizeof uid);
        field_text(it, "Subject", subj, sizeof subj);
        field_text(it, "Start", st, sizeof st);
        field_text(it, "End", en, sizeof en);
        sim_buf_printf(out, "%s\t%s\t%s\tDwAAAB%08u\t%s\t%s\t%s\t%s\t%s\t%s\n", it->mailbox,
                    it->folder, it->id, it->ck, src, tag, uid, subj, st, en);
    }
}
