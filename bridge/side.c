#include "side.h"

#include <stdlib.h>

void side_page_free(side_page *pg)
{
    if (!pg) return;
    for (size_t i = 0; i < pg->n; i++) {
        free(pg->v[i].id);
        free(pg->v[i].version);
        free(pg->v[i].why);
        ews_event_free(pg->v[i].ev);
    }
    free(pg->v);
    free(pg->cursor);
    free(pg->note);
    free(pg);
}

void side_items_free(side_item *v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].version);
        free(v[i].why);
        ews_event_free(v[i].ev);
    }
    free(v);
}

void side_close(side *s)
{
    if (s) s->ops->close(s);
}
