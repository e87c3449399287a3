/*
 * calendar: counting working time (see calendar.h).
 *
 * Time is moved into the city's local clock once (utc + offset), split into a day
 * number and a time of day, and walked forward a day at a time. What keeps the walk
 * short: a week with no listed date (holiday or swapped day) in it has exactly
 * week_work of working time, so from any local midnight the walk jumps over every
 * whole week before the next listed date in one step. What remains is a few days
 * around each listed date and the last week, whatever the span.
 */
#include "calendar.h"

#define MIN_MS  INT64_C(60000)
#define DAY_MS  INT64_C(86400000)
#define NO_DATE INT64_MAX

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    /* C rounds toward zero; a time before 1970 (or a negative offset across it) must
     * still land on the day it falls in. */
    if (a % b != 0 && (a < 0) != (b < 0)) {
        q--;
    }
    return q;
}

int32_t
calendar_days_from_date(int y, int m, int d)
{
    /* Days from civil (H. Hinnant): years counted from March, so the leap day is the
     * last day of its year, and 400-year eras of 146097 days. */
    int      era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + (int)doe - 719468);
}

int
calendar_weekday(int32_t day)
{
    int r = (int)(((int64_t)day + 3) % 7);

    /* 1970-01-01 was a Thursday, ISO weekday 4. */
    return (r < 0 ? r + 7 : r) + 1;
}

void
calendar_set_default(calendar *c)
{
    c->workdays             = 0x1f;   /* Monday to Friday */
    c->spans[0].start_min   = 9 * 60;
    c->spans[0].end_min     = 12 * 60;
    c->spans[1].start_min   = 13 * 60 + 30;
    c->spans[1].end_min     = 17 * 60 + 30;
    c->n_spans              = 2;
    c->holidays             = NULL;
    c->n_holidays           = 0;
    c->working_weekends     = NULL;
    c->n_working_weekends   = 0;
}

/* ---- the listed dates ------------------------------------------------------------ */

/* Index of the first element of a (sorted) that is >= day. */
static size_t
lower_bound(const int32_t *a, size_t n, int64_t day)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if ((int64_t)a[mid] < day) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool
listed(const int32_t *a, size_t n, int64_t day)
{
    size_t i = lower_bound(a, n, day);

    return i < n && (int64_t)a[i] == day;
}

/* The first holiday or swapped day on or after day, or NO_DATE. */
static int64_t
next_listed(const calendar *c, int64_t day)
{
    size_t  h = lower_bound(c->holidays, c->n_holidays, day);
    size_t  w = lower_bound(c->working_weekends, c->n_working_weekends, day);
    int64_t next = NO_DATE;

    if (h < c->n_holidays) {
        next = c->holidays[h];
    }
    if (w < c->n_working_weekends && (int64_t)c->working_weekends[w] < next) {
        next = c->working_weekends[w];
    }
    return next;
}

static bool
working_day(const calendar *c, int64_t day)
{
    if (listed(c->working_weekends, c->n_working_weekends, day)) {
        return true;
    }
    if (listed(c->holidays, c->n_holidays, day)) {
        return false;
    }
    return (c->workdays >> (calendar_weekday((int32_t)day) - 1)) & 1u;
}

bool
calendar_is_working_day(const calendar *c, int32_t day)
{
    return working_day(c, day);
}

static int64_t
day_work_ms(const calendar *c)
{
    int64_t ms = 0;
    size_t  i;

    for (i = 0; i < c->n_spans && i < CALENDAR_MAX_SPANS; i++) {
        ms += (int64_t)(c->spans[i].end_min - c->spans[i].start_min) * MIN_MS;
    }
    return ms;
}

static int64_t
week_work_ms(const calendar *c)
{
    int d, n = 0;

    for (d = 0; d < 7; d++) {
        n += (c->workdays >> d) & 1u;
    }
    return n * day_work_ms(c);
}

static bool
in_range(int64_t ms)
{
    return ms >= -CALENDAR_MAX_ABS_MS && ms <= CALENDAR_MAX_ABS_MS;
}

/* ---- counting -------------------------------------------------------------------- */

int64_t
calendar_add_checked(const calendar *c, int utc_offset_min, int64_t from_ms,
                     int64_t span_ms, bool *fell_back)
{
    const int64_t off       = (int64_t)utc_offset_min * MIN_MS;
    const int64_t week_work = week_work_ms(c);
    int64_t       local, day, tod, rem = span_ms, idle = 0;
    size_t        i, n_spans = c->n_spans < CALENDAR_MAX_SPANS ? c->n_spans
                                                               : CALENDAR_MAX_SPANS;

    if (fell_back != NULL) {
        *fell_back = false;
    }
    if (span_ms <= 0) {
        return from_ms;
    }
    if (!in_range(from_ms) || span_ms > CALENDAR_MAX_ABS_MS
        || utc_offset_min < -CALENDAR_MINUTES_PER_DAY
        || utc_offset_min > CALENDAR_MINUTES_PER_DAY) {
        goto fallback;
    }
    local = from_ms + off;
    day   = floor_div(local, DAY_MS);
    tod   = local - day * DAY_MS;
    for (;;) {
        bool worked = false;

        if (tod == 0) {
            int64_t next = next_listed(c, day);
            int64_t k    = next == NO_DATE ? INT64_MAX : (next - day) / 7;

            /* Whole plain weeks, leaving at least 1 ms for the walk to place. With no
             * working weekday only listed dates can work: jump towards the next one,
             * but no farther than the give-up distance. */
            if (week_work > 0) {
                if ((rem - 1) / week_work < k) {
                    k = (rem - 1) / week_work;
                }
            } else if (k > CALENDAR_GIVE_UP_DAYS / 7 + 1) {
                k = CALENDAR_GIVE_UP_DAYS / 7 + 1;
            }
            if (k > 0) {
                day += 7 * k;
                rem -= k * week_work;
                idle = week_work > 0 ? 0 : idle + 7 * k;
                if (idle > CALENDAR_GIVE_UP_DAYS) {
                    goto fallback;
                }
                continue;
            }
        }
        if (working_day(c, day)) {
            for (i = 0; i < n_spans; i++) {
                int64_t s = c->spans[i].start_min * MIN_MS;
                int64_t e = c->spans[i].end_min * MIN_MS;

                if (tod >= e) {
                    continue;
                }
                if (tod > s) {
                    s = tod;
                }
                if (rem <= e - s) {
                    return day * DAY_MS + s + rem - off;
                }
                rem -= e - s;
                worked = true;
            }
        }
        idle = worked ? 0 : idle + 1;
        if (idle > CALENDAR_GIVE_UP_DAYS) {
            goto fallback;
        }
        day++;
        tod = 0;
    }

fallback:
    if (fell_back != NULL) {
        *fell_back = true;
    }
    /* Saturating, for times no caller should pass but a corrupt record might. */
    if (from_ms > 0 && span_ms > INT64_MAX - from_ms) {
        return INT64_MAX;
    }
    return from_ms + span_ms;
}

int64_t
calendar_add(const calendar *c, int utc_offset_min, int64_t from_ms, int64_t span_ms)
{
    return calendar_add_checked(c, utc_offset_min, from_ms, span_ms, NULL);
}

int64_t
calendar_between(const calendar *c, int utc_offset_min, int64_t a_ms, int64_t b_ms)
{
    const int64_t off       = (int64_t)utc_offset_min * MIN_MS;
    const int64_t week_work = week_work_ms(c);
    int64_t       la, lb, day, tod, end_day, end_tod, total = 0;
    size_t        i, n_spans = c->n_spans < CALENDAR_MAX_SPANS ? c->n_spans
                                                               : CALENDAR_MAX_SPANS;

    if (b_ms <= a_ms || !in_range(a_ms) || !in_range(b_ms)
        || utc_offset_min < -CALENDAR_MINUTES_PER_DAY
        || utc_offset_min > CALENDAR_MINUTES_PER_DAY) {
        return 0;
    }
    la      = a_ms + off;
    lb      = b_ms + off;
    day     = floor_div(la, DAY_MS);
    tod     = la - day * DAY_MS;
    end_day = floor_div(lb, DAY_MS);
    end_tod = lb - end_day * DAY_MS;
    while (day < end_day || (day == end_day && tod < end_tod)) {
        int64_t lim;

        if (tod == 0 && day < end_day) {
            int64_t next = next_listed(c, day);
            int64_t k    = (end_day - day) / 7;

            if (next != NO_DATE && (next - day) / 7 < k) {
                k = (next - day) / 7;
            }
            if (k > 0) {
                total += k * week_work;
                day += 7 * k;
                continue;
            }
        }
        lim = day == end_day ? end_tod : DAY_MS;
        if (working_day(c, day)) {
            for (i = 0; i < n_spans; i++) {
                int64_t s = c->spans[i].start_min * MIN_MS;
                int64_t e = c->spans[i].end_min * MIN_MS;

                if (s < tod) {
                    s = tod;
                }
                if (e > lim) {
                    e = lim;
                }
                if (e > s) {
                    total += e - s;
                }
            }
        }
        day++;
        tod = 0;
    }
    return total;
}

/* ---- parsing --------------------------------------------------------------------- */

static int
digits(const char *s, int n)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int
days_in_month(int y, int m)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool             leap    = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dim[m - 1];
}

int
calendar_parse_date(const char *s, int32_t *day)
{
    int y, m, d;

    if (s == NULL || s[0] == '\0' || s[1] == '\0' || s[2] == '\0' || s[3] == '\0'
        || s[4] != '-' || s[5] == '\0' || s[6] == '\0' || s[7] != '-' || s[8] == '\0'
        || s[9] == '\0' || s[10] != '\0') {
        return -1;
    }
    y = digits(s, 4);
    m = digits(s + 5, 2);
    d = digits(s + 8, 2);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
        return -1;
    }
    *day = calendar_days_from_date(y, m, d);
    return 0;
}

/* "HH:MM" at s into minutes since midnight; "24:00" only when end is true. */
static int
parse_clock(const char *s, bool end)
{
    int h, m;

    if (s[2] != ':') {
        return -1;
    }
    h = digits(s, 2);
    m = digits(s + 3, 2);
    if (h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && (!end || m != 0))) {
        return -1;
    }
    return h * 60 + m;
}

int
calendar_parse_span(const char *s, calendar_span *out)
{
    int i, start, end;

    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < 11; i++) {
        if (s[i] == '\0') {
            return -1;
        }
    }
    if (s[11] != '\0' || s[5] != '-') {
        return -1;
    }
    start = parse_clock(s, false);
    end   = parse_clock(s + 6, true);
    if (start < 0 || end < 0 || end <= start) {
        return -1;
    }
    out->start_min = (int16_t)start;
    out->end_min   = (int16_t)end;
    return 0;
}
