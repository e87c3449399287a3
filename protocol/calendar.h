/*
 * calendar: the city's business calendar as data, and time counted on it.
 *
 * A working day has the same working hours (one or more spans, e.g. 09:00-12:00 and
 * 13:30-17:30). Which days work: the weekdays in `workdays`, except public holidays,
 * plus the swapped working days (调休) that fall on a weekend. Everything is in the
 * city's local clock: the caller passes the city's offset from UTC in minutes
 * (city->utc_offset_min), and a day runs from local midnight to local midnight. The
 * city has one fixed offset (no daylight saving), so every day is 24 hours long.
 *
 * The functions read the calendar and allocate nothing: the SLA code calls them for
 * every case. A stretch of whole weeks without a holiday or a swapped day is crossed
 * in one step, so the cost grows with the number of listed dates crossed, not with
 * the length of the span.
 *
 * The calendar does not own its date arrays: whoever fills it frees them (the city
 * does, in city_destroy). city.c reads it from the `calendar` section of the city file.
 */
#ifndef CALENDAR_H
#define CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CALENDAR_MAX_SPANS 8                       /* working-hour spans in one day */
#define CALENDAR_MINUTES_PER_DAY (24 * 60)

/* Working hours within a day, in minutes since local midnight: [start, end). */
typedef struct {
    int16_t start_min;       /* 0 .. 1439 */
    int16_t end_min;         /* start_min + 1 .. 1440 (1440 = the day's end, "24:00") */
} calendar_span;

typedef struct calendar {
    /* Bit (d - 1) set: ISO weekday d works (1 = Monday .. 7 = Sunday). */
    uint8_t        workdays;
    /* Sorted by start, not overlapping; the same on every working day. */
    calendar_span  spans[CALENDAR_MAX_SPANS];
    size_t         n_spans;
    /* Dates as days since 1970-01-01 in the local clock (calendar_days_from_date),
     * sorted ascending, without repeats, no date in both arrays. */
    int32_t       *holidays;            /* not working, even on a working weekday */
    size_t         n_holidays;
    int32_t       *working_weekends;    /* working, even on a day not in workdays */
    size_t         n_working_weekends;
} calendar;

/* After this many calendar days in a row without a working minute, calendar_add gives
 * up: three years, so that an unending run of holidays cannot stall a caller. */
#define CALENDAR_GIVE_UP_DAYS (3 * 366)

/* Fills c with the built-in calendar: Monday to Friday, 09:00-12:00 and 13:30-17:30,
 * no holidays and no swapped days. Any arrays c held are not freed. */
void calendar_set_default(calendar *c);

/* The instant at which span_ms of working time has passed since from_ms: counting
 * starts at from_ms when it falls in working hours, else at the next working moment.
 * The result is the end of the last working minute needed, so a span that ends exactly
 * at a span's end (12:00) returns 12:00, not the start of the next (13:30); and
 * calendar_between(c, off, from_ms, result) == span_ms. span_ms <= 0 returns from_ms.
 *
 * When the calendar has no working time for CALENDAR_GIVE_UP_DAYS days in a row, or
 * the times are beyond any calendar (|ms| > CALENDAR_MAX_ABS_MS), it returns
 * from_ms + span_ms (wall-clock time) instead; calendar_add_checked says when it did. */
int64_t calendar_add(const calendar *c, int utc_offset_min, int64_t from_ms,
                     int64_t span_ms);

/* calendar_add, setting *fell_back to whether the wall-clock fallback was taken
 * (fell_back may be NULL), so the caller can log that a deadline ignored the
 * calendar. */
int64_t calendar_add_checked(const calendar *c, int utc_offset_min, int64_t from_ms,
                             int64_t span_ms, bool *fell_back);

/* The working time, in ms, within [a_ms, b_ms): 0 when b_ms <= a_ms. Times beyond
 * CALENDAR_MAX_ABS_MS count as 0. */
int64_t calendar_between(const calendar *c, int utc_offset_min, int64_t a_ms,
                         int64_t b_ms);

/* True when the local date `day` (days since 1970-01-01) is a working day. */
bool calendar_is_working_day(const calendar *c, int32_t day);

/* Times and spans farther than this from 1970 (about 285,000 years) are refused as
 * input to the counting above, which keeps its arithmetic far from overflow. */
#define CALENDAR_MAX_ABS_MS (INT64_C(1) << 53)

/* ---- dates and times as written in the city file ------------------------------- */

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (negative before
 * 1970). The date is not checked: see calendar_parse_date. */
int32_t calendar_days_from_date(int y, int m, int d);

/* The ISO weekday (1 = Monday .. 7 = Sunday) of a day since 1970-01-01. */
int calendar_weekday(int32_t day);

/* Parses "YYYY-MM-DD" (exactly that form, years 1970-9999, a date that exists, so
 * "2026-02-29" is refused) into days since 1970-01-01. Returns 0 or -1. */
int calendar_parse_date(const char *s, int32_t *day);

/* Parses "HH:MM-HH:MM" (24-hour clock, two digits each; the end may be "24:00") into
 * a span. Returns 0, or -1 when malformed or when the end is not after the start. */
int calendar_parse_span(const char *s, calendar_span *out);

#endif
