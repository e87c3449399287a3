/*
 * test_calendar: working time on the business calendar: weekends, public holidays,
 * swapped working days, counting from outside working hours, spans of weeks,
 * calendar_between as the inverse of calendar_add, the city's UTC offset at day
 * boundaries, a calendar with no working time, and the date and span parsers. A
 * minute-by-minute reference built on gmtime checks both functions on many spans.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "calendar.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MIN_MS  INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define CST     (8 * 60)          /* China Standard Time, +08:00 */

/* The instant of local time y-m-d hh:mm in a city at off minutes from UTC. */
static int64_t
at(int off, int y, int m, int d, int hh, int mm)
{
    return ((int64_t)calendar_days_from_date(y, m, d) * 1440 + hh * 60 + mm - off) * MIN_MS;
}

static int32_t
day_of(const char *s)
{
    int32_t d = 0;

    if (calendar_parse_date(s, &d) != 0) {
        fail_msg("bad date in the test: %s", s);
    }
    return d;
}

/* Prints local time for a failure message. */
static const char *
show(int off, int64_t ms, char *buf, size_t cap)
{
    time_t    secs = (time_t)((ms + off * MIN_MS) / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    strftime(buf, cap, "%Y-%m-%d %a %H:%M:%S", &tm);
    return buf;
}

static void
expect_at(int off, int64_t got, int64_t want)
{
    char a[48], b[48];

    if (got != want) {
        fail_msg("got %s, want %s (local)", show(off, got, a, sizeof a),
                 show(off, want, b, sizeof b));
    }
}

/* A calendar with 2026's National Day and Qingming holidays and the swapped working
 * Saturday 2026-10-10. */
static int32_t holidays_2026[10];
static int32_t swapped_2026[2];

static calendar
calendar_2026(void)
{
    static const char *const hol[] = {
        "2026-04-04", "2026-04-05", "2026-04-06", "2026-10-01", "2026-10-02",
        "2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07",
    };
    calendar c;
    size_t   i;

    for (i = 0; i < 10; i++) {
        holidays_2026[i] = day_of(hol[i]);
    }
    swapped_2026[0] = day_of("2026-09-20");
    swapped_2026[1] = day_of("2026-10-10");
    calendar_set_default(&c);
    c.holidays           = holidays_2026;
    c.n_holidays         = 10;
    c.working_weekends   = swapped_2026;
    c.n_working_weekends = 2;
    return c;
}

/* ---- calendar_add ------------------------------------------------------------------ */

static void
test_four_hours_from_friday_afternoon_end_on_monday_morning(void **state)
{
    calendar c = calendar_2026();

    /* Friday 2026-03-13: 16:00-17:30 is 1.5 h; the other 2.5 h run 09:00-11:30 Monday. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 13, 16, 0), 4 * HOUR_MS),
              at(CST, 2026, 3, 16, 11, 30));
}

static void
test_a_public_holiday_is_skipped(void **state)
{
    calendar c = calendar_2026();

    /* Friday 2026-04-03 16:00; Saturday to Monday is Qingming: Tuesday 11:30. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 4, 3, 16, 0), 4 * HOUR_MS),
              at(CST, 2026, 4, 7, 11, 30));
    /* Dispatched during the holiday: counting starts on Tuesday at 09:00. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 4, 6, 10, 0), HOUR_MS),
              at(CST, 2026, 4, 7, 10, 0));
    /* National Day: Wednesday 2026-09-30 17:00 + 1 h: half an hour that day, the rest
     * after the holiday week, on Thursday the 8th. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 9, 30, 17, 0), HOUR_MS),
              at(CST, 2026, 10, 8, 9, 30));
}

static void
test_a_swapped_working_saturday_counts(void **state)
{
    calendar c = calendar_2026();

    /* Friday 2026-10-09 16:00 + 4 h: Saturday the 10th works, so 11:30 that Saturday. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 10, 9, 16, 0), 4 * HOUR_MS),
              at(CST, 2026, 10, 10, 11, 30));
    /* Saturday 17:00 + 1 h: Sunday the 11th does not work; Monday 09:30. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 10, 10, 17, 0), HOUR_MS),
              at(CST, 2026, 10, 12, 9, 30));
    /* A swapped Sunday: 2026-09-20, between two ordinary weeks. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 9, 19, 10, 0), HOUR_MS),
              at(CST, 2026, 9, 20, 10, 0));
    assert_true(calendar_is_working_day(&c, day_of("2026-10-10")));
    assert_false(calendar_is_working_day(&c, day_of("2026-10-11")));
    assert_false(calendar_is_working_day(&c, day_of("2026-10-01")));
}

static void
test_counting_from_outside_hours_starts_at_the_next_working_moment(void **state)
{
    calendar c = calendar_2026();

    /* Before opening, at lunch, after closing, on a Saturday. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 16, 7, 0), HOUR_MS),
              at(CST, 2026, 3, 16, 10, 0));
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 16, 12, 30), HOUR_MS),
              at(CST, 2026, 3, 16, 14, 30));
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 16, 17, 30), MIN_MS),
              at(CST, 2026, 3, 17, 9, 1));
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 14, 10, 0), HOUR_MS),
              at(CST, 2026, 3, 16, 10, 0));
    /* Inside hours, to the millisecond. */
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 16, 11, 0) + 1234, 1),
              at(CST, 2026, 3, 16, 11, 0) + 1235);
}

static void
test_a_span_ending_at_a_break_ends_at_the_break(void **state)
{
    calendar c = calendar_2026();

    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 16, 9, 0), 3 * HOUR_MS),
              at(CST, 2026, 3, 16, 12, 0));
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 16, 9, 0), 7 * HOUR_MS),
              at(CST, 2026, 3, 16, 17, 30));
    expect_at(CST, calendar_add(&c, CST, at(CST, 2026, 3, 16, 9, 0), 7 * HOUR_MS + 1),
              at(CST, 2026, 3, 17, 9, 0) + 1);
}

static void
test_a_zero_span_is_the_start_itself(void **state)
{
    calendar c = calendar_2026();
    int64_t  sat = at(CST, 2026, 3, 14, 10, 0);

    assert_int_equal(calendar_add(&c, CST, sat, 0), sat);
    assert_int_equal(calendar_add(&c, CST, sat, -5), sat);
}

static void
test_spans_of_weeks(void **state)
{
    calendar c = calendar_2026();
    int64_t  from, got;

    /* "7d" of working time is 168 h: 24 working days of 7 h. From Monday 2026-03-02
     * 09:00 the 24th working day is Thursday 2026-04-02, ending at its close. */
    from = at(CST, 2026, 3, 2, 9, 0);
    expect_at(CST, calendar_add(&c, CST, from, 168 * HOUR_MS), at(CST, 2026, 4, 2, 17, 30));
    /* One hour more ends on Friday the 3rd; eight more, the last after Qingming
     * (Saturday the 4th to Monday the 6th), on Tuesday the 7th. */
    expect_at(CST, calendar_add(&c, CST, from, 169 * HOUR_MS), at(CST, 2026, 4, 3, 10, 0));
    expect_at(CST, calendar_add(&c, CST, from, 176 * HOUR_MS), at(CST, 2026, 4, 7, 10, 0));
    /* Across the National Day holidays and both swapped days: from Monday 2026-09-14
     * 09:00, 15 working days of 7 h. Working days: 14-18 (5), 20 Sunday swapped (6),
     * 21-25 (11), 28-30 (14), then 8, 9, 10 October: the 15th is Thursday the 8th. */
    from = at(CST, 2026, 9, 14, 9, 0);
    expect_at(CST, calendar_add(&c, CST, from, 15 * 7 * HOUR_MS), at(CST, 2026, 10, 8, 17, 30));
    expect_at(CST, calendar_add(&c, CST, from, 17 * 7 * HOUR_MS),
              at(CST, 2026, 10, 10, 17, 30));
    /* The longest SLA the city file allows (366 days of working time: years of
     * calendar) comes back, and is exact. */
    got = calendar_add(&c, CST, from, 366LL * 24 * HOUR_MS);
    assert_true(got > from + 4LL * 365 * 24 * HOUR_MS);
    assert_int_equal(calendar_between(&c, CST, from, got), 366LL * 24 * HOUR_MS);
}

/* ---- calendar_between ------------------------------------------------------------- */

static void
test_between_counts_working_time_in_the_interval(void **state)
{
    calendar c = calendar_2026();

    assert_int_equal(calendar_between(&c, CST, at(CST, 2026, 3, 13, 16, 0),
                                      at(CST, 2026, 3, 16, 11, 30)), 4 * HOUR_MS);
    /* A whole ordinary week is 35 h; the week of Qingming (Monday the 6th off) 28 h. */
    assert_int_equal(calendar_between(&c, CST, at(CST, 2026, 3, 9, 0, 0),
                                      at(CST, 2026, 3, 16, 0, 0)), 35 * HOUR_MS);
    assert_int_equal(calendar_between(&c, CST, at(CST, 2026, 4, 6, 0, 0),
                                      at(CST, 2026, 4, 13, 0, 0)), 28 * HOUR_MS);
    /* Empty and reversed intervals. */
    assert_int_equal(calendar_between(&c, CST, at(CST, 2026, 3, 16, 10, 0),
                                      at(CST, 2026, 3, 16, 10, 0)), 0);
    assert_int_equal(calendar_between(&c, CST, at(CST, 2026, 3, 16, 11, 0),
                                      at(CST, 2026, 3, 16, 10, 0)), 0);
    /* Lunch alone, a weekend alone. */
    assert_int_equal(calendar_between(&c, CST, at(CST, 2026, 3, 16, 12, 0),
                                      at(CST, 2026, 3, 16, 13, 30)), 0);
    assert_int_equal(calendar_between(&c, CST, at(CST, 2026, 3, 13, 17, 30),
                                      at(CST, 2026, 3, 16, 9, 0)), 0);
}

static void
test_between_is_the_inverse_of_add(void **state)
{
    static const int64_t spans[] = {
        1, MIN_MS, HOUR_MS, 3 * HOUR_MS, 7 * HOUR_MS, 7 * HOUR_MS + 1, 24 * HOUR_MS,
        134 * HOUR_MS + 24 * MIN_MS, 15LL * 24 * HOUR_MS,
    };
    calendar c = calendar_2026();
    int64_t  from = at(CST, 2026, 9, 1, 0, 0);
    size_t   i;

    /* Starts every 97 minutes through September and October 2026, so they fall inside
     * and outside hours, on weekends, holidays and swapped days. */
    for (; from < at(CST, 2026, 11, 1, 0, 0); from += 97 * MIN_MS) {
        for (i = 0; i < sizeof spans / sizeof spans[0]; i++) {
            int64_t end = calendar_add(&c, CST, from, spans[i]);

            assert_true(end > from);
            assert_int_equal(calendar_between(&c, CST, from, end), spans[i]);
            /* And not a moment later than needed: just before end, less has passed. */
            assert_int_equal(calendar_between(&c, CST, from, end - 1), spans[i] - 1);
        }
    }
}

/* ---- the city's clock --------------------------------------------------------------- */

static void
test_utc_offset_places_day_boundaries_in_the_city_clock(void **state)
{
    calendar c = calendar_2026();
    int64_t  utc_sat_midnight = at(0, 2026, 3, 13, 16, 0);   /* Saturday 00:00 at +08:00 */

    /* 16:00 UTC Friday is already Saturday in the city: nothing counts until Monday. */
    expect_at(CST, calendar_add(&c, CST, utc_sat_midnight, HOUR_MS),
              at(CST, 2026, 3, 16, 10, 0));
    assert_int_equal(calendar_add(&c, CST, utc_sat_midnight, HOUR_MS),
                     at(0, 2026, 3, 16, 2, 0));
    /* 01:00 UTC Monday is 09:00 in the city, the opening. */
    assert_int_equal(calendar_add(&c, CST, at(0, 2026, 3, 16, 1, 0), 30 * MIN_MS),
                     at(0, 2026, 3, 16, 1, 30));
    /* 23:30 UTC Sunday is Monday 07:30 in the city. */
    assert_int_equal(calendar_add(&c, CST, at(0, 2026, 3, 15, 23, 30), HOUR_MS),
                     at(0, 2026, 3, 16, 2, 0));
    /* Read at UTC, the same instant is Friday 16:00 with 1.5 h left that day. */
    assert_int_equal(calendar_add(&c, 0, utc_sat_midnight, HOUR_MS),
                     at(0, 2026, 3, 13, 17, 0));
    /* A city behind UTC: Friday 16:00 at -05:00 is 21:00 UTC. */
    assert_int_equal(calendar_add(&c, -300, at(0, 2026, 3, 13, 21, 0), 4 * HOUR_MS),
                     at(-300, 2026, 3, 16, 11, 30));
    assert_int_equal(calendar_between(&c, CST, at(0, 2026, 3, 13, 8, 0),
                                      at(0, 2026, 3, 16, 3, 30)), 4 * HOUR_MS);
    /* Holidays are the city's dates: 02:00 UTC on 1 October is 10:00 on the holiday,
     * and 02:00 UTC on the 8th is 10:00 on a working Thursday. */
    assert_int_equal(calendar_between(&c, CST, at(0, 2026, 9, 30, 9, 0),
                                      at(0, 2026, 10, 1, 2, 0)), 30 * MIN_MS);
    assert_int_equal(calendar_between(&c, CST, at(0, 2026, 10, 7, 9, 0),
                                      at(0, 2026, 10, 8, 2, 0)), HOUR_MS);
}

static void
test_times_before_1970_land_on_their_own_day(void **state)
{
    calendar c;

    calendar_set_default(&c);
    /* Friday 1969-12-26 16:00 UTC: the division by a day must round down. */
    assert_int_equal(calendar_weekday(day_of("1970-01-01")), 4);
    assert_int_equal(calendar_days_from_date(1969, 12, 26), -6);
    assert_int_equal(calendar_weekday(-6), 5);
    assert_int_equal(calendar_add(&c, 0, at(0, 1969, 12, 26, 16, 0), 4 * HOUR_MS),
                     at(0, 1969, 12, 29, 11, 30));
    assert_int_equal(calendar_add(&c, 60, at(60, 1969, 12, 31, 23, 30), HOUR_MS),
                     at(60, 1970, 1, 1, 10, 0));
}

/* ---- a calendar with no working time ---------------------------------------------- */

static void
test_a_calendar_without_working_time_gives_up_at_once(void **state)
{
    calendar c;
    int32_t  far[1];
    int64_t  from = at(CST, 2026, 3, 13, 16, 0);
    bool     fell_back = false;
    clock_t  t0 = clock();

    calendar_set_default(&c);
    c.workdays = 0;
    assert_int_equal(calendar_add_checked(&c, CST, from, HOUR_MS, &fell_back), from + HOUR_MS);
    assert_true(fell_back);
    assert_int_equal(calendar_between(&c, CST, from, from + 100LL * 366 * 24 * HOUR_MS), 0);

    calendar_set_default(&c);
    c.n_spans = 0;
    assert_int_equal(calendar_add_checked(&c, CST, from, HOUR_MS, &fell_back), from + HOUR_MS);
    assert_true(fell_back);

    /* Only a swapped day works: found within three years, not beyond. */
    calendar_set_default(&c);
    c.workdays           = 0;
    c.working_weekends   = far;
    c.n_working_weekends = 1;
    far[0] = day_of("2028-03-11");
    expect_at(CST, calendar_add_checked(&c, CST, from, HOUR_MS, &fell_back),
              at(CST, 2028, 3, 11, 10, 0));
    assert_false(fell_back);
    far[0] = day_of("2031-03-15");
    assert_int_equal(calendar_add_checked(&c, CST, from, HOUR_MS, &fell_back), from + HOUR_MS);
    assert_true(fell_back);

    /* Times beyond any calendar fall back rather than overflow. */
    calendar_set_default(&c);
    assert_int_equal(calendar_add_checked(&c, CST, INT64_MAX - 5, HOUR_MS, &fell_back),
                     INT64_MAX);
    assert_true(fell_back);
    assert_int_equal(calendar_between(&c, CST, INT64_MIN, INT64_MAX), 0);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
}

/* ---- against a minute-by-minute reference ----------------------------------------- */

static const char *const ref_holidays[] = {
    "2026-01-01", "2026-01-02", "2026-01-03", "2026-02-16", "2026-02-17", "2026-02-18",
    "2026-05-01", "2026-05-04", "2026-05-05",
};
static const char *const ref_swapped[] = { "2026-01-04", "2026-02-14", "2026-05-09" };

/* Whether local minute `min` (minutes since 1970 in the city clock, from 1970 on)
 * works, read with the C library's own calendar; the day's answer is kept, since the
 * reference asks minute by minute. */
static bool
ref_works(int64_t min)
{
    static int64_t cached_day = -1;
    static bool    cached_works;
    int64_t        day = min / 1440, tod = min % 1440;

    if (day != cached_day) {
        time_t    secs = (time_t)(day * 86400);
        struct tm tm;
        char      date[16];
        size_t    i;

        gmtime_r(&secs, &tm);
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
        cached_works = tm.tm_wday >= 1 && tm.tm_wday <= 5;
        for (i = 0; i < sizeof ref_holidays / sizeof ref_holidays[0]; i++) {
            cached_works = cached_works && strcmp(date, ref_holidays[i]) != 0;
        }
        for (i = 0; i < sizeof ref_swapped / sizeof ref_swapped[0]; i++) {
            cached_works = cached_works || strcmp(date, ref_swapped[i]) == 0;
        }
        cached_day = day;
    }
    return cached_works && ((tod >= 540 && tod < 720) || (tod >= 810 && tod < 1050));
}

static void
test_add_and_between_match_a_minute_by_minute_count(void **state)
{
    int32_t  hol[sizeof ref_holidays / sizeof ref_holidays[0]];
    int32_t  swp[sizeof ref_swapped / sizeof ref_swapped[0]];
    calendar c;
    uint64_t seed = 12345;
    size_t   i;
    int      n;

    for (i = 0; i < sizeof hol / sizeof hol[0]; i++) {
        hol[i] = day_of(ref_holidays[i]);
    }
    for (i = 0; i < sizeof swp / sizeof swp[0]; i++) {
        swp[i] = day_of(ref_swapped[i]);
    }
    calendar_set_default(&c);
    c.holidays           = hol;
    c.n_holidays         = sizeof hol / sizeof hol[0];
    c.working_weekends   = swp;
    c.n_working_weekends = sizeof swp / sizeof swp[0];
    for (n = 0; n < 200; n++) {
        int64_t start_min, span_min, end_min, b_min, m, left, count = 0;

        /* A start minute from mid-December 2025 to mid-May 2026, a span up to about
         * three working weeks and an interval end up to a month on, in whole minutes so
         * that the reference can step by minute. */
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        start_min = (int64_t)calendar_days_from_date(2025, 12, 15) * 1440
                    + (int64_t)((seed >> 33) % (150 * 1440));
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        span_min = 1 + (int64_t)((seed >> 33) % (100 * 60));
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        b_min = start_min + (int64_t)((seed >> 33) % (31 * 1440));
        for (m = start_min, left = span_min; left > 0; m++) {
            left -= ref_works(m);
        }
        end_min = m;
        for (m = start_min; m < b_min; m++) {
            count += ref_works(m);
        }
        expect_at(CST, calendar_add(&c, CST, (start_min - CST) * MIN_MS, span_min * MIN_MS),
                  (end_min - CST) * MIN_MS);
        assert_int_equal(calendar_between(&c, CST, (start_min - CST) * MIN_MS,
                                          (b_min - CST) * MIN_MS), count * MIN_MS);
    }
}

/* ---- parsing ---------------------------------------------------------------------- */

static void
test_dates_parse_only_when_they_exist(void **state)
{
    static const char *const bad[] = {
        "2026-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "2026-1-01", "2026/10/01",
        "26-10-01", "2026-10-01 ", "", "1969-12-31", "2026-10-0a", "+026-10-01",
    };
    int32_t d;
    size_t  i;

    assert_int_equal(calendar_parse_date("1970-01-01", &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(calendar_parse_date("2028-02-29", &d), 0);
    assert_int_equal(d, calendar_days_from_date(2028, 3, 1) - 1);
    assert_int_equal(calendar_parse_date("2000-02-29", &d), 0);
    assert_int_equal(calendar_parse_date("2026-10-01", &d), 0);
    assert_int_equal(calendar_weekday(d), 4);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (calendar_parse_date(bad[i], &d) == 0) {
            fail_msg("\"%s\" parsed as a date", bad[i]);
        }
    }
    assert_int_equal(calendar_parse_date("2100-02-29", &d), -1);
}

static void
test_spans_parse_only_when_well_formed(void **state)
{
    static const char *const bad[] = {
        "9:00-12:00", "09:00-9:00", "12:00-09:00", "09:00-09:00", "24:00-24:00",
        "09:60-10:00", "25:00-26:00", "09:00-24:01", "09:00 12:00", "09:00-12:00 ",
        "09.00-12.00", "", "09:00",
    };
    calendar_span sp;
    size_t        i;

    assert_int_equal(calendar_parse_span("09:00-12:00", &sp), 0);
    assert_int_equal(sp.start_min, 540);
    assert_int_equal(sp.end_min, 720);
    assert_int_equal(calendar_parse_span("00:00-24:00", &sp), 0);
    assert_int_equal(sp.end_min, 1440);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (calendar_parse_span(bad[i], &sp) == 0) {
            fail_msg("\"%s\" parsed as a span", bad[i]);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_four_hours_from_friday_afternoon_end_on_monday_morning),
        cmocka_unit_test(test_a_public_holiday_is_skipped),
        cmocka_unit_test(test_a_swapped_working_saturday_counts),
        cmocka_unit_test(test_counting_from_outside_hours_starts_at_the_next_working_moment),
        cmocka_unit_test(test_a_span_ending_at_a_break_ends_at_the_break),
        cmocka_unit_test(test_a_zero_span_is_the_start_itself),
        cmocka_unit_test(test_spans_of_weeks),
        cmocka_unit_test(test_between_counts_working_time_in_the_interval),
        cmocka_unit_test(test_between_is_the_inverse_of_add),
        cmocka_unit_test(test_utc_offset_places_day_boundaries_in_the_city_clock),
        cmocka_unit_test(test_times_before_1970_land_on_their_own_day),
        cmocka_unit_test(test_a_calendar_without_working_time_gives_up_at_once),
        cmocka_unit_test(test_add_and_between_match_a_minute_by_minute_count),
        cmocka_unit_test(test_dates_parse_only_when_they_exist),
        cmocka_unit_test(test_spans_parse_only_when_well_formed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
