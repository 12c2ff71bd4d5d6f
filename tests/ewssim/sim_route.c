#include "sim_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sim_route_group(const sim_route *r, const char *mailbox)
{
    unsigned long h = 2166136261UL;
    for (const char *c = mailbox ? mailbox : ""; *c; c++) {
        unsigned char ch = (unsigned char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        h = (h ^ ch) * 16777619UL & 0xffffffffUL;
    }
    return (int)(h % (unsigned long)(r->groups > 0 ? r->groups : 1));
}

static int parse_cookie(const sim_route *r, const char *header)
{
    const char *v = header ? strstr(header, "X-BackEndOverrideCookie=") : NULL;
    int g, k;
    if (!v || sscanf(v + 24, "SIMPR0%dMB00%d.sim.local~", &g, &k) != 2) return -1;
    if (g < 0 || g >= r->groups || k < 0 || k >= SIM_SERVERS_PER_GROUP) return -1;
    return g * SIM_SERVERS_PER_GROUP + k;
}

int sim_route_server(sim_route *r, const char *cookie_header, const char *anchor)
{
    int server = parse_cookie(r, cookie_header);
    if (server >= 0) return server;
    return sim_route_group(r, anchor) * SIM_SERVERS_PER_GROUP +
           (int)(r->turn++ % SIM_SERVERS_PER_GROUP);
}

int sim_route_home(sim_route *r, int server, const char *mailbox)
{
    int g = sim_route_group(r, mailbox);
    if (server / SIM_SERVERS_PER_GROUP == g) return server;
    return g * SIM_SERVERS_PER_GROUP + (int)(r->turn++ % SIM_SERVERS_PER_GROUP);
}

void sim_route_name(int server, char *out, size_t size)
{
    snprintf(out, size, "SIMPR0%dMB00%d.sim.local", server / SIM_SERVERS_PER_GROUP,
             server % SIM_SERVERS_PER_GROUP);
}

void sim_route_cookie(int server, char *out, size_t size)
{
    char name[64];
    sim_route_name(server, name, sizeof name);
    snprintf(out, size, "X-BackEndOverrideCookie=%s~%d; path=/; secure; HttpOnly", name,
             1941996295 + server);
}

void sim_route_grouping(const sim_route *r, const char *mailbox, char *out, size_t size)
{
    snprintf(out, size, "SIMPR0%d", sim_route_group(r, mailbox));
}
