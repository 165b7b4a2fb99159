/* main.c - command line of raven-zero: parse, check (-t), or hand over to the master. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: raven-zero [-c FILE] [-s NAME=VALUE]... [-t] [-h]\n"
               "  -c FILE        read settings from a YAML file\n"
               "  -s NAME=VALUE  set one setting (overrides the file and the environment)\n"
               "  -t             check the configuration and exit (0 valid, 1 invalid)\n"
               "  -h             show this help\n"
               "Settings come from: built-in defaults < YAML file < environment < -s.\n"
               "Signals: TERM/INT stop, QUIT graceful stop, HUP reload, USR1 reopen the log.\n");
}

int main(int argc, char **argv)
{
    master_args a = {0};
    int test_only = 0, opt;
    char **overrides = calloc((size_t)argc, sizeof(char *));
    if (overrides == NULL)
        return 1;
    a.overrides = overrides;
    while ((opt = getopt(argc, argv, "c:s:th")) != -1) {
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
            free(overrides);
            return 0;
        default:
            usage(stderr);
            free(overrides);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "raven-zero: unexpected argument \"%s\" (see -h)\n", argv[optind]);
        free(overrides);
        return 2;
    }
    cfg c;
    char err[1024];
    if (master_load_cfg(&a, &c, err, sizeof(err)) != 0) {
        fprintf(stderr, "raven-zero: %s\n", err);
        cfg_free(&c);
        free(overrides);
        return 1;
    }
    if (test_only) {
        printf("raven-zero: configuration is valid\n");
        cfg_free(&c);
        free(overrides);
        return 0;
    }
    int code = master_run(&a, &c);
    free(overrides);
    return code;
}
