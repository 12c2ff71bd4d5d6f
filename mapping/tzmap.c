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

static const tz_pair *find(const tzmap *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->v[i].name, name)) return &m->v[i];
    return NULL;
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
    if (!m || !windows) return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].golden && !strcmp(m->v[i].windows, windows)) return m->v[i].name;
    return NULL;
}
