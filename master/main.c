/* main.c - command line of raven-zero: parse, answer --help and --version, check (-t),
 * or hand over to the master. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master.h"
#include "version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: raven-zero [-c FILE] [-s NAME=VALUE]... [-t] [-h] [-V]\n"
               "  -c, --config FILE        read settings from a YAML file\n"
               "  -s, --set NAME=VALUE     set one setting (overrides the file and the environment)\n"
               "  -t, --check              check the configuration and exit (0 valid, 1 invalid)\n"
               "  -h, --help               show this help and exit\n"
               "  -V, --version            show the version and exit\n"
               "Settings come from: built-in defaults < YAML file < environment < -s.\n"
               "Signals: TERM/INT stop, QUIT graceful stop, HUP reload, USR1 reopen the log.\n");
}

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
    {"check", no_argument, NULL, 't'},        {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
};

static const char *long_name(int val)
{
    for (const struct option *o = long_options; o->name != NULL; o++)
        if (o->val == val)
            return o->name;
    return NULL;
}

/* One line for what getopt_long refused, instead of its own message and the usage.
 * optopt is 0 only for an unknown long option, which then is argv[optind - 1]. */
static void bad_option(char **argv, int opt)
{
    if (opt == ':')
        fprintf(stderr, "raven-zero: option -%c (--%s) needs a value (see --help)\n", optopt, long_name(optopt));
    else if (optopt == 0)
        fprintf(stderr, "raven-zero: unknown option %.*s (see --help)\n", (int)strcspn(argv[optind - 1], "="),
                argv[optind - 1]);
    else if (long_name(optopt) != NULL)
        fprintf(stderr, "raven-zero: option --%s takes no value (see --help)\n", long_name(optopt));
    else
        fprintf(stderr, "raven-zero: unknown option -%c (see --help)\n", optopt);
}

int main(int argc, char **argv)
{
    master_args a = {0};
    int test_only = 0, opt, code = 0;
    char **overrides = calloc((size_t)argc, sizeof(char *));
    if (overrides == NULL)
        return 1;
    a.overrides = overrides;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":c:s:thV", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            a.cfg_file = optarg;
            break;
        case 's':
            overrides[a.noverrides++] = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'h':
            usage(stdout);
            goto out;
        case 'V':
            printf("raven-zero %s\n", RZ_VERSION);
            goto out;
        default:
            bad_option(argv, opt);
            code = 2;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "raven-zero: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        code = 2;
        goto out;
    }
    cfg c;
    char err[1024];
    if (master_load_cfg(&a, &c, err, sizeof(err)) != 0) {
        fprintf(stderr, "raven-zero: %s\n", err);
        cfg_free(&c);
        code = 1;
    } else if (test_only) {
        printf("raven-zero: configuration is valid\n");
        cfg_free(&c);
    } else {
        code = master_run(&a, &c);
    }
out:
    free(overrides);
    return code;
}
