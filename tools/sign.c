/* sign.c - mediarelay-sign: the operator's tool.  Mints a signed /stream
 * link, writes a viewer session into Redis for testing rooms (`session`),
 * or opens a relay URL's token to say what it stands for (`token`).
 *
 * A session is what the host application would write: session:{sid} -> the
 * user, and the user in room:{room}:members, under the configuration's
 * key_prefix (docs/rooms.md).  It goes to Redis only, on the connection
 * common/net/store.c makes: the relay reads sessions from nowhere else, so a
 * session written anywhere else would be no session.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <openssl/rand.h>

#include "app/auth.h"
#include "app/sign.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/str.h"
#include "core/token.h"
#include "net/store.h"
#include "net/url.h"

#define SESSION_MAX_ROOMS 16
#define SESSION_MAX_FIELD 256           /* a user or room name, in bytes */
#define SESSION_DEFAULT_TTL 86400L

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mediarelay-sign [--config FILE] [--ttl SECONDS] [--base URL] URL\n"
            "       mediarelay-sign session --user USER --room ROOM [--room ROOM ...]\n"
            "                       [--sid SID] [--ttl SECONDS] [--config FILE]\n"
            "       mediarelay-sign token [--config FILE] TOKEN|RELAY-URL\n"
            "       mediarelay-sign --help\n");
}

static void help(void)
{
    printf(
"NAME\n"
"    mediarelay-sign - sign /stream links; create test sessions for rooms;\n"
"    open relay URLs\n"
"\n"
"SYNOPSIS\n"
"    mediarelay-sign [--config FILE] [--ttl SECONDS] [--base URL] URL\n"
"    mediarelay-sign session --user USER --room ROOM [--room ROOM ...]\n"
"                    [--sid SID] [--ttl SECONDS] [--config FILE]\n"
"    mediarelay-sign token [--config FILE] TOKEN|RELAY-URL\n"
"\n"
"DESCRIPTION\n"
"    With a URL, prints a /stream link that relays URL until now + SECONDS,\n"
"    signed with the configuration's secret (what POST /api/proxy/sign\n"
"    gives an admin).\n"
"\n"
"    session writes a viewer session into the configuration's Redis, as the\n"
"    host application would: session:SID holding USER, and USER added to\n"
"    room:ROOM:members for each ROOM (keys under key_prefix).  Media items\n"
"    with that room then play for a request carrying the cookie.  It prints\n"
"    the cookie, NAME=SID (NAME is auth.cookie), ready for curl -b or a\n"
"    browser's document.cookie.  Meant for testing and for operators: a\n"
"    real deployment's sessions come from its host application.\n"
"\n"
"    token opens the token of a relay URL (/api/seg/TOKEN..., /api/m3u8/\n"
"    TOKEN...) or a bare token with the configuration's secrets, and prints\n"
"    what it stands for as JSON: kind, scope (m:MEDIA or c:CHANNEL), the\n"
"    upstream URL, expire_at and whether it has expired.  Viewers cannot do\n"
"    this: tokens are encrypted.\n"
"\n"
"OPTIONS\n"
"    --config FILE   the configuration (else $MEDIARELAY_CONFIG, else\n"
"                    %s/mediarelay/mediarelay.json)\n"
"    --ttl SECONDS   link: its lifetime (default a day, or\n"
"                    stream.sign_max_ttl_s if less; at most that).\n"
"                    session: the lifetime of session:SID (default a day;\n"
"                    0: none).  Room membership does not expire.\n"
"    --base URL      link: what it starts with (else public_url)\n"
"    --user USER     session: the user (1-256 bytes, no control bytes)\n"
"    --room ROOM     session: a room the user joins (repeatable, at most %d)\n"
"    --sid SID       session: its id (1-256 bytes of printable ASCII without\n"
"                    space, '\"', ',', ';' or '\\'); else 32 random hex digits.\n"
"                    An existing session of that id is replaced.\n"
"\n"
"EXIT STATUS\n"
"    0 done; 1 the configuration has errors, Redis failed, or the token is\n"
"    not one of this configuration's; 2 bad usage.\n"
"\n"
"EXAMPLES\n"
"    mediarelay-sign --ttl 3600 https://cdn.example/movie.mp4\n"
"    c=$(mediarelay-sign session --user alice --room r1)\n"
"    curl -b \"$c\" https://relay.example/api/media/intro/source\n"
"    mediarelay-sign token 'https://relay.example/api/seg/AhQ...Xw.ts'\n",
            MR_SYSCONFDIR, SESSION_MAX_ROOMS);
}

static struct mr_conf *load_conf(int argc, char **argv)
{
    struct mr_conf *conf;
    struct mr_buf errors;

    mr_buf_init(&errors, 64 << 10);
    if (mr_conf_load(mr_conf_path(argc, argv), &conf, &errors)) {
        fprintf(stderr, "mediarelay-sign: the configuration has errors:\n%s",
                errors.p ? errors.p : "");
        mr_buf_free(&errors);
        return NULL;
    }
    mr_buf_free(&errors);
    return conf;
}

/* --- session -------------------------------------------------------------- */

/* A user or room name: what the relay compares, byte for byte. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    return n && n <= SESSION_MAX_FIELD && !mr_str_has_ctl(s, n);
}

/* A session id the relay accepts and a cookie can carry unquoted. */
static bool sid_ok(const char *s)
{
    return mr_auth_sid_ok(mr_str_c(s)) && !strpbrk(s, "\"\\");
}

/* --config FILE or --config=FILE, which the configuration loader reads:
 * skipped here (*i moved past it).  Whether argv[*i] was one. */
static bool config_option(int argc, char **argv, int *i)
{
    if (!strcmp(argv[*i], "--config") && *i + 1 < argc) {
        ++*i;
        return true;
    }
    return !strncmp(argv[*i], "--config=", 9);
}

static int random_sid(char *out, size_t len)
{
    unsigned char b[16];

    if (len < 2 * sizeof(b) + 1 || RAND_bytes(b, sizeof(b)) != 1)
        return MR_EINTERNAL;
    mr_hex(b, sizeof(b), out);
    return MR_OK;
}

/* One command; MR_OK when Redis answered it without an error reply. */
static int redis_do(struct redisContext *c, const char *what, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;
    int rc = MR_OK;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        fprintf(stderr, "mediarelay-sign: %s: redis: %s\n", what,
                c->errstr[0] ? c->errstr : "connection lost");
        return MR_EUNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "mediarelay-sign: %s: redis: %s\n", what, r->str);
        rc = MR_EINTERNAL;
    }
    freeReplyObject(r);
    return rc;
}

static int session_main(int argc, char **argv)
{
    const char *user = NULL, *sid = NULL, *rooms[SESSION_MAX_ROOMS];
    char gen[33], name[MR_STORE_KEY_MAX], key[MR_STORE_KEY_MAX];
    struct redisContext *c;
    struct mr_store *store = NULL;
    struct mr_conf *conf;
    size_t nrooms = 0;
    long ttl = SESSION_DEFAULT_TTL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        } else if (config_option(argc, argv, &i)) {
            continue;
        } else if (!strcmp(argv[i], "--user") && i + 1 < argc) {
            user = argv[++i];
        } else if (!strcmp(argv[i], "--room") && i + 1 < argc) {
            if (nrooms == SESSION_MAX_ROOMS) {
                fprintf(stderr, "mediarelay-sign: at most %d --room\n", SESSION_MAX_ROOMS);
                return 2;
            }
            rooms[nrooms++] = argv[++i];
        } else if (!strcmp(argv[i], "--sid") && i + 1 < argc) {
            sid = argv[++i];
        } else if (!strcmp(argv[i], "--ttl") && i + 1 < argc) {
            if (!mr_str_to_long(mr_str_c(argv[++i]), 0, 366L * 86400, &ttl)) {
                fprintf(stderr, "mediarelay-sign: --ttl wants a number of seconds\n");
                return 2;
            }
        } else {
            fprintf(stderr, "mediarelay-sign: session: unexpected \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!user || !nrooms) {
        fprintf(stderr, "mediarelay-sign: session needs --user and at least one --room\n");
        usage(stderr);
        return 2;
    }
    if (!name_ok(user)) {
        fprintf(stderr, "mediarelay-sign: --user: 1 to %d bytes, no control bytes\n",
                SESSION_MAX_FIELD);
        return 2;
    }
    for (size_t i = 0; i < nrooms; i++)
        if (!name_ok(rooms[i])) {
            fprintf(stderr, "mediarelay-sign: --room: 1 to %d bytes, no control bytes\n",
                    SESSION_MAX_FIELD);
            return 2;
        }
    if (sid && !sid_ok(sid)) {
        fprintf(stderr, "mediarelay-sign: --sid: 1 to 256 bytes of printable ASCII without "
                "space, '\"', ',', ';' or '\\'\n");
        return 2;
    }
    if (!sid) {
        if (random_sid(gen, sizeof(gen))) {
            fprintf(stderr, "mediarelay-sign: no random bytes for a session id\n");
            return 1;
        }
        sid = gen;
    }

    if (!(conf = load_conf(argc, argv)))
        return 1;
    /* The store's own warnings speak of a fallback the tool does not use. */
    mr_log_setup("mediarelay-sign", "error", "stderr");
    if (!conf->redis[0]) {
        fprintf(stderr, "mediarelay-sign: the configuration has no redis: sessions live "
                "in Redis\n");
        goto done;
    }
    /* No fallback cache: the tool speaks to Redis or fails. */
    if (!(store = mr_store_new(conf, NULL))) {
        fprintf(stderr, "mediarelay-sign: out of memory\n");
        goto done;
    }
    if (!(c = mr_store_redis(store))) {
        fprintf(stderr, "mediarelay-sign: redis %s: %s\n", conf->redis,
                mr_store_last_error(store));
        goto done;
    }
    if (snprintf(name, sizeof(name), "session:%s", sid) >= (int)sizeof(name) ||
        mr_store_key(store, name, key, sizeof(key))) {
        fprintf(stderr, "mediarelay-sign: the session key is too long\n");
        goto done;
    }
    if (ttl ? redis_do(c, "session", "SET %s %s EX %ld", key, user, ttl)
            : redis_do(c, "session", "SET %s %s", key, user))
        goto done;
    for (size_t i = 0; i < nrooms; i++) {
        if (snprintf(name, sizeof(name), "room:%s:members", rooms[i]) >= (int)sizeof(name) ||
            mr_store_key(store, name, key, sizeof(key))) {
            fprintf(stderr, "mediarelay-sign: the room key is too long\n");
            goto done;
        }
        if (redis_do(c, "room", "SADD %s %s", key, user))
            goto done;
    }
    printf("%s=%s\n", conf->auth.cookie, sid);
    rc = 0;
done:
    mr_store_free(store);
    mr_conf_free(conf);
    return rc;
}

/* --- a signed link -------------------------------------------------------- */

static int link_main(int argc, char **argv)
{
    const char *base = NULL, *url = NULL;
    struct mr_token_key *key;
    struct mr_conf *conf;
    struct mr_arena a;
    long ttl = 0;
    char *link;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        } else if (config_option(argc, argv, &i)) {
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
    if (!(conf = load_conf(argc, argv)))
        return 1;
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
    key = mr_token_key_ring(conf->secret, conf->previous_secrets.v,
                                 conf->previous_secrets.n);
    mr_arena_init(&a, 0);
    rc = key ? mr_sign_stream_link(key, &a, base, url, mr_clock_wall_s() + ttl, &link) : 1;
    if (!rc)
        printf("%s\n", link);
    mr_arena_free(&a);
    mr_token_key_free(key);
    mr_conf_free(conf);
    return rc ? 1 : 0;
}

/* --- opening a token --------------------------------------------------- */

/* The token in a relay URL (after /api/seg/ or /api/m3u8/, up to '.', '/'
 * or '?'), or arg itself. */
static struct mr_str token_of(const char *arg)
{
    static const char *const routes[] = { "/api/seg/", "/api/m3u8/" };
    const char *p = arg;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const char *r = strstr(arg, routes[i]);
        if (r) {
            p = r + strlen(routes[i]);
            break;
        }
    }
    return (struct mr_str){ p, strcspn(p, "./?#") };
}

static int token_main(int argc, char **argv)
{
    const char *arg = NULL, *kind;
    struct mr_token_key *key;
    struct json_object *o;
    struct mr_str data, head, rest, url, vars;
    struct mr_conf *conf;
    struct mr_arena a;
    time_t exp = 0;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (config_option(argc, argv, &i))
            continue;
        if (argv[i][0] == '-' || arg) {
            usage(stderr);
            return 2;
        }
        arg = argv[i];
    }
    if (!arg) {
        usage(stderr);
        return 2;
    }
    if (!(conf = load_conf(argc, argv)))
        return 1;
    key = mr_token_key_ring(conf->secret, conf->previous_secrets.v, conf->previous_secrets.n);
    mr_conf_free(conf);
    if (!key)
        return 1;
    mr_arena_init(&a, 0);
    rc = mr_token_verify(key, &a, token_of(arg), mr_clock_wall_s(), &data, &exp);
    mr_token_key_free(key);
    if (rc && rc != MR_ETOKEN_EXPIRED) {
        fprintf(stderr, "mediarelay-sign: not a token of this configuration's secrets\n");
        mr_arena_free(&a);
        return 1;
    }
    /* kind scope '\n' URL ['\n' variables] */
    rest = data.len ? mr_str_cut((struct mr_str){ data.p + 1, data.len - 1 }, '\n', &head)
                    : MR_STR_NULL;
    vars = rest.p ? mr_str_cut(rest, '\n', &url) : MR_STR_NULL;
    kind = !data.len ? "?" : data.p[0] == 's' ? "segment" : data.p[0] == 'p' ? "playlist"
         : data.p[0] == 'd' ? "directory" : "?";
    o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string(kind));
    if (rest.p) {
        json_object_object_add(o, "scope", json_object_new_string_len(head.p, (int)head.len));
        json_object_object_add(o, "url", json_object_new_string_len(url.p, (int)url.len));
        if (vars.p)
            json_object_object_add(o, "variables",
                                   json_object_new_string_len(vars.p, (int)vars.len));
    }
    json_object_object_add(o, "expire_at", json_object_new_int64((int64_t)exp));
    json_object_object_add(o, "expired", json_object_new_boolean(rc == MR_ETOKEN_EXPIRED));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    mr_arena_free(&a);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "session"))
        return session_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "token"))
        return token_main(argc - 1, argv + 1);
    return link_main(argc, argv);
}
