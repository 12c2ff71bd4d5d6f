#include "recur.h"

#include <stdio.h>
#include <string.h>

const char *const RECUR_DAY_NAMES[10] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday", "Day", "Weekday", "WeekendDay"};
const char *const RECUR_MONTH_NAMES[12] = {
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December"};
const char *const RECUR_WEEK_INDEX[6] = {"", "First", "Second", "Third", "Fourth", "Last"};
const char *const RECUR_ICAL_DAYS[7] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};

/* ---- calendar arithmetic (proleptic Gregorian, H. Hinnant's algorithm) -- */

long recur_days(recur_date d)
{
    int y = d.y - (d.m <= 2);
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (d.m + (d.m > 2 ? -3 : 9)) + 2) / 5 + d.d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

recur_date recur_from_days(long z)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    recur_date r;
    r.d = (int)(doy - (153 * mp + 2) / 5 + 1);
    r.m = (int)(mp < 10 ? mp + 3 : mp - 9);
    r.y = (int)(yoe + era * 400 + (r.m <= 2));
    return r;
}

int recur_dow(recur_date d)
{
    long n = recur_days(d);
    return (int)(((n % 7) + 7 + 4) % 7);   /* 1970-01-01 was a Thursday */
}

int recur_cmp(recur_date a, recur_date b)
{
    long x = recur_days(a), y = recur_days(b);
    return x < y ? -1 : x > y;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m < 1 || m > 12) return 0;   /* a month from untrusted data: no days */
    return m == 2 ? 28 + leap : dim[m - 1];
}

/* ---- membership: is date d one of the pattern's dates? ---------------- */

static int day_in_set(int dow, int set)
{
    if (set == DOW_DAY) return 1;
    if (set == DOW_WEEKDAY) return dow >= 1 && dow <= 5;
    if (set == DOW_WEEKENDDAY) return dow == 0 || dow == 6;
    return dow == set;
}

int recur_nth_day(int y, int m, int set, int week_index)
{
    int n = days_in_month(y, m), found = 0, last = 0;
    for (int day = 1; day <= n; day++) {
        if (!day_in_set(recur_dow((recur_date){y, m, day}), set)) continue;
        last = day;
        if (week_index != 5 && ++found == week_index) return day;
    }
    return week_index == 5 ? last : 0;
}

static int months_between(recur_date a, recur_date b)
{
    return (b.y - a.y) * 12 + (b.m - a.m);
}

static int clamp_day(int y, int m, int dom)
{
    int n = days_in_month(y, m);
    return dom > n ? n : dom;
}

static int pattern_has(const ews_recurrence *r, recur_date d)
{
    long since = recur_days(d) - recur_days(r->start);
    if (since < 0) return 0;
    switch (r->kind) {
    case RECUR_DAILY:
        return since % r->interval == 0;
    case RECUR_WEEKLY: {
        if (!(r->days & (1u << recur_dow(d)))) return 0;
        long ws = recur_days(r->start) - (recur_dow(r->start) - r->first_day_of_week + 7) % 7;
        long wd = recur_days(d) - (recur_dow(d) - r->first_day_of_week + 7) % 7;
        return ((wd - ws) / 7) % r->interval == 0;
    }
    case RECUR_ABS_MONTHLY:
        return months_between(r->start, d) % r->interval == 0 &&
               d.d == clamp_day(d.y, d.m, r->day_of_month);
    case RECUR_REL_MONTHLY:
        return months_between(r->start, d) % r->interval == 0 &&
               d.d == recur_nth_day(d.y, d.m, r->day_of_week, r->week_index);
    case RECUR_ABS_YEARLY:
        return d.m == r->month && d.d == clamp_day(d.y, d.m, r->day_of_month);
    case RECUR_REL_YEARLY:
        return d.m == r->month && d.d == recur_nth_day(d.y, d.m, r->day_of_week, r->week_index);
    }
    return 0;
}

size_t recur_dates(const ews_recurrence *r, recur_date through, recur_date *out, size_t max)
{
    long last = recur_days(through);
    if (r->range == RANGE_END_DATE && recur_days(r->end) < last) last = recur_days(r->end);
    size_t n = 0;
    for (long day = recur_days(r->start); day <= last && n < max; day++) {
        if (r->range == RANGE_NUMBERED && (int)n >= r->count) break;
        recur_date d = recur_from_days(day);
        if (pattern_has(r, d)) out[n++] = d;
    }
    return n;
}

int recur_index_of(const ews_recurrence *r, recur_date d)
{
    if (!pattern_has(r, d)) return 0;
    if (r->range == RANGE_END_DATE && recur_cmp(d, r->end) > 0) return 0;
    int index = 0;
    for (long day = recur_days(r->start); day <= recur_days(d); day++)
        if (pattern_has(r, recur_from_days(day))) index++;
    if (r->range == RANGE_NUMBERED && index > r->count) return 0;
    return index;
}

/* ---- RRULE -> pattern --------------------------------------------------- */

static int count_set(const short *a, int max)
{
    int n = 0;
    while (n < max && a[n] != ICAL_RECURRENCE_ARRAY_MAX) n++;
    return n;
}

/* A BYDAY set without ordinals as one DaysOfWeek value, or -1. */
static int day_set_value(const struct icalrecurrencetype *r, int n)
{
    unsigned mask = 0;
    /* "-1MO,...,-1FR;BYSETPOS=-1" (last of the last weekdays) is the last
     * weekday; ordinals equal to a BYSETPOS of 1 or -1 change nothing. */
    int setpos = r->by_set_pos[0];
    for (int i = 0; i < n; i++) {
        int pos = icalrecurrencetype_day_position(r->by_day[i]);
        if (pos != 0 && !(pos == setpos && (pos == 1 || pos == -1))) return -1;
        mask |= 1u << (icalrecurrencetype_day_day_of_week(r->by_day[i]) - 1);
    }
    if (mask == 0x7f) return DOW_DAY;
    if (mask == 0x3e) return DOW_WEEKDAY;
    if (mask == 0x41) return DOW_WEEKENDDAY;
    for (int d = 0; d < 7; d++)
        if (mask == 1u << d) return d;
    return -1;
}

static int week_index(int pos)
{
    return pos >= 1 && pos <= 4 ? pos : pos == -1 ? 5 : -1;
}

/* "2TU", or "TU,WE;BYSETPOS=3": one relative day; 0 on success. */
static int relative_day(const struct icalrecurrencetype *r, ews_recurrence *o)
{
    int nday = count_set(r->by_day, ICAL_BY_DAY_SIZE);
    int nset = count_set(r->by_set_pos, ICAL_BY_SETPOS_SIZE);
    if (nday == 1 && nset == 0) {
        o->week_index = week_index(icalrecurrencetype_day_position(r->by_day[0]));
        o->day_of_week = icalrecurrencetype_day_day_of_week(r->by_day[0]) - 1;
        return o->week_index < 0 ? -1 : 0;
    }
    if (nday >= 1 && nset == 1) {
        o->day_of_week = day_set_value(r, nday);
        o->week_index = week_index(r->by_set_pos[0]);
        return o->day_of_week < 0 || o->week_index < 0 ? -1 : 0;
    }
    return -1;
}

/* Exchange puts day 29..31 on the last day of shorter months; iCalendar
 * writes that as BYMONTHDAY=28,...,d;BYSETPOS=-1. A plain BYMONTHDAY=31
 * skips those months instead, which Exchange cannot do. Returns the day or
 * -1. */
static int absolute_day(const struct icalrecurrencetype *r, int start_day)
{
    int nmd = count_set(r->by_month_day, ICAL_BY_MONTHDAY_SIZE);
    int nset = count_set(r->by_set_pos, ICAL_BY_SETPOS_SIZE);
    if (nmd == 0 && nset == 0) return start_day <= 28 ? start_day : -1;
    if (nmd == 1 && nset == 0)
        return r->by_month_day[0] >= 1 && r->by_month_day[0] <= 28 ? r->by_month_day[0] : -1;
    if (nset != 1 || r->by_set_pos[0] != -1 || nmd < 2) return -1;
    for (int i = 0; i < nmd; i++)
        if (r->by_month_day[i] != 28 + i) return -1;
    return 27 + nmd <= 31 ? 27 + nmd : -1;
}

static int map_monthly(const struct icalrecurrencetype *r, struct icaltimetype s,
                       ews_recurrence *o)
{
    int nday = count_set(r->by_day, ICAL_BY_DAY_SIZE);
    int nmd = count_set(r->by_month_day, ICAL_BY_MONTHDAY_SIZE);
    if (nday == 0 && nmd == 1 && r->by_month_day[0] == -1 &&
        !count_set(r->by_set_pos, ICAL_BY_SETPOS_SIZE)) {
        o->kind = RECUR_REL_MONTHLY;
        o->day_of_week = DOW_DAY;
        o->week_index = 5;
        return 0;
    }
    if (nday == 0) {
        o->kind = RECUR_ABS_MONTHLY;
        o->day_of_month = absolute_day(r, s.day);
        return o->day_of_month > 0 ? 0 : -1;
    }
    if (nmd) return -1;
    o->kind = RECUR_REL_MONTHLY;
    return relative_day(r, o);
}

static int map_yearly(const struct icalrecurrencetype *r, struct icaltimetype s,
                      ews_recurrence *o)
{
    int nday = count_set(r->by_day, ICAL_BY_DAY_SIZE);
    int nmonth = count_set(r->by_month, ICAL_BY_MONTH_SIZE);
    int nmd = count_set(r->by_month_day, ICAL_BY_MONTHDAY_SIZE);
    if (nmonth > 1 || ((nday || nmd) && nmonth != 1)) return -1;
    if (o->interval > 1) {
        /* every k years = every 12k months, from the start month */
        if (o->interval > 8 || (nmonth && r->by_month[0] != s.month)) return -1;
        o->interval *= 12;
        return map_monthly(r, s, o);
    }
    o->month = nmonth ? r->by_month[0] : s.month;
    if (nday == 0) {
        o->kind = RECUR_ABS_YEARLY;
        o->day_of_month = absolute_day(r, s.day);
        /* Feb 29 would move to Feb 28 in Exchange; iCalendar skips the year */
        if (o->month == 2 && o->day_of_month == 29 && nmd < 2) return -1;
        return o->day_of_month > 0 ? 0 : -1;
    }
    if (nmd) return -1;
    o->kind = RECUR_REL_YEARLY;
    return relative_day(r, o);
}

static int map_weekly(const struct icalrecurrencetype *r, struct icaltimetype s,
                      ews_recurrence *o)
{
    int nday = count_set(r->by_day, ICAL_BY_DAY_SIZE);
    if (count_set(r->by_month, ICAL_BY_MONTH_SIZE) ||
        count_set(r->by_month_day, ICAL_BY_MONTHDAY_SIZE) ||
        count_set(r->by_set_pos, ICAL_BY_SETPOS_SIZE) || o->interval > 99)
        return -1;
    o->kind = RECUR_WEEKLY;
    for (int i = 0; i < nday; i++) {
        if (icalrecurrencetype_day_position(r->by_day[i])) return -1;
        o->days |= 1u << (icalrecurrencetype_day_day_of_week(r->by_day[i]) - 1);
    }
    if (!nday) o->days = 1u << (icaltime_day_of_week(s) - 1);
    return 0;
}

static int map_pattern(const struct icalrecurrencetype *r, struct icaltimetype s,
                       ews_recurrence *o, const char **why)
{
    *why = "has no Exchange equivalent";
    if (r->by_second[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_minute[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_hour[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_year_day[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_week_no[0] != ICAL_RECURRENCE_ARRAY_MAX)
        return -1;
    o->interval = r->interval > 0 ? r->interval : 1;
    o->first_day_of_week = r->week_start ? r->week_start - 1 : 1;
    switch (r->freq) {
    case ICAL_DAILY_RECURRENCE:
        if (!count_set(r->by_day, ICAL_BY_DAY_SIZE)) {
            if (count_set(r->by_month, ICAL_BY_MONTH_SIZE) ||
                count_set(r->by_month_day, ICAL_BY_MONTHDAY_SIZE) ||
                count_set(r->by_set_pos, ICAL_BY_SETPOS_SIZE) || o->interval > 999)
                return -1;
            o->kind = RECUR_DAILY;
            return 0;
        }
        /* daily on some weekdays is weekly on those days */
        return o->interval == 1 ? map_weekly(r, s, o) : -1;
    case ICAL_WEEKLY_RECURRENCE:
        return map_weekly(r, s, o);
    case ICAL_MONTHLY_RECURRENCE:
        if (count_set(r->by_month, ICAL_BY_MONTH_SIZE) || o->interval > 99) return -1;
        *why = "has no Exchange equivalent (or days 29-31, which Exchange moves "
               "to the end of shorter months)";
        return map_monthly(r, s, o);
    case ICAL_YEARLY_RECURRENCE:
        *why = "has no Exchange equivalent (or Feb 29 / days Exchange would move)";
        return map_yearly(r, s, o);
    default:
        return -1;
    }
}

/* UNTIL is inclusive and UTC; EndDate is the date of the last occurrence in
 * the series' zone, so an UNTIL earlier in the day than the series' start
 * time ends the series the day before. */
static recur_date until_date(struct icaltimetype u, struct icaltimetype s, icaltimezone *zone)
{
    if (!u.is_date && zone) u = icaltime_convert_to_zone(u, zone);
    recur_date d = {u.year, u.month, u.day};
    int u_secs = u.is_date ? 0 : u.hour * 3600 + u.minute * 60 + u.second;
    int s_secs = s.is_date ? 0 : s.hour * 3600 + s.minute * 60 + s.second;
    if (u_secs < s_secs) d = recur_from_days(recur_days(d) - 1);
    return d;
}

int recur_from_rrule(const struct icalrecurrencetype *r, struct icaltimetype local_start,
                     icaltimezone *zone, ews_recurrence *o, char *why, size_t why_len)
{
    memset(o, 0, sizeof *o);
    const char *reason = NULL;
    if (map_pattern(r, local_start, o, &reason) < 0) {
        snprintf(why, why_len, "RRULE %s %s", icalrecurrencetype_as_string((struct icalrecurrencetype *)r), reason);
        return -1;
    }
    o->start = (recur_date){local_start.year, local_start.month, local_start.day};
    if (r->count > 0) {
        o->range = RANGE_NUMBERED;
        o->count = r->count;
        if (o->count > 999) {
            snprintf(why, why_len, "COUNT=%d is more occurrences than Exchange keeps", r->count);
            return -1;
        }
    } else if (!icaltime_is_null_time(r->until)) {
        o->range = RANGE_END_DATE;
        o->end = until_date(r->until, local_start, zone);
    } else {
        o->range = RANGE_NOEND;
    }
    if (recur_index_of(o, o->start) != 1) {
        snprintf(why, why_len, "DTSTART is not an occurrence of its RRULE");
        return -1;
    }
    return 0;
}

/* ---- writers ------------------------------------------------------------ */

static void write_pattern(const ews_recurrence *r, sbuf *b)
{
    switch (r->kind) {
    case RECUR_DAILY:
        sbuf_printf(b, "<t:DailyRecurrence><t:Interval>%d</t:Interval></t:DailyRecurrence>",
                    r->interval);
        break;
    case RECUR_WEEKLY:
        sbuf_printf(b, "<t:WeeklyRecurrence><t:Interval>%d</t:Interval><t:DaysOfWeek>",
                    r->interval);
        for (int d = 0, first = 1; d < 7; d++)
            if (r->days & (1u << d)) {
                sbuf_printf(b, "%s%s", first ? "" : " ", RECUR_DAY_NAMES[d]);
                first = 0;
            }
        sbuf_printf(b, "</t:DaysOfWeek><t:FirstDayOfWeek>%s</t:FirstDayOfWeek>"
                       "</t:WeeklyRecurrence>", RECUR_DAY_NAMES[r->first_day_of_week]);
        break;
    case RECUR_ABS_MONTHLY:
        sbuf_printf(b, "<t:AbsoluteMonthlyRecurrence><t:Interval>%d</t:Interval>"
                       "<t:DayOfMonth>%d</t:DayOfMonth></t:AbsoluteMonthlyRecurrence>",
                    r->interval, r->day_of_month);
        break;
    case RECUR_REL_MONTHLY:
        sbuf_printf(b, "<t:RelativeMonthlyRecurrence><t:Interval>%d</t:Interval>"
                       "<t:DaysOfWeek>%s</t:DaysOfWeek><t:DayOfWeekIndex>%s"
                       "</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence>",
                    r->interval, RECUR_DAY_NAMES[r->day_of_week],
                    RECUR_WEEK_INDEX[r->week_index]);
        break;
    case RECUR_ABS_YEARLY:
        sbuf_printf(b, "<t:AbsoluteYearlyRecurrence><t:DayOfMonth>%d</t:DayOfMonth>"
                       "<t:Month>%s</t:Month></t:AbsoluteYearlyRecurrence>",
                    r->day_of_month, RECUR_MONTH_NAMES[r->month - 1]);
        break;
    case RECUR_REL_YEARLY:
        sbuf_printf(b, "<t:RelativeYearlyRecurrence><t:DaysOfWeek>%s</t:DaysOfWeek>"
                       "<t:DayOfWeekIndex>%s</t:DayOfWeekIndex><t:Month>%s</t:Month>"
                       "</t:RelativeYearlyRecurrence>",
                    RECUR_DAY_NAMES[r->day_of_week], RECUR_WEEK_INDEX[r->week_index],
                    RECUR_MONTH_NAMES[r->month - 1]);
        break;
    }
}

void recur_write(const ews_recurrence *r, sbuf *b)
{
    char start[11], end[11];
    snprintf(start, sizeof start, "%04d-%02d-%02d", r->start.y, r->start.m, r->start.d);
    snprintf(end, sizeof end, "%04d-%02d-%02d", r->end.y, r->end.m, r->end.d);
    sbuf_cat(b, "<t:Recurrence>");
    write_pattern(r, b);
    if (r->range == RANGE_NUMBERED)
        sbuf_printf(b, "<t:NumberedRecurrence><t:StartDate>%s</t:StartDate>"
                       "<t:NumberOfOccurrences>%d</t:NumberOfOccurrences>"
                       "</t:NumberedRecurrence>", start, r->count);
    else if (r->range == RANGE_END_DATE)
        sbuf_printf(b, "<t:EndDateRecurrence><t:StartDate>%s</t:StartDate>"
                       "<t:EndDate>%s</t:EndDate></t:EndDateRecurrence>", start, end);
    else
        sbuf_printf(b, "<t:NoEndRecurrence><t:StartDate>%s</t:StartDate>"
                       "</t:NoEndRecurrence>", start);
    sbuf_cat(b, "</t:Recurrence>");
}

/* ---- pattern -> RRULE --------------------------------------------------- */

static void rrule_day_set(int set, int week_index, sbuf *b)
{
    int pos = week_index == 5 ? -1 : week_index;
    if (set < 7) {
        sbuf_printf(b, ";BYDAY=%d%s", pos, RECUR_ICAL_DAYS[set]);
        return;
    }
    if (set == DOW_DAY) {
        sbuf_printf(b, ";BYMONTHDAY=%d", pos);
        return;
    }
    sbuf_cat(b, set == DOW_WEEKDAY ? ";BYDAY=MO,TU,WE,TH,FR" : ";BYDAY=SU,SA");
    sbuf_printf(b, ";BYSETPOS=%d", pos);
}

static void rrule_month_day(int dom, sbuf *b)
{
    if (dom <= 28) {
        sbuf_printf(b, ";BYMONTHDAY=%d", dom);
        return;
    }
    sbuf_cat(b, ";BYMONTHDAY=28");
    for (int d = 29; d <= dom; d++) sbuf_printf(b, ",%d", d);
    sbuf_cat(b, ";BYSETPOS=-1");
}

void recur_to_rrule(const ews_recurrence *r, icaltimezone *zone, sbuf *b)
{
    switch (r->kind) {
    case RECUR_DAILY:
        sbuf_printf(b, "FREQ=DAILY;INTERVAL=%d", r->interval);
        break;
    case RECUR_WEEKLY:
        sbuf_printf(b, "FREQ=WEEKLY;INTERVAL=%d;BYDAY=", r->interval);
        for (int d = 0, first = 1; d < 7; d++)
            if (r->days & (1u << d)) {
                sbuf_printf(b, "%s%s", first ? "" : ",", RECUR_ICAL_DAYS[d]);
                first = 0;
            }
        sbuf_printf(b, ";WKST=%s", RECUR_ICAL_DAYS[r->first_day_of_week]);
        break;
    case RECUR_ABS_MONTHLY:
        sbuf_printf(b, "FREQ=MONTHLY;INTERVAL=%d", r->interval);
        rrule_month_day(r->day_of_month, b);
        break;
    case RECUR_REL_MONTHLY:
        sbuf_printf(b, "FREQ=MONTHLY;INTERVAL=%d", r->interval);
        rrule_day_set(r->day_of_week, r->week_index, b);
        break;
    case RECUR_ABS_YEARLY:
        sbuf_printf(b, "FREQ=YEARLY;BYMONTH=%d", r->month);
        rrule_month_day(r->day_of_month, b);
        break;
    case RECUR_REL_YEARLY:
        sbuf_printf(b, "FREQ=YEARLY;BYMONTH=%d", r->month);
        rrule_day_set(r->day_of_week, r->week_index, b);
        break;
    }
    if (r->range == RANGE_NUMBERED) {
        sbuf_printf(b, ";COUNT=%d", r->count);
    } else if (r->range == RANGE_END_DATE && !zone) {
        sbuf_printf(b, ";UNTIL=%04d%02d%02d", r->end.y, r->end.m, r->end.d);
    } else if (r->range == RANGE_END_DATE) {
        struct icaltimetype u = icaltime_null_time();
        u.year = r->end.y, u.month = r->end.m, u.day = r->end.d;
        u.hour = 23, u.minute = 59, u.second = 59;
        u = icaltime_set_timezone(&u, zone);
        u = icaltime_convert_to_zone(u, icaltimezone_get_utc_timezone());
        sbuf_printf(b, ";UNTIL=%04d%02d%02dT%02d%02d%02dZ", u.year, u.month, u.day,
                    u.hour, u.minute, u.second);
    }
}
