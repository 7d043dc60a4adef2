/* response.h - status, headers, CORS and bodies, written to an output.
 *
 * The response knows nothing of FastCGI: it writes CGI-style output
 * ("Status: 206 Partial Content\r\nName: value\r\n\r\nbody") through a
 * struct mr_out, which the server binds to the FastCGI stream and the unit
 * tests bind to a buffer.  Headers are collected until the first body byte
 * (or mr_resp_send_headers) and CORS headers are added to every answer.
 */
#ifndef MR_RESPONSE_H
#define MR_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/limits.h"
#include "core/str.h"

struct json_object;
struct mr_conf;
struct mr_request;

struct mr_out {
    /* Writes all n bytes or fails: returns 0 or -1 (the client is gone). */
    int (*write)(void *arg, const void *p, size_t n);
    /* Pushes buffered bytes to the client; may be NULL. */
    int (*flush)(void *arg);
    /* Non-zero when the client has gone away (no I/O); may be NULL. */
    int (*closed)(void *arg);
    void *arg;
    /* Optional: moves up to n bytes that wait on the socket fd to the client
     * without copying them through this process (splice).  MR_OK with
     * *moved (0: nothing waits, or fd is at its end), MR_EUPSTREAM when
     * reading fd failed (errno says why), MR_ECLIENT when the client is
     * gone.  Buffered output goes first. */
    int (*move)(void *arg, int fd, size_t n, size_t *moved);
};

struct mr_response {
    struct mr_arena *arena;
    const struct mr_out *out;
    int status;
    struct mr_header headers[MR_RESP_MAX_HEADERS];
    size_t nheaders;
    bool head_only;            /* HEAD: headers only, the body is dropped */
    bool headers_sent;
    bool failed;               /* a write failed: the client went away */
    bool abort;                /* end the connection without ending the
                                  response: a body broke off midway */
    unsigned long long bytes_out;
};

void mr_resp_init(struct mr_response *r, struct mr_arena *a, const struct mr_out *out,
                  bool head_only);

/* Adds the CORS headers for this request's Origin per conf's cors section. */
int mr_resp_cors(struct mr_response *r, const struct mr_conf *conf,
                 const struct mr_request *req);

void mr_resp_status(struct mr_response *r, int status);
/* Adds a header (copied into the arena).  MR_EINVAL when the name is not a
 * token or the value holds CR, LF or other control bytes; MR_ETOOBIG past
 * MR_RESP_MAX_HEADERS; MR_EINTERNAL after the headers were sent. */
int mr_resp_header(struct mr_response *r, const char *name, const char *value);
int mr_resp_headerf(struct mr_response *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replaces (or adds) a header. */
int mr_resp_set_header(struct mr_response *r, const char *name, const char *value);
const char *mr_resp_get_header(const struct mr_response *r, const char *name);

int mr_resp_send_headers(struct mr_response *r);
/* Body bytes; sends the headers first.  MR_ECLIENT when the client left. */
int mr_resp_write(struct mr_response *r, const void *p, size_t n);
int mr_resp_flush(struct mr_response *r);
/* Whether body bytes can be moved from a socket (mr_resp_move): the output
 * can, and the answer has a body. */
bool mr_resp_can_move(const struct mr_response *r);
/* Body bytes straight from the socket fd (struct mr_out's move); sends the
 * headers first.  MR_OK with *moved (0: nothing waits, or fd is at its
 * end), MR_EUPSTREAM (reading fd failed), MR_ECLIENT (the client left),
 * MR_EINTERNAL when the output cannot move. */
int mr_resp_move(struct mr_response *r, int fd, size_t n, size_t *moved);
/* True when the client is known to be gone (a failed write, or the output
 * reports a hang-up). */
bool mr_resp_client_gone(struct mr_response *r);
/* Sends the headers if nothing was sent yet, and flushes. */
int mr_resp_finish(struct mr_response *r);

/* For an answer whose body holds an upstream's bytes: relayed bodies, and
 * the manifests the relay rewrites but whose other bytes are the
 * upstream's.  Adds "X-Content-Type-Options: nosniff" (the browser takes
 * the Content-Type as it is, never guesses a page from the bytes) and
 * "Content-Security-Policy: sandbox" (a browser that renders the body as a
 * document anyway gives it no script, no forms, no popups and an origin of
 * its own, not this one).  Neither header changes what a player does with
 * the body: fetch, XHR, MSE and <video src> ignore both. */
int mr_resp_foreign(struct mr_response *r);
/* A relayed body: its Content-Type mr_mimetype_relayed(upstream_type)
 * (none on a 304, which has no body and whose headers a browser merges
 * into the copy it revalidates), and mr_resp_foreign.  Call it after the
 * status is set. */
int mr_resp_relayed(struct mr_response *r, const char *upstream_type);

/* A whole JSON answer (Content-Type: application/json; Content-Length). */
int mr_resp_json(struct mr_response *r, int status, struct json_object *obj);
/* {"error":{"code":"...","message":"..."}} with the status of `err`.  The
 * message is optional (NULL: mr_strerror).  MR_EINTERNAL when a body was
 * already under way (nothing can be said any more).  MR_ELIMIT and
 * MR_EOVERLOADED answers carry Retry-After: the one set before, else
 * MR_RETRY_AFTER_S. */
#define MR_RETRY_AFTER_S 5   /* Retry-After (s) of a full cap when nothing better is known */
int mr_resp_error(struct mr_response *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with an explicit status and code (for answers like 404 from an
 * upstream that keep their own status). */
int mr_resp_error_status(struct mr_response *r, int status, const char *code,
                         const char *message);

/* The answer to a CORS preflight (OPTIONS): 204 with the allowed methods
 * (a comma-separated list) and headers. */
int mr_resp_preflight(struct mr_response *r, const struct mr_conf *conf,
                      const struct mr_request *req, const char *methods);

#endif
