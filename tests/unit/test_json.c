/* test_json.c - json-c objects owned by an arena (leaks show under valgrind
 * and ASan, which run these tests too). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "arena.h"
#include "error.h"
#include "json.h"

static void test_owned_until_reset(void **state)
{
    struct mr_arena a;
    struct json_object *o;

    (void)state;
    mr_arena_init(&a, 0);
    o = json_object_new_object();
    json_object_object_add(o, "k", json_object_new_string("v"));
    assert_int_equal(mr_json_own(&a, o), MR_OK);
    /* Still alive until the reset: usable in the request. */
    assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                        "{\"k\":\"v\"}");
    mr_arena_reset(&a);
    /* And again after a reset, then freed by mr_arena_free. */
    assert_int_equal(mr_json_own(&a, json_object_new_array()), MR_OK);
    mr_arena_free(&a);
}

static void test_null_is_enomem(void **state)
{
    struct mr_arena a;

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(mr_json_own(&a, NULL), MR_ENOMEM);
    mr_arena_free(&a);
}

static void test_cleanup_failure_puts_at_once(void **state)
{
    struct mr_arena a;

    (void)state;
    /* An arena that cannot allocate a block: the object is put at once. */
    mr_arena_init(&a, SIZE_MAX);
    assert_int_equal(mr_json_own(&a, json_object_new_string("x")), MR_ENOMEM);
    mr_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owned_until_reset),
        cmocka_unit_test(test_null_is_enomem),
        cmocka_unit_test(test_cleanup_failure_puts_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
