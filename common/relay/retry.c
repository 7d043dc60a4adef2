/* retry.c - resolve, try, on a dead link resolve again and try once more
 * (retry.h). */
#include "relay/retry.h"

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/error.h"
#include "core/log.h"
#include "relay/resolver.h"

int mr_retry_resolved(struct mr_ctx *ctx, const struct mr_media *m, const struct mr_retry *t,
                      enum mr_outcome *out)
{
    struct mr_source src;
    int rc;

    *out = MR_LINK_DEAD;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt)
            mr_info("media %s: the upstream answered %ld: resolving again", m->id,
                    ctx->upstream_status);
        rc = attempt ? mr_resolve_again(ctx, m, src.url, &src) : mr_resolve(ctx, m, &src);
        if (rc)
            return t->unresolved ? t->unresolved(ctx, t->arg, rc)
                                 : mr_answer_unresolved(ctx, m, rc);
        if ((rc = t->try(ctx, t->arg, &src, attempt, out)) || *out != MR_LINK_DEAD)
            return rc;
    }
    return MR_OK;
}
