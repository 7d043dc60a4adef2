/* test_json.c - json-c objects owned by an arena (leaks show under valgrind
 * and ASan, which run these tests too). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/json.h"

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

/* One strict JSON object, white space after it, nothing else. */
static void test_parse_object(void **state)
{
    static const struct {
        const char *in;
        int rc;
    } cases[] = {
        { "{\"a\":1}", MR_OK },
        { " {\"a\":[1,2]} \r\n", MR_OK },
        { "{}", MR_OK },
        { "{\"a\":1}garbage", MR_EINVAL },
        { "{\"a\":1}{\"b\":2}", MR_EINVAL },
        { "{\"a\":1,}", MR_EINVAL },
        { "{\"a\":", MR_EINVAL },
        { "[1]", MR_EINVAL },
        { "1", MR_EINVAL },
        { "", MR_EINVAL },
        { "{\"a\":{\"b\":{\"c\":{}}}}", MR_EINVAL },    /* deeper than 3 */
    };
    struct mr_arena a;
    struct json_object *o;

    (void)state;
    mr_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = mr_json_parse_object(&a, cases[i].in, strlen(cases[i].in), 3, &o);
        if (rc != cases[i].rc)
            fail_msg("%s: %d, not %d", cases[i].in, rc, cases[i].rc);
        assert_true(rc ? o == NULL : o != NULL);
    }
    /* A NUL inside the length is not white space. */
    assert_int_equal(mr_json_parse_object(&a, "{}\0", 3, 3, &o), MR_EINVAL);
    mr_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owned_until_reset),
        cmocka_unit_test(test_null_is_enomem),
        cmocka_unit_test(test_cleanup_failure_puts_at_once),
        cmocka_unit_test(test_parse_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
