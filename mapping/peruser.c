#include "peruser.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "occur.h"
#include "sbuf.h"

#define PERUSER "X-CALENDARSERVER-PERUSER"
#define PERUSER_UID "X-CALENDARSERVER-PERUSER-UID"
#define PERINSTANCE "X-CALENDARSERVER-PERINSTANCE"
#define NO_RID LLONG_MIN   /* the master's per-user data */

typedef struct pinst {
    long long rid;        /* original start, UTC seconds; NO_RID for the master */
    char *rid_line;       /* its RECURRENCE-ID line, NULL for the master */
    sbuf body;            /* unfolded lines, CRLF each, RECURRENCE-ID left out */
    int transparent;
    long long before, after;
} pinst;

typedef struct pblock {
    char *user, *uid;
    pinst *v;
    size_t n;
} pblock;

typedef struct blocks {
    pblock *v;
    size_t n;
    sbuf shared;          /* the text without its blocks */
} blocks;

struct peruser_index {
    blocks b;             /* the users' blocks, by user */
    pblock shared;        /* the shared components' own ("." in PERUSER) */
    const map_ctx *ctx;
};

/* The components that carry an event's data: not zones, not blocks. */
static int is_data(icalcomponent *c)
{
    icalcomponent_kind k = icalcomponent_isa(c);
    return k != ICAL_VTIMEZONE_COMPONENT && k != ICAL_X_COMPONENT;
}

/* ---- text ------------------------------------------------------------- */

/* Content lines joined back (RFC 5545 3.1), each ending in CRLF. */
static char *unfold(const char *s)
{
    sbuf b;
    sbuf_init(&b);
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "\r\n");
        sbuf_catn(&b, p, n);
        p += n;
        if (*p == '\r') p++;
        if (*p == '\n') p++;
        if (*p == ' ' || *p == '\t') p++;   /* a continuation */
        else if (n || *p) sbuf_cat(&b, "\r\n");
    }
    return sbuf_take(&b);
}

/* One line folded at 75 octets, never inside a UTF-8 character. */
static void cat_folded(sbuf *b, const char *line, size_t n)
{
    size_t col = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        while (i + len < n && ((unsigned char)line[i + len] & 0xC0) == 0x80) len++;
        if (col + len > 75) {
            sbuf_cat(b, "\r\n ");
            col = 1;
        }
        sbuf_catn(b, line + i, len);
        col += len;
        i += len;
    }
    sbuf_cat(b, "\r\n");
}

static int line_is(const char *line, size_t n, const char *what)
{
    return n == strlen(what) && !strncmp(line, what, n);
}

static int starts(const char *line, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && !strncmp(line, prefix, k);
}

/* The value of a content line: after the first colon outside quotes. */
static const char *value_of(const char *line, size_t n, size_t *vlen)
{
    int quoted = 0;
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '"') quoted = !quoted;
        else if (line[i] == ':' && !quoted) {
            *vlen = n - i - 1;
            return line + i + 1;
        }
    }
    *vlen = 0;
    return line + n;
}

static int name_is(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && !strncmp(line, name, k) && (line[k] == ':' || line[k] == ';');
}

/* ---- blocks ----------------------------------------------------------- */

static void blocks_free(blocks *b)
{
    for (size_t i = 0; i < b->n; i++) {
        for (size_t k = 0; k < b->v[i].n; k++) {
            free(b->v[i].v[k].rid_line);
            sbuf_free(&b->v[i].v[k].body);
        }
        free(b->v[i].v);
        free(b->v[i].user);
        free(b->v[i].uid);
    }
    free(b->v);
    sbuf_free(&b->shared);
    memset(b, 0, sizeof *b);
}

static pblock *block_add(blocks *b, const char *user)
{
    pblock *v = realloc(b->v, (b->n + 1) * sizeof *v);
    if (!v) return NULL;
    b->v = v;
    memset(&v[b->n], 0, sizeof *v);
    v[b->n].user = strdup(user ? user : "");
    return v[b->n].user ? &v[b->n++] : NULL;
}

static pinst *inst_add(pblock *k)
{
    pinst *v = realloc(k->v, (k->n + 1) * sizeof *v);
    if (!v) return NULL;
    k->v = v;
    memset(&v[k->n], 0, sizeof *v);
    v[k->n].rid = NO_RID;
    v[k->n].before = v[k->n].after = -1;
    sbuf_init(&v[k->n].body);
    return &v[k->n++];
}

/* Splits unfolded text into its shared lines and its per-user blocks. */
static int blocks_read(const char *text, blocks *b)
{
    memset(b, 0, sizeof *b);
    sbuf_init(&b->shared);
    pblock *cur = NULL;
    pinst *in = NULL;
    int depth = 0;   /* inside a PERINSTANCE: nesting of its sub-components */
    for (const char *p = text; *p;) {
        const char *e = strstr(p, "\r\n");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *next = e ? e + 2 : p + n;
        if (!cur && line_is(p, n, "BEGIN:" PERUSER)) {
            if (!(cur = block_add(b, NULL))) return -1;
        } else if (!cur) {
            sbuf_catn(&b->shared, p, (size_t)(next - p));
        } else if (!in && line_is(p, n, "END:" PERUSER)) {
            cur = NULL;
        } else if (!in && line_is(p, n, "BEGIN:" PERINSTANCE)) {
            if (!(in = inst_add(cur))) return -1;
            depth = 0;
        } else if (in && depth == 0 && line_is(p, n, "END:" PERINSTANCE)) {
            in = NULL;
        } else if (in) {
            if (depth == 0 && name_is(p, n, "RECURRENCE-ID")) {
                free(in->rid_line);
                if (!(in->rid_line = strndup(p, n))) return -1;
            } else {
                depth += starts(p, n, "BEGIN:") - starts(p, n, "END:");
                sbuf_catn(&in->body, p, n);
                sbuf_cat(&in->body, "\r\n");
            }
        } else {
            size_t vl;
            const char *v = value_of(p, n, &vl);
            char **to = name_is(p, n, PERUSER_UID) ? &cur->user : name_is(p, n, "UID") ? &cur->uid
                                                                                     : NULL;
            if (to) {
                free(*to);
                if (!(*to = strndup(v, vl))) return -1;
            }
        }
        p = next;
    }
    return sbuf_failed(&b->shared) ? -1 : 0;
}

/* The UTC seconds of a RECURRENCE-ID: its own zone (the calendar's
 * VTIMEZONE, else the system's), floating and dates in the default zone. */
static long long rid_of(icalcomponent *cal, icalproperty *p, const map_ctx *ctx)
{
    struct icaltimetype t = icalproperty_get_recurrenceid(p);
    if (icaltime_is_null_time(t)) return NO_RID;
    icalparameter *tzp = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
    const char *tzid = tzp ? icalparameter_get_tzid(tzp) : NULL;
    icaltimezone *z = icaltime_is_utc(t) ? icaltimezone_get_utc_timezone() : NULL;
    if (!z && tzid) z = icalcomponent_get_timezone(cal, tzid);
    if (!z && tzid) z = icaltimezone_get_builtin_timezone(tzid);
    if (!z && ctx && ctx->default_tz) z = icaltimezone_get_builtin_timezone(ctx->default_tz);
    if (!z) z = icaltimezone_get_utc_timezone();
    t.is_date = 0;
    t.zone = NULL;
    return (long long)icaltime_as_timet_with_zone(t, z);
}

static long long rid_of_line(icalcomponent *cal, const char *line, const map_ctx *ctx)
{
    icalproperty *p = line ? icalproperty_new_from_string(line) : NULL;
    long long r = p ? rid_of(cal, p, ctx) : NO_RID;
    if (p) icalproperty_free(p);
    return r;
}

static long long duration_of(const char *v, size_t n)
{
    char buf[64];
    if (!n || n >= sizeof buf) return -1;
    memcpy(buf, v, n);
    buf[n] = 0;
    struct icaldurationtype d = icaldurationtype_from_string(buf);
    if (icaldurationtype_is_bad_duration(d)) return -1;
    int s = icaldurationtype_as_int(d);
    return s < 0 ? -s : s;
}

/* What the index needs of an instance's data: its own lines only (an
 * alarm's properties are not the event's). */
static void inst_resolve(pinst *in, icalcomponent *cal, const map_ctx *ctx)
{
    in->rid = in->rid_line ? rid_of_line(cal, in->rid_line, ctx) : NO_RID;
    int depth = 0;
    for (const char *p = in->body.s ? in->body.s : ""; *p;) {
        const char *e = strstr(p, "\r\n");
        size_t n = e ? (size_t)(e - p) : strlen(p), vl;
        const char *v = value_of(p, n, &vl);
        if (starts(p, n, "BEGIN:")) depth++;
        else if (starts(p, n, "END:")) depth--;
        else if (depth == 0 && name_is(p, n, "TRANSP"))
            in->transparent = vl == 11 && !strncmp(v, "TRANSPARENT", 11);
        else if (depth == 0 && name_is(p, n, "X-APPLE-TRAVEL-DURATION"))
            in->before = duration_of(v, vl);
        else if (depth == 0 && name_is(p, n, "X-APPLE-TRAVEL-RETURN-DURATION"))
            in->after = duration_of(v, vl);
        p = e ? e + 2 : p + n;
    }
}

static void blocks_resolve(blocks *b, icalcomponent *cal, const map_ctx *ctx)
{
    for (size_t i = 0; i < b->n; i++)
        for (size_t k = 0; k < b->v[i].n; k++) inst_resolve(&b->v[i].v[k], cal, ctx);
}

static void block_write(sbuf *out, const pblock *k)
{
    sbuf_cat(out, "BEGIN:" PERUSER "\r\n");
    if (k->uid) {
        sbuf_cat(out, "UID:");
        cat_folded(out, k->uid, strlen(k->uid));
    }
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, PERUSER_UID ":%s", k->user);
    cat_folded(out, b.s ? b.s : "", b.len);
    sbuf_free(&b);
    for (size_t i = 0; i < k->n; i++) {
        sbuf_cat(out, "BEGIN:" PERINSTANCE "\r\n");
        if (k->v[i].rid_line) cat_folded(out, k->v[i].rid_line, strlen(k->v[i].rid_line));
        for (const char *p = k->v[i].body.s ? k->v[i].body.s : ""; *p;) {
            const char *e = strstr(p, "\r\n");
            size_t n = e ? (size_t)(e - p) : strlen(p);
            cat_folded(out, p, n);
            p = e ? e + 2 : p + n;
        }
        sbuf_cat(out, "END:" PERINSTANCE "\r\n");
    }
    sbuf_cat(out, "END:" PERUSER "\r\n");
}

/* ---- reading: a user's view ------------------------------------------- */

static icalcomponent *with_rid(icalcomponent *cal, long long rid, const map_ctx *ctx)
{
    for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
         c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
        if (!is_data(c)) continue;
        icalproperty *p = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
        if (p ? rid_of(cal, p, ctx) == rid : rid == NO_RID) return c;
    }
    return NULL;
}

/* Copies an instance's lines into c: parsed as an event's body. */
static void merge_into(icalcomponent *c, const pinst *in)
{
    sbuf t;
    sbuf_init(&t);
    sbuf_printf(&t, "BEGIN:VEVENT\r\n%sEND:VEVENT\r\n", in->body.s ? in->body.s : "");
    icalcomponent *ev = t.s ? icalparser_parse_string(t.s) : NULL;
    sbuf_free(&t);
    if (!ev) return;
    icalproperty *p;
    while ((p = icalcomponent_get_first_property(ev, ICAL_ANY_PROPERTY))) {
        icalcomponent_remove_property(ev, p);
        icalcomponent_add_property(c, p);
    }
    icalcomponent *sub;
    while ((sub = icalcomponent_get_first_component(ev, ICAL_ANY_COMPONENT))) {
        icalcomponent_remove_component(ev, sub);
        icalcomponent_add_component(c, sub);
    }
    icalcomponent_free(ev);
}

static const pinst *inst_for(const pblock *k, long long rid)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->v[i].rid == rid) return &k->v[i];
    return NULL;
}

static void filter_back(icalcomponent *cal, const pblock *k, const map_ctx *ctx)
{
    const pinst *master = inst_for(k, NO_RID);
    for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
         c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
        if (!is_data(c)) continue;
        icalproperty *p = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
        const pinst *own = inst_for(k, p ? rid_of(cal, p, ctx) : NO_RID);
        if (own || master) merge_into(c, own ? own : master);
    }
}

/* No block of the user's: an all-day event without TRANSP is free. */
static void default_filter(icalcomponent *cal)
{
    icalcomponent *main = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    if (!main || !icalcomponent_get_dtstart(main).is_date ||
        icalcomponent_get_first_property(main, ICAL_TRANSP_PROPERTY))
        return;
    for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); c;
         c = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT))
        if (!icalcomponent_get_first_property(c, ICAL_TRANSP_PROPERTY))
            icalcomponent_add_property(c, icalproperty_new_transp(ICAL_TRANSP_TRANSPARENT));
}

icalcomponent *peruser_parse(const char *ics, const char *user, const map_ctx *ctx)
{
    if (!strstr(ics, PERUSER)) {
        icalcomponent *cal = icalparser_parse_string(ics);
        if (cal && icalcomponent_isa(cal) == ICAL_VCALENDAR_COMPONENT) default_filter(cal);
        return cal;
    }
    char *text = unfold(ics);
    blocks b;
    icalcomponent *cal = NULL;
    if (text && blocks_read(text, &b) == 0 && b.shared.s)
        cal = icalparser_parse_string(b.shared.s);
    if (cal && icalcomponent_isa(cal) == ICAL_VCALENDAR_COMPONENT) {
        const pblock *own = NULL;
        for (size_t i = 0; user && i < b.n && !own; i++)
            if (!strcmp(b.v[i].user, user)) own = &b.v[i];
        blocks_resolve(&b, cal, ctx);
        if (own) filter_back(cal, own, ctx);
        else default_filter(cal);
    }
    if (text) blocks_free(&b);
    free(text);
    return cal;
}

/* ---- writing: the split and the merge ---------------------------------- */

static int is_peruser_prop(icalproperty *p)
{
    if (icalproperty_isa(p) == ICAL_TRANSP_PROPERTY) return 1;
    const char *n = icalproperty_get_property_name(p);
    return n && !strncmp(n, "X-", 2) && strcmp(n, "X-CALENDARSERVER-HIDDEN-INSTANCE");
}

static void cat_unfolded(sbuf *b, char *s)
{
    char *u = s ? unfold(s) : NULL;
    if (u) sbuf_cat(b, u);
    free(u);
    free(s);
}

/* Moves c's per-user properties and alarms into in's body (the writer's
 * _splitPerUserData, after _defaultMerge made an all-day event's implied
 * OPAQUE explicit). */
static int split_component(icalcomponent *c, pinst *in)
{
    if (icalcomponent_isa(c) == ICAL_VEVENT_COMPONENT && icalcomponent_get_dtstart(c).is_date &&
        !icalcomponent_get_first_property(c, ICAL_TRANSP_PROPERTY))
        icalcomponent_add_property(c, icalproperty_new_transp(ICAL_TRANSP_OPAQUE));
    int moved = 0;
    icalproperty *p = icalcomponent_get_first_property(c, ICAL_ANY_PROPERTY);
    while (p) {
        icalproperty *next = icalcomponent_get_next_property(c, ICAL_ANY_PROPERTY);
        if (is_peruser_prop(p)) {
            cat_unfolded(&in->body, icalproperty_as_ical_string_r(p));
            icalcomponent_remove_property(c, p);
            icalproperty_free(p);
            moved++;
        }
        p = next;
    }
    icalcomponent *sub;
    while ((sub = icalcomponent_get_first_component(c, ICAL_VALARM_COMPONENT))) {
        cat_unfolded(&in->body, icalcomponent_as_ical_string_r(sub));
        icalcomponent_remove_component(c, sub);
        icalcomponent_free(sub);
        moved++;
    }
    return moved;
}

static int body_eq(const pinst *a, const pinst *b)
{
    return !strcmp(a->body.s ? a->body.s : "", b->body.s ? b->body.s : "");
}

/* The writer's block: the master's data, and each instance's that differs. */
static int split(icalcomponent *cal, const char *user, blocks *mine, const map_ctx *ctx)
{
    pblock *k = block_add(mine, user);
    icalcomponent *first = icalcomponent_get_first_real_component(cal);
    if (!k || !first) return -1;
    if (icalcomponent_get_uid(first) && !(k->uid = strdup(icalcomponent_get_uid(first)))) return -1;
    pblock all = {0};
    for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
         c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
        if (!is_data(c)) continue;
        pinst *in = inst_add(&all);
        if (!in) return -1;
        if (!split_component(c, in)) {
            sbuf_free(&in->body);
            all.n--;
            continue;
        }
        icalproperty *rid = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
        char *line = rid ? icalproperty_as_ical_string_r(rid) : NULL;
        in->rid_line = line ? unfold(line) : NULL;
        free(line);
        if (in->rid_line) in->rid_line[strcspn(in->rid_line, "\r\n")] = 0;
        in->rid = in->rid_line ? rid_of(cal, rid, ctx) : NO_RID;
    }
    const pinst *master = inst_for(&all, NO_RID);
    for (size_t pass = 0; pass < 2; pass++)   /* the master's first */
        for (size_t i = 0; i < all.n; i++) {
            pinst *in = &all.v[i];
            int is_master = in->rid == NO_RID;
            if (pass == 0 ? !is_master : is_master || (master && body_eq(in, master))) continue;
            pinst *to = inst_add(k);
            if (!to) return -1;
            sbuf_free(&to->body);
            *to = *in;   /* moved: all's copy is emptied below */
            memset(in, 0, sizeof *in);
        }
    for (size_t i = 0; i < all.n; i++) {
        free(all.v[i].rid_line);
        sbuf_free(&all.v[i].body);
    }
    free(all.v);
    if (!k->n) {   /* nothing of the writer's */
        free(k->user);
        free(k->uid);
        free(k->v);
        mine->n--;
    }
    return 0;
}

static int is_recurring(icalcomponent *cal, int *has_master)
{
    int r = 0;
    *has_master = 0;
    for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
         c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
        if (!is_data(c)) continue;
        int ov = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY) != NULL;
        *has_master |= !ov;
        r |= ov || icalcomponent_get_first_property(c, ICAL_RRULE_PROPERTY) ||
             icalcomponent_get_first_property(c, ICAL_RDATE_PROPERTY);
    }
    return r;
}

static int text_recurring(const char *shared)
{
    return strstr(shared, "\nRRULE") || strstr(shared, "\nRDATE") ||
           strstr(shared, "\nRECURRENCE-ID");
}

/* Whether the new data still has the instance rid. */
static int valid_instance(icalcomponent *cal, long long rid, const map_ctx *ctx)
{
    if (rid == NO_RID || with_rid(cal, rid, ctx)) return 1;
    icalcomponent *first = icalcomponent_get_first_real_component(cal);
    const char *uid = first ? icalcomponent_get_uid(first) : NULL;
    if (!uid) return 0;
    tzdef_cache zones = {0};
    occur_list l = {0};
    int ok = occur_ical(cal, uid, ctx, &zones, rid, rid + 1, 2, &l, NULL) == CB_OK && l.n > 0;
    occur_free(&l);
    tzdef_cache_free(&zones);
    return ok;
}

/* Other users' blocks from the stored text (_simpleMerge/_complexMerge). */
static int merge_old(icalcomponent *cal, const char *user, const char *old, blocks *out,
                     const map_ctx *ctx)
{
    char *text = unfold(old);
    blocks ob;
    if (!text || blocks_read(text, &ob) != 0) {
        free(text);
        return -1;
    }
    blocks_resolve(&ob, cal, ctx);
    int has_master, new_recur = is_recurring(cal, &has_master);
    int old_recur = ob.shared.s && text_recurring(ob.shared.s);
    for (size_t i = 0; i < ob.n; i++) {
        pblock *k = &ob.v[i];
        if (!strcmp(k->user, user) || (new_recur && !has_master && !(new_recur && old_recur)))
            continue;
        size_t kept = 0;
        for (size_t j = 0; j < k->n; j++) {
            pinst *in = &k->v[j];
            int keep = new_recur && old_recur ? valid_instance(cal, in->rid, ctx)
                       : !new_recur && old_recur ? in->rid == NO_RID : 1;
            if (!keep) {
                free(in->rid_line);
                sbuf_free(&in->body);
                continue;
            }
            k->v[kept++] = *in;
        }
        k->n = kept;
        if (!kept) continue;
        pblock *v = realloc(out->v, (out->n + 1) * sizeof *v);
        if (!v) break;
        out->v = v;
        v[out->n++] = *k;
        memset(k, 0, sizeof *k);
    }
    blocks_free(&ob);
    free(text);
    return 0;
}

/* Whether text has line as a whole content line (not inside a value that
 * happens to hold the same characters, nor folded on). */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p += n) {
        const char *e = p + n;
        if (p != text && p[-1] != '\n') continue;
        if (*e == '\r') e++;
        if (*e == '\n' && e[1] != ' ' && e[1] != '\t') return 1;
    }
    return 0;
}

int peruser_has_blocks(const char *ics)
{
    return has_line(ics, "BEGIN:" PERUSER);
}

char *peruser_store(icalcomponent *cal, const char *user, const char *old, const map_ctx *ctx,
                    cb_err *err)
{
    blocks mine = {0};
    sbuf_init(&mine.shared);
    int rc = split(cal, user, &mine, ctx);
    if (rc == 0 && old && strstr(old, PERUSER)) rc = merge_old(cal, user, old, &mine, ctx);
    char *shared = rc == 0 ? icalcomponent_as_ical_string_r(cal) : NULL;
    /* The calendar's own last line: not those characters inside a value. */
    char *end = NULL;
    for (char *p = shared; p && (p = strstr(p, "END:VCALENDAR")); p++)
        if (p == shared || p[-1] == '\n') end = p;
    sbuf out;
    sbuf_init(&out);
    if (end) {
        sbuf_catn(&out, shared, (size_t)(end - shared));
        for (size_t i = 0; i < mine.n; i++) block_write(&out, &mine.v[i]);
        sbuf_cat(&out, "END:VCALENDAR\r\n");
    }
    free(shared);
    blocks_free(&mine);
    if (!end || sbuf_failed(&out)) {
        sbuf_free(&out);
        cb_errf(err, CB_ENOMEM, "out of memory");
        return NULL;
    }
    return sbuf_take(&out);
}

/* ---- the index -------------------------------------------------------- */

static int by_user(const void *a, const void *b)
{
    return strcmp(((const pblock *)a)->user, ((const pblock *)b)->user);
}

peruser_index *peruser_index_new(const char *text, icalcomponent *cal, const map_ctx *ctx)
{
    peruser_index *ix = calloc(1, sizeof *ix);
    char *t = ix ? unfold(text) : NULL;
    int rc = t ? blocks_read(t, &ix->b) : -1;
    free(t);
    if (rc == 0) {
        blocks_resolve(&ix->b, cal, ctx);
        if (ix->b.n > 1) qsort(ix->b.v, ix->b.n, sizeof *ix->b.v, by_user);
        ix->shared.user = ".";
        ix->ctx = ctx;
    }
    /* The shared components' own TRANSP: CalendarServer's "" user. */
    for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT);
         rc == 0 && c; c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
        if (!is_data(c)) continue;
        pinst *in = inst_add(&ix->shared);
        if (!in) rc = -1;
        else {
            icalproperty *rid = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
            icalproperty *tr = icalcomponent_get_first_property(c, ICAL_TRANSP_PROPERTY);
            in->rid = rid ? rid_of(cal, rid, ctx) : NO_RID;
            in->transparent = tr && icalproperty_get_transp(tr) == ICAL_TRANSP_TRANSPARENT;
        }
    }
    if (rc == 0) return ix;
    peruser_index_free(ix);
    return NULL;
}

/* One user's data for an instance: its own, else the master's. */
static const pinst *lookup(const pblock *k, long long rid)
{
    const pinst *in = inst_for(k, rid);
    return in ? in : inst_for(k, NO_RID);
}

size_t peruser_index_rows(const peruser_index *ix, icalcomponent *comp, long long orig,
                          int transparent, peruser_row *out, size_t max)
{
    icalproperty *p = comp ? icalcomponent_get_first_property(comp, ICAL_RECURRENCEID_PROPERTY)
                           : NULL;
    icalcomponent *cal = comp ? icalcomponent_get_parent(comp) : NULL;
    long long rid = p && cal ? rid_of(cal, p, ix->ctx) : orig;
    size_t n = 0;
    for (size_t i = 0; i <= ix->b.n && n < max; i++) {
        const pblock *k = i == 0 ? &ix->shared : &ix->b.v[i - 1];
        const pinst *in = lookup(k, rid);
        peruser_row r = {k->user, in ? in->transparent : 0, in ? in->before : -1,
                         in ? in->after : -1};
        if (r.transparent != transparent || r.before >= 0 || r.after >= 0) out[n++] = r;
    }
    return n;
}

void peruser_index_free(peruser_index *ix)
{
    if (!ix) return;
    blocks_free(&ix->b);
    for (size_t k = 0; k < ix->shared.n; k++) sbuf_free(&ix->shared.v[k].body);
    free(ix->shared.v);
    free(ix);
}
