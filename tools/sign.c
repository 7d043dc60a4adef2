/* sign.c - mediarelay-sign: mint a signed /stream link from the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "sign.h"
#include "token.h"
#include "url.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mediarelay-sign [--config FILE] [--ttl SECONDS] [--base URL] URL\n"
            "\n"
            "Prints a /stream link that relays URL until now + SECONDS (default a day,\n"
            "or stream.sign_max_ttl_s if that is less; at most stream.sign_max_ttl_s),\n"
            "signed with the configuration's secret.\n"
            "The link starts with --base, else the configuration's public_url.\n");
}

int main(int argc, char **argv)
{
    const char *base = NULL, *url = NULL;
    struct mr_token_key *key;
    struct mr_conf *conf;
    struct mr_arena a;
    struct mr_buf errors;
    long ttl = 0;
    char *link;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            i++;
        } else if (!strncmp(argv[i], "--config=", 9)) {
            continue;
        } else if (!strcmp(argv[i], "--ttl") && i + 1 < argc) {
            if (!mr_str_to_long(mr_str_c(argv[++i]), 1, 366L * 86400, &ttl)) {
                fprintf(stderr, "mediarelay-sign: --ttl wants a number of seconds\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--base") && i + 1 < argc) {
            base = argv[++i];
        } else if (argv[i][0] == '-' || url) {
            usage(stderr);
            return 2;
        } else {
            url = argv[i];
        }
    }
    if (!url) {
        usage(stderr);
        return 2;
    }
    if (!mr_url_is_http(url)) {
        fprintf(stderr, "mediarelay-sign: %s is not an http(s) URL\n", url);
        return 2;
    }
    mr_buf_init(&errors, 64 << 10);
    if (mr_conf_load(mr_conf_path(argc, argv), &conf, &errors)) {
        fprintf(stderr, "mediarelay-sign: the configuration has errors:\n%s",
                errors.p ? errors.p : "");
        mr_buf_free(&errors);
        return 1;
    }
    mr_buf_free(&errors);
    if (!ttl)
        ttl = conf->stream.sign_max_ttl_s < 86400 ? conf->stream.sign_max_ttl_s : 86400;
    if (ttl > conf->stream.sign_max_ttl_s) {
        fprintf(stderr, "mediarelay-sign: --ttl is above stream.sign_max_ttl_s (%ld)\n",
                conf->stream.sign_max_ttl_s);
        mr_conf_free(conf);
        return 2;
    }
    if (!base || !*base)
        base = conf->public_url;
    if (!base || !*base) {
        fprintf(stderr, "mediarelay-sign: give --base https://relay.example or set "
                "public_url in the configuration\n");
        mr_conf_free(conf);
        return 2;
    }
    key = mr_token_key_new(conf->secret, strlen(conf->secret));
    mr_arena_init(&a, 0);
    rc = key ? mr_sign_stream_link(key, &a, base, url, time(NULL) + ttl, &link) : 1;
    if (!rc)
        printf("%s\n", link);
    mr_arena_free(&a);
    mr_token_key_free(key);
    mr_conf_free(conf);
    return rc ? 1 : 0;
}
