/* MDP/0.1 client framing: what is accepted, what is refused and why. */
#include "mdp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#define F(s) { s, sizeof(s) - 1 }

static void test_delimited_request_parses(void **state)
{
    mdp_frame f[] = { F(""), F("MDPC01"), F("case.get"), F("\x80") };
    mdp_client_request r;
    const char *why = NULL;
    assert_int_equal(mdp_client_parse(f, 4, &r, &why), 0);
    assert_true(r.delimited);
    assert_true(gl_str_eq(r.service, "case.get"));
    assert_int_equal(r.body.n, 1);
}

static void test_undelimited_request_is_refused_but_noted(void **state)
{
    mdp_frame f[] = { F("MDPC01"), F("case.get"), F("\x80") };
    mdp_client_request r;
    const char *why = NULL;
    assert_int_equal(mdp_client_parse(f, 3, &r, &why), -1);
    assert_false(r.delimited);
    assert_true(gl_str_eq(r.service, "case.get"));
    assert_non_null(strstr(why, "delimiter"));
}

static void test_wrong_protocol_header_is_refused(void **state)
{
    mdp_frame f[] = { F(""), F("MDPC02"), F("case.get"), F("\x80") };
    mdp_client_request r;
    const char *why = NULL;
    assert_int_equal(mdp_client_parse(f, 4, &r, &why), -1);
    assert_non_null(strstr(why, "MDPC01"));
}

static void test_missing_body_is_refused_but_service_is_known(void **state)
{
    mdp_frame f[] = { F(""), F("MDPC01"), F("case.get") };
    mdp_client_request r;
    const char *why = NULL;
    assert_int_equal(mdp_client_parse(f, 3, &r, &why), -1);
    assert_true(gl_str_eq(r.service, "case.get"));
    assert_non_null(strstr(why, "body"));
}

static void test_extra_frames_are_refused(void **state)
{
    mdp_frame f[] = { F(""), F("MDPC01"), F("case.get"), F("\x80"), F("x") };
    mdp_client_request r;
    const char *why = NULL;
    assert_int_equal(mdp_client_parse(f, 5, &r, &why), -1);
}

static void test_empty_or_long_service_is_refused(void **state)
{
    char longname[80];
    memset(longname, 'a', sizeof longname);
    mdp_frame f[] = { F(""), F("MDPC01"), F(""), F("\x80") };
    mdp_client_request r;
    const char *why = NULL;
    assert_int_equal(mdp_client_parse(f, 4, &r, &why), -1);
    f[2].p = longname;
    f[2].n = sizeof longname;
    assert_int_equal(mdp_client_parse(f, 4, &r, &why), -1);
}

static void test_no_frames_is_refused(void **state)
{
    mdp_client_request r;
    const char *why = NULL;
    assert_int_equal(mdp_client_parse(NULL, 0, &r, &why), -1);
    mdp_frame f[] = { F("") };
    assert_int_equal(mdp_client_parse(f, 1, &r, &why), -1);
}

static void test_mmi_namespace_is_recognised(void **state)
{
    assert_true(mdp_is_mmi(gl_str_c("mmi.service")));
    assert_false(mdp_is_mmi(gl_str_c("case.get")));
    assert_false(mdp_is_mmi(gl_str_c("mmi")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delimited_request_parses),
        cmocka_unit_test(test_undelimited_request_is_refused_but_noted),
        cmocka_unit_test(test_wrong_protocol_header_is_refused),
        cmocka_unit_test(test_missing_body_is_refused_but_service_is_known),
        cmocka_unit_test(test_extra_frames_are_refused),
        cmocka_unit_test(test_empty_or_long_service_is_refused),
        cmocka_unit_test(test_no_frames_is_refused),
        cmocka_unit_test(test_mmi_namespace_is_recognised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
