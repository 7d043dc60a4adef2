/* resolver.h - a media item's upstream, through the URL cache.
 *
 * Providers that ask the network (provider.remote) are resolved once and
 * the answer kept in `url:{provider}:{media}` (JSON) until shortly before
 * its link expires: the expiry the provider gives, else the one the link
 * states (expiry.h), else now + resolve.default_ttl_s.  A resolution is made
 * once however many requests ask at once (`lock:url:…`, mr_store_lock: an
 * owner-token lock with resolve.lock_timeout_s as its TTL): the others
 * wait for it, up to resolve.lock_timeout_s.  From resolve.refresh_margin_s
 * before the expiry, the first request to come refreshes it while the
 * others keep using the still-valid link.  With Redis down the store's
 * in-process cache does the same job per process.
 */
#ifndef MR_RESOLVER_H
#define MR_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;
struct mr_arena;
struct mr_ctx;
struct mr_media;
struct mr_source;

/* The upstream of a media item into *out (strings in the request's arena).
 * Errors are the provider's. */
int mr_resolve(struct mr_ctx *ctx, const struct mr_media *m, struct mr_source *out);

/* The same after the upstream URL `failed` (the resolution's url) answered
 * 401/403/404/410: a cached resolution with another URL is taken (another
 * request resolved it again already), else the item is resolved now, once
 * however many requests ask at once. */
int mr_resolve_again(struct mr_ctx *ctx, const struct mr_media *m, const char *failed,
                     struct mr_source *out);

/* Drops a media item's cached resolution. */
void mr_resolve_forget(struct mr_ctx *ctx, const struct mr_media *m);

/* A source as JSON (the cache's form) and back; for tests. */
struct json_object *mr_source_to_json(const struct mr_source *s, long long refresh_at);
int mr_source_from_json(struct mr_arena *a, const char *text, size_t len,
                        struct mr_source *out, long long *refresh_at);

#endif
