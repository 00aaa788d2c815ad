/* Unit tests for the answer-span picker (agents/span.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "span.h"

/* The question's terms, lower-cased, crudely "stemmed" by a prefix: enough
 * for these tests (the agent passes a Snowball-stemming callback). */
static bool qword(void *ud, const char *w) {
    for (const char *const *t = ud; *t; t++)
        if (strncmp(w, *t, strlen(*t)) == 0)
            return true;
    return false;
}

static void check(const char *question, const char *sentence, const char *const *terms, const char *want) {
    size_t s = 0, e = 0;
    bool found = span_find(span_question_kind(question), sentence, 0, strlen(sentence), qword, (void *)terms, &s, &e);
    if (!want) {
        if (found)
            fail_msg("%s: expected no span, got \"%.*s\"", question, (int)(e - s), sentence + s);
        return;
    }
    if (!found)
        fail_msg("%s: no span, want \"%s\"", question, want);
    if (e - s != strlen(want) || memcmp(sentence + s, want, e - s) != 0)
        fail_msg("%s: got \"%.*s\", want \"%s\"", question, (int)(e - s), sentence + s, want);
}

static void test_kinds(void **state) {
    (void)state;
    assert_int_equal(span_question_kind("Who founded it?"), SPAN_PERSON);
    assert_int_equal(span_question_kind("Whose logbook is it?"), SPAN_PERSON);
    assert_int_equal(span_question_kind("When does it open?"), SPAN_TIME);
    assert_int_equal(span_question_kind("In which year was it built?"), SPAN_TIME);
    assert_int_equal(span_question_kind("What time is closing?"), SPAN_TIME);
    assert_int_equal(span_question_kind("Where is it?"), SPAN_PLACE);
    assert_int_equal(span_question_kind("How many boats are there?"), SPAN_QUANTITY);
    assert_int_equal(span_question_kind("How far does it reach?"), SPAN_QUANTITY);
    assert_int_equal(span_question_kind("Which town is it in?"), SPAN_THING);
    assert_int_equal(span_question_kind("Why does it rain?"), SPAN_NONE);
    assert_int_equal(span_question_kind("How do I run the tests?"), SPAN_NONE);
    assert_int_equal(span_question_kind(""), SPAN_NONE);
}

static void test_spans(void **state) {
    (void)state;
    check("Who founded the harbour?", "The harbour was founded in 1642 by salt traders from the north.",
          (const char *const[]){"found", "harbour", NULL}, "salt traders from the north");
    check("Whose logbook is displayed?", "Its collection includes ship models and the logbook of Captain Ysolde Marr.",
          (const char *const[]){"logbook", "display", NULL}, "Captain Ysolde Marr");
    check("When was the lamp electrified?", "Its lamp was converted to electricity in 1931, and its beam is long.",
          (const char *const[]){"lamp", "electr", NULL}, "1931");
    check("When does the office open?", "The office opens at seven in the morning and closes at six.",
          (const char *const[]){"office", "open", NULL}, "seven in the morning");
    check("When is the launch?", "The launch is on the ninth of March.", (const char *const[]){"launch", NULL},
          "ninth of March");
    check("How often do ferries leave?", "Ferries leave every two hours from pier four.",
          (const char *const[]){"ferr", "leav", NULL}, "every two hours");
    check("How much is a ticket?", "A single ticket costs twelve crowns.", (const char *const[]){"ticket", NULL},
          "twelve crowns");
    check("Where is the lighthouse?", "The lighthouse stands on the eastern cliff.",
          (const char *const[]){"lighthouse", NULL}, "on the eastern cliff");
    check("Which town does the railway connect?", "A railway links Velmora to the market town of Hessby.",
          (const char *const[]){"town", "railway", "connect", "velmora", NULL}, "Hessby");
    check("What wood does the shipyard use?", "The shipyard builds boats using oak from the forests.",
          (const char *const[]){"wood", "shipyard", "us", NULL}, "oak");
    check("Which fish arrive in summer?", "Sardines dominate the catch, while tuna arrives in summer.",
          (const char *const[]){"fish", "arriv", "summer", NULL}, "tuna");
    /* nothing of the kind asked for: no span (the sentence answers) */
    check("When does it open?", "It opens whenever the keeper likes.", (const char *const[]){"open", NULL}, NULL);
    check("How many boats?", "Boats are many.", (const char *const[]){"boat", NULL}, NULL);
    check("Why does it rain?", "It rains because of the sea.", (const char *const[]){"rain", NULL}, NULL);
    /* the question's own words are never the answer */
    check("Who is Marr?", "Marr is the captain.", (const char *const[]){"marr", NULL}, "captain");
    check("Who is Marr?", "Marr Marr.", (const char *const[]){"marr", NULL}, NULL);
}

static void test_offsets_within_range(void **state) {
    (void)state;
    /* only text[start, end) is read */
    const char text[] = "Ignore 1999 here. The hall opened in 1850. And 2001 after.";
    size_t s = 0, e = 0;
    size_t a = strlen("Ignore 1999 here. "), b = a + strlen("The hall opened in 1850.");
    assert_true(span_find(SPAN_TIME, text, a, b, qword, (void *)(const char *const[]){"hall", "open", NULL}, &s, &e));
    assert_true(s >= a && e <= b);
    assert_int_equal(e - s, 4);
    assert_memory_equal(text + s, "1850", 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_offsets_within_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
