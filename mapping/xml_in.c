#include "xml_in.h"

#include <libxml/parser.h>
#include <string.h>

static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    (void)name;
    (void)ext;
    (void)sys;
    xmlParserCtxtPtr p = ctx;
    p->_private = (void *)1;   /* the parser's own slot, free for its user */
    xmlStopParser(p);
}

xmlDoc *xml_in_read(const char *xml, size_t len, cb_err *err)
{
    if (len > XML_IN_MAX) {
        cb_errf(err, CB_EPARSE, "XML document of %zu bytes is over the %u-byte limit", len,
                XML_IN_MAX);
        return NULL;
    }
    xmlParserCtxtPtr p = xmlNewParserCtxt();
    if (!p) {
        cb_errf(err, CB_ENOMEM, "out of memory");
        return NULL;
    }
    /* The DOCTYPE is reported before its internal subset is read: stopping
     * there means no entity declaration is ever parsed. */
    p->sax->internalSubset = refuse_dtd;
    p->sax->externalSubset = refuse_dtd;
    xmlDoc *doc = xmlCtxtReadMemory(p, xml, (int)len, "answer.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    int had_dtd = p->_private != NULL;
    if (had_dtd && doc) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(p);
        if (had_dtd) cb_errf(err, CB_EPARSE, "XML document carries a DTD; refused");
        else cb_errf(err, CB_EPARSE, "not well-formed XML%s%.200s", e && e->message ? ": " : "",
                     e && e->message ? e->message : "");
        if (err) {   /* libxml2's messages end in a newline */
            size_t n = strlen(err->msg);
            while (n && err->msg[n - 1] == '\n') err->msg[--n] = '\0';
        }
    }
    xmlFreeParserCtxt(p);
    return doc;
}

xmlNode *xml_in_find(xmlNode *n, const char *name)
{
    xmlNode *c = n ? n->children : NULL;
    while (c) {
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name)) return c;
        if (c->type == XML_ELEMENT_NODE && c->children) {
            c = c->children;
            continue;
        }
        while (c && c != n && !c->next) c = c->parent;
        if (!c || c == n) return NULL;
        c = c->next;
    }
    return NULL;
}
