/* test_log.c - common/log.c's batching, as a worker uses it: a turn's lines wait and go
 * out whole, in order, in writes no larger than one atomic pipe write; a warning goes
 * at once with what waited before it; other threads' lines are never held. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

static int fds[2];

static int pipe_setup(void **state)
{
    (void)state;
    /* Packets keep each write() whole and apart, so a read gets exactly one. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, fds), 0);
    log_setup(fds[1], LOG_INFO, "worker");
    return 0;
}

static int pipe_teardown(void **state)
{
    (void)state;
    log_batch(0);
    log_setup(2, LOG_INFO, "worker");
    close(fds[0]);
    close(fds[1]);
    return 0;
}

/* The bytes of one write(), or 0 when none waits. */
static size_t read_one(char *buf, size_t cap)
{
    ssize_t n = read(fds[0], buf, cap - 1);
    if (n < 0) {
        assert_int_equal(errno, EAGAIN);
        n = 0;
    }
    buf[n] = '\0';
    return (size_t)n;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static void lines_wait_for_the_flush_and_go_out_in_order_in_one_write(void **state)
{
    char buf[2 * PIPE_BUF];
    (void)state;
    log_batch(1);
    log_event(LOG_INFO, "first", NULL);
    log_event(LOG_INFO, "second", NULL);
    log_event(LOG_DEBUG, "below the level", NULL);
    assert_int_equal(read_one(buf, sizeof(buf)), 0);
    log_flush();
    assert_true(read_one(buf, sizeof(buf)) > 0);
    assert_int_equal(count_lines(buf), 2);
    assert_true(strstr(buf, "\"first\"") < strstr(buf, "\"second\""));
    assert_null(strstr(buf, "below the level"));
    log_flush(); /* nothing waits: nothing is written */
    assert_int_equal(read_one(buf, sizeof(buf)), 0);
}

static void a_warning_goes_at_once_after_what_waited(void **state)
{
    char buf[2 * PIPE_BUF];
    (void)state;
    log_batch(1);
    log_event(LOG_INFO, "request", NULL);
    log_event(LOG_WARNING, "store_down", NULL);
    assert_true(read_one(buf, sizeof(buf)) > 0);
    assert_int_equal(count_lines(buf), 2);
    assert_true(strstr(buf, "\"request\"") < strstr(buf, "\"store_down\""));
}

/* Many lines in a turn: every write holds whole lines and fits one atomic pipe write,
 * so lines of several workers never interleave inside one another. */
static void a_full_batch_is_written_in_whole_lines_of_at_most_pipe_buf(void **state)
{
    char buf[2 * PIPE_BUF], message[301];
    size_t lines = 0, writes = 0, n;
    (void)state;
    memset(message, 'x', sizeof(message) - 1);
    message[sizeof(message) - 1] = '\0';
    log_batch(1);
    for (int i = 0; i < 40; i++)
        log_event(LOG_INFO, "request", "%s", message);
    log_flush();
    while ((n = read_one(buf, sizeof(buf))) > 0) {
        assert_true(n <= PIPE_BUF);
        assert_int_equal(buf[n - 1], '\n');
        lines += count_lines(buf);
        writes++;
    }
    assert_int_equal(lines, 40);
    assert_true(writes >= 3 && writes < 40);
}

static void *log_from_a_helper(void *p)
{
    (void)p;
    log_event(LOG_INFO, "from_a_helper", NULL);
    return NULL;
}

static void another_threads_lines_are_not_held(void **state)
{
    char buf[2 * PIPE_BUF];
    pthread_t t;
    (void)state;
    log_batch(1);
    log_event(LOG_INFO, "held", NULL);
    assert_int_equal(pthread_create(&t, NULL, log_from_a_helper, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(read_one(buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "from_a_helper"));
    assert_null(strstr(buf, "\"held\""));
    log_flush();
    assert_true(read_one(buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\"held\""));
}

static void without_batching_every_line_is_written_at_once(void **state)
{
    char buf[2 * PIPE_BUF];
    (void)state;
    log_batch(0);
    log_event(LOG_INFO, "alone", NULL);
    assert_true(read_one(buf, sizeof(buf)) > 0);
    assert_int_equal(count_lines(buf), 1);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, pipe_setup, pipe_teardown)
    const struct CMUnitTest tests[] = {
        T(lines_wait_for_the_flush_and_go_out_in_order_in_one_write),
        T(a_warning_goes_at_once_after_what_waited),
        T(a_full_batch_is_written_in_whole_lines_of_at_most_pipe_buf),
        T(another_threads_lines_are_not_held),
        T(without_batching_every_line_is_written_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
