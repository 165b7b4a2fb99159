/* test_routes.c - the route table as clients, the access log and the metrics see it:
 * which methods each path takes, the Allow of every 405, the path each request is
 * logged under (never a key or a file name), the metrics label it is counted under, and
 * where link previewers get the link page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "routes.h"

#define KEY "apple-banana-cherry"

static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "TRACE", "FROB", "get"};

static route_match match_on(const char *path, const char *method, unsigned served)
{
    return routes_match(h2o_iovec_init(path, strlen(path)), h2o_iovec_init(method, strlen(method)), served);
}

/* A listener serving every row: no METRICS_LISTEN. */
static route_match match(const char *path, const char *method)
{
    return match_on(path, method, ROUTES_PUBLIC | ROUTES_ADMIN);
}

static const char *logged(const char *path, const char *method, char *out, size_t cap)
{
    route_match m = match(path, method);
    routes_log_path(&m, out, cap);
    return out;
}

/* Is method one of the comma-separated list? */
static int listed(const char *list, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = list; *p != '\0'; p += strcspn(p, ","), p += *p == ',' ? 1 : 0) {
        while (*p == ' ')
            p++;
        if (strncmp(p, method, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

static const struct {
    const char *path, *allow, *label, *logged;
} CONTRACT[] = {
    {"/upload/", "POST, OPTIONS", "upload", "/upload/"},
    {"/upload", "POST, OPTIONS", "upload", "/upload"},
    {"/upload/report.pdf", "PUT, OPTIONS", "put_upload", "/upload/{name}"},
    {"/upload/report.pdf/", "PUT, OPTIONS", "put_upload", "/upload/{name}"},
    {"/preview/" KEY, "GET, OPTIONS", "preview", "/preview/{key}"},
    {"/download/" KEY, "GET, DELETE, OPTIONS", "download", "/download/{key}"},
    {"/download/" KEY "/", "GET, DELETE, OPTIONS", "download", "/download/{key}"},
    {"/status/" KEY, "GET, HEAD, OPTIONS", "status", "/status/{key}"},
    {"/health/", "GET, HEAD, OPTIONS", "health", "/health/"},
    {"/health", "GET, HEAD, OPTIONS", "health", "/health"},
    {"/openapi.json", "GET, HEAD, OPTIONS", "openapi", "/openapi.json"},
    {"/openapi.json/", "GET, HEAD, OPTIONS", "openapi", "/openapi.json/"},
    {"/metrics", "GET, HEAD, OPTIONS", "metrics", "/metrics"},
    {"/metrics/", "GET, HEAD, OPTIONS", "metrics", "/metrics/"},
    {"/", "GET, HEAD, OPTIONS", "page", "/"},
    {"/assets/drop.js", "GET, HEAD, OPTIONS", "assets", "/assets/{name}"},
    {"/assets/drop.js/", "GET, HEAD, OPTIONS", "assets", "/assets/{name}"},
};

/* A method of a CONTRACT path counted under a label of its own, not the path's. */
static const struct {
    const char *path, *method, *label;
} OWN_LABEL[] = {
    {"/download/" KEY, "DELETE", "delete"},
    {"/download/" KEY "/", "DELETE", "delete"},
};

static const char *label_of(const char *path, const char *method, const char *label)
{
    for (size_t i = 0; i < sizeof OWN_LABEL / sizeof OWN_LABEL[0]; i++)
        if (strcmp(OWN_LABEL[i].path, path) == 0 && strcmp(OWN_LABEL[i].method, method) == 0)
            return OWN_LABEL[i].label;
    return label;
}

static void every_route_takes_exactly_the_methods_its_allow_header_lists(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CONTRACT / sizeof CONTRACT[0]; i++)
        for (size_t k = 0; k < sizeof METHODS / sizeof METHODS[0]; k++) {
            route_match m = match(CONTRACT[i].path, METHODS[k]);
            char allow[64];
            routes_allow(m.methods, allow, sizeof allow);
            if (m.row == -1)
                fail_msg("%s %s: no route", METHODS[k], CONTRACT[i].path);
            if (strcmp(allow, CONTRACT[i].allow) != 0)
                fail_msg("%s %s: Allow \"%s\", want \"%s\"", METHODS[k], CONTRACT[i].path, allow, CONTRACT[i].allow);
            if (m.allowed != listed(CONTRACT[i].allow, METHODS[k]))
                fail_msg("%s %s: %s", METHODS[k], CONTRACT[i].path, m.allowed ? "served" : "refused");
        }
}

static void head_never_reaches_download_or_preview_which_spend_a_use_or_the_look(void **state)
{
    (void)state;
    assert_false(match("/download/" KEY, "HEAD").allowed);
    assert_false(match("/preview/" KEY, "HEAD").allowed);
    assert_true(match("/status/" KEY, "HEAD").allowed);
}

static void the_handler_gets_the_key_without_its_trailing_slash(void **state)
{
    (void)state;
    const char *paths[] = {"/download/" KEY, "/download/" KEY "/", "/preview/" KEY, "/status/" KEY "/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        route_match m = match(paths[i], "GET");
        assert_true(m.allowed);
        assert_int_equal(m.tail.len, strlen(KEY));
        assert_memory_equal(m.tail.base, KEY, strlen(KEY));
    }
}

static void a_path_with_no_route_is_unrouted(void **state)
{
    (void)state;
    const char *paths[] = {"//",         "",           "/download",         "/download/",     "/download//",
                           "/upload//",  "/health//",  "/upload/a/b",       "/health/x",      "/download/a/b",
                           "/download//" KEY,          "//download/" KEY,   "/x/download/" KEY,
                           "/" KEY,      "/metricsx",  "/openapi.json.bak", "/DOWNLOAD/" KEY, "/download/" KEY "//",
                           "/assets",    "/assets/",   "/assets//",         "/assets/a/b",    "/index.html"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        route_match m = match(paths[i], "GET");
        if (m.row != -1 || m.allowed || m.methods != 0)
            fail_msg("GET \"%s\" matched a route", paths[i]);
        assert_string_equal(routes_label(m.label), "other");
    }
}

static void put_takes_any_one_segment_name_no_other_route_names(void **state)
{
    (void)state;
    const char *names[] = {"/report.pdf", "/" KEY, "/download", "/status", "/a b.txt", "/report.pdf/", "/.env"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        route_match m = match(names[i], "PUT");
        if (!m.allowed || strcmp(routes_label(m.label), "put") != 0)
            fail_msg("PUT %s: not the PUT route", names[i]);
        char out[256];
        routes_log_path(&m, out, sizeof out);
        assert_string_equal(out, "/{name}");
        /* Only PUT: every other method there finds no route, as before. */
        for (size_t k = 0; k < sizeof METHODS / sizeof METHODS[0]; k++) {
            if (strcmp(METHODS[k], "PUT") == 0)
                continue;
            m = match(names[i], METHODS[k]);
            if (m.row != -1 || m.methods != 0)
                fail_msg("%s %s: routed", METHODS[k], names[i]);
        }
    }
    route_match m = match("/report.pdf", "PUT");
    assert_int_equal(m.tail.len, strlen("report.pdf"));
    assert_memory_equal(m.tail.base, "report.pdf", m.tail.len);
}

static void put_on_a_path_another_route_names_is_405_not_a_file_of_that_name(void **state)
{
    (void)state;
    const char *paths[] = {"/upload", "/upload/", "/health", "/metrics/", "/openapi.json"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        route_match m = match(paths[i], "PUT");
        if (m.row == -1 || m.allowed || strcmp(routes_label(m.label), "put") == 0)
            fail_msg("PUT %s: not a 405", paths[i]);
    }
    assert_false(match("/", "PUT").allowed);
    assert_false(match("/a/b", "PUT").allowed);
}

static void link_previewers_are_looked_for_on_download_and_preview_only(void **state)
{
    (void)state;
    const char *linked[] = {"/download/" KEY, "/preview/" KEY, "/download/not-a-key"};
    for (size_t i = 0; i < sizeof linked / sizeof linked[0]; i++) {
        assert_true(match(linked[i], "GET").link_page);
        assert_true(match(linked[i], "HEAD").link_page);
    }
    const char *others[] = {"/status/" KEY, "/health", "/upload/", "/upload/x.pdf", "/x.pdf", "/nonexistent"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        assert_false(match(others[i], "GET").link_page);
}

static void the_log_shows_the_route_and_masks_every_key(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i < sizeof CONTRACT / sizeof CONTRACT[0]; i++)
        for (size_t k = 0; k < sizeof METHODS / sizeof METHODS[0]; k++)
            assert_string_equal(logged(CONTRACT[i].path, METHODS[k], out, sizeof out), CONTRACT[i].logged);
    /* A key anywhere a route does not expect one is not logged either. */
    const char *elsewhere[] = {"/" KEY, "/x/download/" KEY, "//download/" KEY, "/download/" KEY "/" KEY,
                               "/upload/" KEY "/x", "/health/" KEY, "/" KEY "/status/x", "/download//" KEY};
    for (size_t i = 0; i < sizeof elsewhere / sizeof elsewhere[0]; i++) {
        logged(elsewhere[i], "GET", out, sizeof out);
        if (strstr(out, "apple") != NULL || strcmp(out, "{unrouted}") != 0)
            fail_msg("\"%s\" logged as \"%s\"", elsewhere[i], out);
    }
}

static void each_route_counts_under_its_own_label_and_the_rest_under_other(void **state)
{
    (void)state;
    size_t n = routes_labels();
    assert_true(n >= 2);
    assert_string_equal(routes_label(n - 1), "other");
    for (size_t i = 0; i < n; i++) {
        const char *label = routes_label(i);
        assert_true(label[0] != '\0' && strspn(label, "abcdefghijklmnopqrstuvwxyz_") == strlen(label));
        for (size_t j = 0; j < i; j++)
            if (strcmp(label, routes_label(j)) == 0)
                fail_msg("label \"%s\" twice", label);
    }
    for (size_t i = 0; i < sizeof CONTRACT / sizeof CONTRACT[0]; i++)
        for (size_t k = 0; k < sizeof METHODS / sizeof METHODS[0]; k++) {
            route_match m = match(CONTRACT[i].path, METHODS[k]);
            assert_true(m.label < n - 1);
            assert_string_equal(routes_label(m.label), label_of(CONTRACT[i].path, METHODS[k], CONTRACT[i].label));
        }
}

/* METRICS_LISTEN: /metrics lives on its listener alone, and nothing else does. */
static void metrics_are_served_on_their_own_listener_and_not_on_the_others(void **state)
{
    static const char *const public_paths[] = {"/upload/", "/health", "/status/" KEY, "/openapi.json"};
    route_match m;
    char allow[64];
    (void)state;
    m = match_on("/metrics", "GET", ROUTES_ADMIN);
    assert_true(m.row >= 0 && m.allowed);
    assert_string_equal(routes_label(m.label), "metrics");
    m = match_on("/metrics", "GET", ROUTES_PUBLIC);
    assert_int_equal(m.row, -1); /* 404, not a 405 that would say it exists */
    assert_int_equal(m.methods, 0);
    assert_string_equal(routes_label(m.label), "other");
    m = match_on("/metrics", "POST", ROUTES_PUBLIC);
    assert_int_equal(m.row, -1);
    for (size_t i = 0; i < sizeof public_paths / sizeof public_paths[0]; i++) {
        m = match_on(public_paths[i], "GET", ROUTES_ADMIN);
        assert_int_equal(m.row, -1);
        m = match_on(public_paths[i], "GET", ROUTES_PUBLIC);
        assert_true(m.row >= 0);
    }
    routes_allow(match_on("/metrics", "POST", ROUTES_ADMIN).methods, allow, sizeof allow);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_route_takes_exactly_the_methods_its_allow_header_lists),
        cmocka_unit_test(head_never_reaches_download_or_preview_which_spend_a_use_or_the_look),
        cmocka_unit_test(the_handler_gets_the_key_without_its_trailing_slash),
        cmocka_unit_test(a_path_with_no_route_is_unrouted),
        cmocka_unit_test(put_takes_any_one_segment_name_no_other_route_names),
        cmocka_unit_test(put_on_a_path_another_route_names_is_405_not_a_file_of_that_name),
        cmocka_unit_test(link_previewers_are_looked_for_on_download_and_preview_only),
        cmocka_unit_test(the_log_shows_the_route_and_masks_every_key),
        cmocka_unit_test(each_route_counts_under_its_own_label_and_the_rest_under_other),
        cmocka_unit_test(metrics_are_served_on_their_own_listener_and_not_on_the_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
