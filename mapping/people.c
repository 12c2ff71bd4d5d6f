#include "people.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PEOPLE_MAX_FILE (64L * 1024 * 1024)

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int valid_smtp(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.'))
        return 0;
    for (const char *c = s; *c; c++)
        if (isspace((unsigned char)*c) || *c == ',' || *c == '<' || *c == '>')
            return 0;
    return at[1] != '.' && s[strlen(s) - 1] != '.';
}

static int parse_kind(const char *s, person_kind *k)
{
    if (!strcmp(s, "user")) *k = PERSON_USER;
    else if (!strcmp(s, "room")) *k = PERSON_ROOM;
    else if (!strcmp(s, "resource")) *k = PERSON_RESOURCE;
    else return -1;
    return 0;
}

/* Splits line into exactly four comma-separated fields. */
static int split4(char *line, char *f[4])
{
    int n = 0;
    f[n++] = line;
    for (char *c = line; *c; c++) {
        if (*c == ',') {
            if (n == 4) return -1;
            *c = '\0';
            f[n++] = c + 1;
        }
    }
    if (n != 4) return -1;
    for (int i = 0; i < 4; i++) f[i] = trim(f[i]);
    return 0;
}

static int parse_line(people *p, char *line, const char *name, int lineno,
                      cb_err *err)
{
    char *f[4];
    if (split4(line, f) < 0)
        return cb_errf(err, CB_EPARSE,
                       "%s:%d: expected 4 fields owner_uid,smtp,wave,kind",
                       name, lineno);
    if (!*f[0])
        return cb_errf(err, CB_EINVAL, "%s:%d: owner_uid is empty", name, lineno);
    if (!valid_smtp(f[1]))
        return cb_errf(err, CB_EINVAL, "%s:%d: '%s' is not an SMTP address",
                       name, lineno, f[1]);
    char *end;
    errno = 0;
    long wave = strtol(f[2], &end, 10);
    if (!*f[2] || *end || errno || wave < 0 || wave > 100000)
        return cb_errf(err, CB_EINVAL,
                       "%s:%d: wave '%s' is not a number from 0 to 100000",
                       name, lineno, f[2]);
    person_kind kind;
    if (parse_kind(f[3], &kind) < 0)
        return cb_errf(err, CB_EINVAL,
                       "%s:%d: kind '%s' must be user, room or resource",
                       name, lineno, f[3]);
    for (char *c = f[1]; *c; c++) *c = (char)tolower((unsigned char)*c);
    person *v = realloc(p->v, (p->n + 1) * sizeof *v);
    if (!v) return cb_errf(err, CB_ENOMEM, "%s:%d: out of memory", name, lineno);
    p->v = v;
    person *np = &v[p->n];
    np->owner_uid = strdup(f[0]);
    np->smtp = strdup(f[1]);
    np->wave = (int)wave;
    np->kind = kind;
    np->line = lineno;
    p->n++;
    if (!np->owner_uid || !np->smtp)
        return cb_errf(err, CB_ENOMEM, "%s:%d: out of memory", name, lineno);
    return CB_OK;
}

static int by_uid_cmp(const void *a, const void *b)
{
    const person *x = *(person *const *)a, *y = *(person *const *)b;
    int d = strcmp(x->owner_uid, y->owner_uid);
    return d ? d : x->line - y->line;
}

static int by_smtp_cmp(const void *a, const void *b)
{
    const person *x = *(person *const *)a, *y = *(person *const *)b;
    int d = strcasecmp(x->smtp, y->smtp);
    return d ? d : x->line - y->line;
}

/* A person's key in one of the two indexes, and how keys compare there:
 * owner UIDs exactly, addresses without case. */
static int key_cmp(const char *a, const char *b, int uid)
{
    return uid ? strcmp(a, b) : strcasecmp(a, b);
}

static const char *key_of(const person *p, int uid)
{
    return uid ? p->owner_uid : p->smtp;
}

/* The first line (in the file's order) that repeats an earlier one's key,
 * or NULL; v is sorted by key, then line. */
static const person *repeated(person **v, size_t n, int uid)
{
    const person *first = NULL;
    for (size_t i = 1; i < n; i++)
        if (!key_cmp(key_of(v[i - 1], uid), key_of(v[i], uid), uid) &&
            (!first || v[i]->line < first->line))
            first = v[i];
    return first;
}

/* Sorted indexes, and the map's repeated keys refused. */
static int index_people(people *p, const char *name, cb_err *err)
{
    if (!p->n) return CB_OK;
    p->by_uid = malloc(p->n * sizeof *p->by_uid);
    p->by_smtp = malloc(p->n * sizeof *p->by_smtp);
    if (!p->by_uid || !p->by_smtp) return cb_errf(err, CB_ENOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < p->n; i++) p->by_uid[i] = p->by_smtp[i] = &p->v[i];
    qsort(p->by_uid, p->n, sizeof *p->by_uid, by_uid_cmp);
    qsort(p->by_smtp, p->n, sizeof *p->by_smtp, by_smtp_cmp);
    const person *u = repeated(p->by_uid, p->n, 1);
    const person *m = repeated(p->by_smtp, p->n, 0);
    if (u && (!m || u->line <= m->line))
        return cb_errf(err, CB_EINVAL, "%s:%d: owner_uid %s is listed twice", name, u->line,
                       u->owner_uid);
    if (m)
        return cb_errf(err, CB_EINVAL, "%s:%d: mailbox %s is listed twice", name, m->line,
                       m->smtp);
    return CB_OK;
}

int people_parse(const char *text, const char *name, people **out, cb_err *err)
{
    *out = NULL;
    people *p = calloc(1, sizeof *p);
    /* Spreadsheet programs save CSV with a UTF-8 byte order mark. */
    if (!strncmp(text, "\xef\xbb\xbf", 3)) text += 3;
    char *copy = strdup(text);
    if (!p || !copy) {
        free(p);
        free(copy);
        return cb_errf(err, CB_ENOMEM, "%s: out of memory", name);
    }
    int rc = CB_OK, lineno = 0;
    char *save = NULL;
    /* strtok_r would skip empty lines and so miscount them. */
    for (char *line = copy; line && rc == CB_OK; line = save) {
        save = strchr(line, '\n');
        if (save) *save++ = '\0';
        lineno++;
        char *t = trim(line);
        if (!*t || *t == '#') continue;
        if (lineno == 1 && !strcasecmp(t, "owner_uid,smtp,wave,kind")) continue;
        rc = parse_line(p, t, name, lineno, err);
    }
    free(copy);
    if (rc == CB_OK) rc = index_people(p, name, err);
    if (rc != CB_OK) {
        people_free(p);
        return rc;
    }
    *out = p;
    return CB_OK;
}

int people_load(const char *path, people **out, cb_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return cb_errf(err, CB_EIO, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *nb = cap > (size_t)PEOPLE_MAX_FILE ? NULL : realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return cb_errf(err, CB_ENOMEM, "%s: file too large", path);
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return cb_errf(err, CB_EIO, "%s: read error", path);
    }
    if (!buf) buf = calloc(1, 1);
    else buf[len] = '\0';
    if (!buf) return cb_errf(err, CB_ENOMEM, "%s: out of memory", path);
    if (strlen(buf) != len) {
        free(buf);
        return cb_errf(err, CB_EPARSE, "%s: contains a NUL byte", path);
    }
    int rc = people_parse(buf, path, out, err);
    free(buf);
    return rc;
}

void people_free(people *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].owner_uid);
        free(p->v[i].smtp);
    }
    free(p->v);
    free(p->by_uid);
    free(p->by_smtp);
    free(p);
}

static int uid_key_cmp(const void *key, const void *elem)
{
    return key_cmp(key, (*(person *const *)elem)->owner_uid, 1);
}

static int smtp_key_cmp(const void *key, const void *elem)
{
    return key_cmp(key, (*(person *const *)elem)->smtp, 0);
}

/* A binary search of index (NULL: a map built by hand, searched in full). */
static const person *find(const people *p, person *const *index, const char *key, int uid)
{
    if (!p) return NULL;
    if (!index) {
        for (size_t i = 0; i < p->n; i++)
            if (!key_cmp(key_of(&p->v[i], uid), key, uid)) return &p->v[i];
        return NULL;
    }
    person *const *hit = bsearch(key, index, p->n, sizeof *index, uid ? uid_key_cmp : smtp_key_cmp);
    return hit ? *hit : NULL;
}

const person *people_by_uid(const people *p, const char *owner_uid)
{
    return find(p, p ? p->by_uid : NULL, owner_uid, 1);
}

const person *people_by_smtp(const people *p, const char *smtp)
{
    if (!strncasecmp(smtp, "mailto:", 7)) smtp += 7;
    return find(p, p ? p->by_smtp : NULL, smtp, 0);
}

const char *person_kind_name(person_kind k)
{
    return k == PERSON_ROOM ? "room" : k == PERSON_RESOURCE ? "resource" : "user";
}
