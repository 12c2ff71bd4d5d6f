#include "tzmap.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tz_pair {
    char *name;     /* IANA name or alias */
    char *windows;  /* borrowed from the canonical pair for aliases */
    int owned;
    int golden;     /* territory 001: the zone's canonical IANA name */
} tz_pair;

struct tzmap {
    tz_pair *v;
    size_t n, cap;
    /* Built once loaded, so that every look-up is a binary search (three or
     * more an event): v by name, and the canonical pairs by Windows ID with
     * libical's zone of each, found on first use (a memo: always the same
     * answer, so it is filled through a const map). */
    tz_pair **by_name, **golden;
    size_t ngolden;
    icaltimezone **zones;
    unsigned char *zone_known;
};

static int add(tzmap *m, const char *name, const char *windows, int owned)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 512;
        tz_pair *v = realloc(m->v, cap * sizeof *v);
        if (!v) return -1;
        m->v = v;
        m->cap = cap;
    }
    char *n = strdup(name);
    char *w = owned ? strdup(windows) : (char *)windows;
    if (!n || !w) {
        free(n);
        if (owned) free(w);
        return -1;
    }
    m->v[m->n++] = (tz_pair){n, w, owned, 0};
    return 0;
}

static int name_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(tz_pair *const *)elem)->name);
}

static int windows_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(tz_pair *const *)elem)->windows);
}

static const tz_pair *find(const tzmap *m, const char *name)
{
    if (!m->by_name) {   /* while loading */
        for (size_t i = 0; i < m->n; i++)
            if (!strcmp(m->v[i].name, name)) return &m->v[i];
        return NULL;
    }
    tz_pair *const *hit = bsearch(name, m->by_name, m->n, sizeof *m->by_name, name_key_cmp);
    return hit ? *hit : NULL;
}

static int by_name_cmp(const void *a, const void *b)
{
    return strcmp((*(tz_pair *const *)a)->name, (*(tz_pair *const *)b)->name);
}

static int by_windows_cmp(const void *a, const void *b)
{
    return strcmp((*(tz_pair *const *)a)->windows, (*(tz_pair *const *)b)->windows);
}

static int index_build(tzmap *m)
{
    m->by_name = malloc(m->n * sizeof *m->by_name);
    m->golden = malloc(m->n * sizeof *m->golden);
    m->zones = calloc(m->n, sizeof *m->zones);
    m->zone_known = calloc(m->n, 1);
    if (!m->by_name || !m->golden || !m->zones || !m->zone_known) return -1;
    for (size_t i = 0; i < m->n; i++) {
        m->by_name[i] = &m->v[i];
        if (m->v[i].golden) m->golden[m->ngolden++] = &m->v[i];
    }
    qsort(m->by_name, m->n, sizeof *m->by_name, by_name_cmp);
    qsort(m->golden, m->ngolden, sizeof *m->golden, by_windows_cmp);
    return 0;
}

/* The index in golden of a Windows ID, or -1. */
static long golden_at(const tzmap *m, const char *windows)
{
    tz_pair *const *hit = m->ngolden ? bsearch(windows, m->golden, m->ngolden, sizeof *m->golden,
                                               windows_key_cmp)
                                     : NULL;
    return hit ? (long)(hit - m->golden) : -1;
}

/* mapZone type="A B C" lists several IANA names for one Windows zone. */
static int add_types(tzmap *m, const char *types, const char *windows, int golden)
{
    char *copy = strdup(types), *save = NULL;
    if (!copy) return -1;
    int rc = 0;
    for (char *t = strtok_r(copy, " ", &save); t && !rc; t = strtok_r(NULL, " ", &save)) {
        if (!find(m, t)) rc = add(m, t, windows, 1);
        if (!rc && golden && !strcmp(find(m, t)->windows, windows))
            m->v[find(m, t) - m->v].golden = 1;
    }
    free(copy);
    return rc;
}

static int walk_cldr(tzmap *m, xmlNode *n)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if (!xmlStrcmp(n->name, BAD_CAST "mapZone")) {
            xmlChar *other = xmlGetProp(n, BAD_CAST "other");
            xmlChar *type = xmlGetProp(n, BAD_CAST "type");
            xmlChar *terr = xmlGetProp(n, BAD_CAST "territory");
            int golden = terr && !xmlStrcmp(terr, BAD_CAST "001");
            int rc = other && type ? add_types(m, (char *)type, (char *)other, golden) : 0;
            xmlFree(other);
            xmlFree(type);
            xmlFree(terr);
            if (rc) return rc;
        } else if (walk_cldr(m, n->children)) {
            return -1;
        }
    }
    return 0;
}

/* "L America/Los_Angeles US/Pacific": the alias maps like its target. */
static int load_links(tzmap *m, const char *path, cb_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return cb_errf(err, CB_EIO, "%s: %s", path, strerror(errno));
    char line[512], target[256], alias[256];
    int rc = CB_OK;
    size_t canonical = m->n;
    while (rc == CB_OK && fgets(line, sizeof line, f)) {
        if (sscanf(line, "L %255s %255s", target, alias) != 2) continue;
        const tz_pair *t = NULL;
        for (size_t i = 0; i < canonical && !t; i++)
            if (!strcmp(m->v[i].name, target)) t = &m->v[i];
        if (t && !find(m, alias) && add(m, alias, t->windows, 0) < 0)
            rc = cb_errf(err, CB_ENOMEM, "out of memory");
    }
    fclose(f);
    return rc;
}

int tzmap_load(const char *cldr_path, const char *tzdata_path, tzmap **out,
               cb_err *err)
{
    *out = NULL;
    xmlDoc *doc = xmlReadFile(cldr_path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
                                                   XML_PARSE_NOWARNING);
    if (!doc)
        return cb_errf(err, CB_EIO, "%s: cannot read time-zone table "
                       "(Debian package unicode-cldr-core)", cldr_path);
    tzmap *m = calloc(1, sizeof *m);
    int rc = m ? walk_cldr(m, xmlDocGetRootElement(doc)) : -1;
    xmlFreeDoc(doc);
    if (rc) {
        tzmap_free(m);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    if (m->n == 0) {
        tzmap_free(m);
        return cb_errf(err, CB_EPARSE, "%s: no mapZone entries", cldr_path);
    }
    if (tzdata_path && (rc = load_links(m, tzdata_path, err)) != CB_OK) {
        tzmap_free(m);
        return rc;
    }
    if (index_build(m)) {
        tzmap_free(m);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    *out = m;
    return CB_OK;
}

void tzmap_free(tzmap *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].name);
        if (m->v[i].owned) free(m->v[i].windows);
    }
    free(m->v);
    free(m->by_name);
    free(m->golden);
    free(m->zones);
    free(m->zone_known);
    free(m);
}

const char *tzmap_windows(const tzmap *m, const char *iana)
{
    if (!m || !iana) return NULL;
    const tz_pair *p = find(m, iana);
    if (p) return p->windows;
    /* "/mozilla.org/20050126_1/Europe/Berlin" -> "Europe/Berlin" */
    const char *last = strrchr(iana, '/');
    if (!last || last == iana) return NULL;
    const char *prev = last - 1;
    while (prev > iana && *prev != '/') prev--;
    if (*prev == '/' && (p = find(m, prev + 1))) return p->windows;
    return NULL;
}

size_t tzmap_size(const tzmap *m)
{
    return m ? m->n : 0;
}

const char *tzmap_iana(const tzmap *m, const char *windows)
{
    long i = m && windows ? golden_at(m, windows) : -1;
    return i < 0 ? NULL : m->golden[i]->name;
}

icaltimezone *tzmap_zone(const tzmap *m, const char *windows)
{
    long i = m && windows ? golden_at(m, windows) : -1;
    if (i < 0) return NULL;
    if (!m->zone_known[i]) {
        m->zones[i] = icaltimezone_get_builtin_timezone(m->golden[i]->name);
        m->zone_known[i] = 1;
    }
    return m->zones[i];
}
