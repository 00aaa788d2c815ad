/* Unit tests for orchestrator/pool: jobs run, a full queue refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "pool.h"

static atomic_int ran;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

static void count_job(void *arg) {
    (void)arg;
    atomic_fetch_add(&ran, 1);
}

static void blocked_job(void *arg) {
    (void)arg;
    pthread_mutex_lock(&gate); /* waits until the test opens the gate */
    pthread_mutex_unlock(&gate);
    atomic_fetch_add(&ran, 1);
}

static void test_runs_all(void **state) {
    (void)state;
    atomic_store(&ran, 0);
    struct exec_pool *p = NULL;
    assert_int_equal(exec_pool_new(2, 1000, &p), ERR_OK);
    for (int i = 0; i < 500; i++)
        assert_int_equal(exec_pool_submit(p, count_job, NULL), ERR_OK);
    exec_pool_free(p); /* drains the queue before joining */
    assert_int_equal(atomic_load(&ran), 500);
}

static void test_full_queue_refuses(void **state) {
    (void)state;
    atomic_store(&ran, 0);
    struct exec_pool *p = NULL;
    assert_int_equal(exec_pool_new(1, 2, &p), ERR_OK);
    pthread_mutex_lock(&gate);
    assert_int_equal(exec_pool_submit(p, blocked_job, NULL), ERR_OK); /* taken by the worker */
    while (exec_pool_queued(p) != 0)
        usleep(1000);
    assert_int_equal(exec_pool_submit(p, blocked_job, NULL), ERR_OK);
    assert_int_equal(exec_pool_submit(p, blocked_job, NULL), ERR_OK);
    assert_int_equal(exec_pool_submit(p, blocked_job, NULL), ERR_OVERLOADED);
    assert_int_equal(exec_pool_queued(p), 2);
    pthread_mutex_unlock(&gate);
    exec_pool_free(p);
    assert_int_equal(atomic_load(&ran), 3);
    assert_int_equal(exec_pool_new(0, 2, &p), ERR_INVALID_FIELD);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_runs_all), cmocka_unit_test(test_full_queue_refuses)};
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
