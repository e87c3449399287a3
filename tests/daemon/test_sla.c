/*
 * test_sla: SLA classes and deadlines: a wall-clock class counts every hour, a
 * working-time class skips the weekend, the lunch break and the city's holidays, and
 * a case's class comes from its category and urgency.
 */
#include "sla.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define MIN_MS  INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)

static city *
load_default(void)
{
    char  err[512] = "";
    city *c        = city_new(NULL, err, sizeof err);

    if (c == NULL) {
        fail_msg("the default city does not load: %s", err);
    }
    return c;
}

/* The instant of y-m-d hh:mm on the city's clock. */
static int64_t
local(const city *c, int y, int m, int d, int hh, int mm)
{
    return ((int64_t)calendar_days_from_date(y, m, d) * 1440 + hh * 60 + mm
            - c->utc_offset_min) * MIN_MS;
}

static void
test_working_time_class_skips_the_weekend(void **state)
{
    city     *c    = load_default();
    city_sla  cls  = { "test_working", 2 * HOUR_MS, 4 * HOUR_MS, true, 0.5 };
    int64_t   from = local(c, 2026, 3, 13, 16, 0);   /* Friday 16:00 */
    sla_times t;

    sla_deadlines(c, &cls, from, &t);
    /* 16:00-17:30 Friday, then Monday from 09:00. */
    assert_int_equal(t.accept_by, local(c, 2026, 3, 16, 9, 30));
    assert_int_equal(t.resolve_by, local(c, 2026, 3, 16, 11, 30));
    assert_int_equal(t.warn_at, local(c, 2026, 3, 16, 9, 30));
    city_destroy(&c);
}

static void
test_wall_clock_class_does_not_skip_the_weekend(void **state)
{
    city     *c    = load_default();
    city_sla  cls  = { "test_wall", 2 * HOUR_MS, 4 * HOUR_MS, false, 0.5 };
    int64_t   from = local(c, 2026, 3, 13, 16, 0);
    sla_times t;

    sla_deadlines(c, &cls, from, &t);
    assert_int_equal(t.accept_by, local(c, 2026, 3, 13, 18, 0));
    assert_int_equal(t.resolve_by, local(c, 2026, 3, 13, 20, 0));
    assert_int_equal(t.warn_at, local(c, 2026, 3, 13, 18, 0));
    city_destroy(&c);
}

static void
test_default_classes_follow_the_category_and_the_calendar(void **state)
{
    city           *c = load_default();
    const city_sla *roads, *emergency;
    int64_t         from = local(c, 2026, 9, 30, 16, 0);   /* the eve of National Day */
    sla_times       t;

    /* Roads, normal: the "standard" class, 7 working hours (one working day) to accept.
     * 1.5 h on the 30th; 1-7 October are holidays; the other 5.5 h run on Thursday the
     * 8th: 09:00-12:00 and 13:30-16:00. */
    roads = sla_class_for(c, gl_str_c("roads"), URGENCY_NORMAL);
    assert_string_equal(roads->code, "standard");
    sla_deadlines(c, roads, from, &t);
    assert_int_equal(t.accept_by, local(c, 2026, 10, 8, 16, 0));
    assert_int_equal(calendar_between(&c->calendar, c->utc_offset_min, from, t.resolve_by),
                     roads->resolve_ms);
    assert_int_equal(calendar_between(&c->calendar, c->utc_offset_min, from, t.warn_at),
                     (int64_t)((double)roads->resolve_ms * roads->warn_ratio));
    assert_true(t.accept_by < t.warn_at && t.warn_at < t.resolve_by);

    /* Emergencies count every hour, holiday or not. */
    emergency = sla_class_for(c, gl_str_c("roads"), URGENCY_EMERGENCY);
    assert_string_equal(emergency->code, "emergency");
    sla_deadlines(c, emergency, from, &t);
    assert_int_equal(t.accept_by, from + HOUR_MS);
    assert_int_equal(t.resolve_by, from + 2 * HOUR_MS);
    assert_int_equal(t.warn_at, from + 96 * MIN_MS);
    city_destroy(&c);
}

static void
test_unknown_category_gets_the_first_class(void **state)
{
    city *c = load_default();

    assert_ptr_equal(sla_class_for(c, gl_str_c("no_such_category"), URGENCY_NORMAL),
                     &c->sla[0]);
    assert_ptr_equal(sla_class_for(c, gl_str_c(""), URGENCY_URGENT), &c->sla[0]);
    city_destroy(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_working_time_class_skips_the_weekend),
        cmocka_unit_test(test_wall_clock_class_does_not_skip_the_weekend),
        cmocka_unit_test(test_default_classes_follow_the_category_and_the_calendar),
        cmocka_unit_test(test_unknown_category_gets_the_first_class),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
