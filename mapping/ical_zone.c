#include "ical_zone.h"

#include <string.h>

static const char *tzid_param(icalproperty *p)
{
    icalparameter *par = p ? icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER) : NULL;
    return par ? icalparameter_get_tzid(par) : NULL;
}

static icalcomponent *find_vtimezone(icalcomponent *cal, const char *tzid)
{
    icalcomponent *c;
    for (icalcompiter ci = icalcomponent_begin_component(cal, ICAL_VTIMEZONE_COMPONENT);
         (c = icalcompiter_deref(&ci)) != NULL; icalcompiter_next(&ci)) {
        icalproperty *p = icalcomponent_get_first_property(c, ICAL_TZID_PROPERTY);
        if (p && !strcmp(icalproperty_get_tzid(p), tzid)) return c;
    }
    return NULL;
}

/* X-LIC-LOCATION names the IANA zone of a VTIMEZONE written by libical. */
static const char *vtimezone_location(icalcomponent *vtz)
{
    for (icalproperty *p = icalcomponent_get_first_property(vtz, ICAL_X_PROPERTY); p;
         p = icalcomponent_get_next_property(vtz, ICAL_X_PROPERTY))
        if (!strcmp(icalproperty_get_x_name(p), "X-LIC-LOCATION")) return icalproperty_get_x(p);
    return NULL;
}

static int by_windows(const map_ctx *ctx, const char *name, ical_zone *out)
{
    const char *w = tzmap_windows(ctx->tz, name);
    icaltimezone *z = w ? tzmap_zone(ctx->tz, w) : NULL;
    if (!z) return -1;
    out->windows = w;
    out->zone = z;
    return 0;
}

int ical_zone_resolve(icalcomponent *cal, icalproperty *p, const map_ctx *ctx,
                      tzdef_cache *cache, ical_zone *out)
{
    memset(out, 0, sizeof *out);
    struct icaltimetype t = p ? icalvalue_get_datetime(icalproperty_get_value(p))
                              : icaltime_null_time();
    const char *tzid = tzid_param(p);
    out->tzid = tzid;
    if (!tzid && (t.is_date || !icaltime_is_utc(t))) {
        if (by_windows(ctx, ctx->default_tz ? ctx->default_tz : "Etc/UTC", out) == 0) return 0;
        return by_windows(ctx, "Etc/UTC", out);
    }
    if (!tzid) return by_windows(ctx, "Etc/UTC", out);
    if (by_windows(ctx, tzid, out) == 0) return 0;
    icalcomponent *vtz = find_vtimezone(cal, tzid);
    const char *loc = vtz ? vtimezone_location(vtz) : NULL;
    if (loc && by_windows(ctx, loc, out) == 0) return 0;
    char why[160];
    if (vtz && tzdef_from_vtimezone(vtz, &out->tzd, why, sizeof why) == 0) {
        out->zone = tzdef_zone(out->tzd, cache);
        if (out->zone) return 0;
        tzdef_free(out->tzd);
        out->tzd = NULL;
    }
    out->unknown = 1;
    return by_windows(ctx, "Etc/UTC", out);
}

struct icaltimetype ical_zone_wall(icalproperty *p, const ical_zone *z)
{
    struct icaltimetype t = icalvalue_get_datetime(icalproperty_get_value(p));
    if (t.is_date) return t;
    if (icaltime_is_utc(t)) {
        t.zone = icaltimezone_get_utc_timezone();
        return icaltime_convert_to_zone(t, z->zone);
    }
    t.zone = z->zone;
    return t;
}

long long ical_zone_utc(struct icaltimetype wall, const ical_zone *z)
{
    wall.is_date = 0;
    return (long long)icaltime_as_timet_with_zone(wall, z->zone);
}

struct icaltimetype ical_zone_wall_in(icalcomponent *cal, icalproperty *p,
                                      struct icaltimetype t, const map_ctx *ctx,
                                      tzdef_cache *cache, const ical_zone *target)
{
    if (t.is_date || (!icaltime_is_utc(t) && !tzid_param(p))) return t;
    ical_zone pz;
    if (ical_zone_resolve(cal, p, ctx, cache, &pz) != 0) return t;
    t.zone = icaltime_is_utc(t) ? icaltimezone_get_utc_timezone() : pz.zone;
    tzdef_free(pz.tzd);
    return icaltime_convert_to_zone(t, target->zone);
}
