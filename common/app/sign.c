/* sign.c - signing and checking /stream links. */
#include "app/sign.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/error.h"
#include "core/token.h"

/* The MAC over "stream\n" exp "\n" url, exp as written, with the key
 * ring's i-th secret. */
static int mac(const struct mr_token_key *k, size_t i, struct mr_arena *a, const char *url,
               const char *exp, char **sig)
{
    unsigned char m[MR_HMAC_LEN];
    char *msg;
    int rc;

    msg = mr_arena_printf(a, "stream\n%s\n%s", exp, url);
    *sig = mr_arena_alloc(a, (MR_HMAC_LEN + 2) / 3 * 4 + 1);
    if (!msg || !*sig)
        return MR_ENOMEM;
    if ((rc = mr_hmac_sha256(k, i, msg, strlen(msg), m)))
        return rc;
    mr_b64url_encode(m, sizeof(m), *sig);
    return MR_OK;
}

int mr_sign_stream(const struct mr_token_key *k, struct mr_arena *a, const char *url,
                   time_t exp, char **sig)
{
    char e[24];
    snprintf(e, sizeof(e), "%lld", (long long)exp);
    return mac(k, 0, a, url, e, sig);
}

int mr_sign_stream_verify(const struct mr_token_key *k, struct mr_arena *a, const char *url,
                          const char *exp, const char *sig, time_t now)
{
    char *want;
    long e;
    int rc;

    /* The expiry is signed as written: "02000" is not "2000". */
    if (!exp || !sig || !mr_str_to_long(mr_str_c(exp), 0, __LONG_MAX__, &e))
        return MR_EFORBIDDEN;
    /* The current secret, then the previous ones (a rotation keeps the
     * links made before it). */
    for (size_t i = 0; i < mr_token_key_count(k); i++) {
        if ((rc = mac(k, i, a, url, exp, &want)))
            return rc;
        if (strlen(sig) == strlen(want) && !CRYPTO_memcmp(sig, want, strlen(want)))
            return (time_t)e <= now ? MR_ETOKEN_EXPIRED : MR_OK;
    }
    return MR_EFORBIDDEN;
}

int mr_sign_stream_link(const struct mr_token_key *k, struct mr_arena *a, const char *base,
                        const char *url, time_t exp, char **out)
{
    char *sig, *esc;
    int rc;

    if ((rc = mr_sign_stream(k, a, url, exp, &sig)))
        return rc;
    esc = curl_easy_escape(NULL, url, (int)strlen(url));
    if (!esc)
        return MR_ENOMEM;
    *out = mr_arena_printf(a, "%s/stream?url=%s&exp=%lld&sig=%s", base, esc, (long long)exp, sig);
    curl_free(esc);
    return *out ? MR_OK : MR_ENOMEM;
}
