/* outcome.h - what a service that may answer a request did with it.
 *
 * Error codes (core/error.h) mean errors only.  A relay service that can
 * leave the answer to its caller says so with an outcome, as an nginx
 * handler returns NGX_DECLINED: it returns MR_OK and sets an enum
 * mr_outcome, or returns an error (nothing answered, the caller answers
 * it).  Every outcome but MR_ANSWERED leaves the response untouched.
 */
#ifndef MR_OUTCOME_H
#define MR_OUTCOME_H

enum mr_outcome {
    MR_ANSWERED = 0,   /* answered, whatever the status (or the client left) */
    MR_DECLINED,       /* not answered: the caller does it itself (the segment
                          cache: not cached, relay it as it is) */
    MR_PLAYLIST,       /* not answered: the upstream's body is an HLS playlist,
                          for the caller to fetch whole and rewrite */
    MR_LINK_DEAD,      /* not answered: the upstream answered 401/403/404/410
                          to a link that may have expired (the caller resolves
                          the item again or finds the link again) */
};

#endif
