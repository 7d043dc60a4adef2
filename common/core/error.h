/* error.h - the one error enum of libmediarelay and its mapping to HTTP. */
#ifndef MR_ERROR_H
#define MR_ERROR_H

/* Every function that can fail returns one of these (0 is success). */
enum mr_err {
    MR_OK = 0,
    MR_EINVAL,          /* bad input from a client: 400 bad_request */
    MR_EUNAUTHORIZED,   /* missing or wrong credentials: 401 */
    MR_EFORBIDDEN,      /* authenticated but not allowed, bad token: 403 */
    MR_ETOKEN_EXPIRED,  /* a well-signed token past its expiry: 403 */
    MR_EBLOCKED,        /* upstream address refused by policy (SSRF guard): 403 */
    MR_ENOTFOUND,       /* 404 */
    MR_EMETHOD,         /* 405 */
    MR_ETOOBIG,         /* a capped buffer would grow past its cap: 413 */
    MR_ERANGE,          /* unsatisfiable range: 416 */
    MR_ENOTIMPL,        /* route exists, handler not there yet: 501 */
    MR_EUPSTREAM,       /* upstream failed or answered garbage: 502 */
    MR_EREFUSED,        /* upstream refused the connection: 502 */
    MR_EUNAVAILABLE,    /* a dependency (Redis for sessions) is down: 503 */
    MR_ETIMEOUT,        /* upstream timed out: 504 */
    MR_ENOMEM,          /* 500 */
    MR_EINTERNAL,       /* 500 */
    MR_EBUSY,           /* a lock is held by someone else (not an HTTP answer) */
    MR_ECLIENT,         /* the client went away while we wrote (nothing to answer) */
    /* Appended, not sorted in: remembered failures in Redis hold the number. */
    MR_ELIMIT,          /* the client spent its budget (rate limit): 429, Retry-After */
    MR_EOVERLOADED,     /* a capacity cap is full (yt-dlp runs): 503, Retry-After */
    MR_ERR_COUNT
};

/* A static, human-readable description ("not found"). */
const char *mr_strerror(int err);
/* The HTTP status an error is answered with (500 for unknown values). */
int mr_err_status(int err);
/* The JSON error code ("not_found", "token_expired", ...). */
const char *mr_err_code(int err);
/* The reason phrase for an HTTP status ("Partial Content"), "" if unknown. */
const char *mr_http_reason(int status);

#endif
