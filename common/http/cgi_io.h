/* cgi_io.h - binds a request's body and a response's output to plain CGI
 * (RFC 3875): the request is the environment, its body stdin, the answer
 * stdout, in the same "Status:" header form as FastCGI's.
 *
 * For shared hosting, where the web server runs the executable once per
 * request (Apache's mod_cgi or mod_cgid).  No splice mover: the relay then
 * moves bodies through libcurl's buffers (streamed all the same).
 */
#ifndef MR_CGI_IO_H
#define MR_CGI_IO_H

#include "http/request.h"
#include "http/response.h"

struct mr_cgi_io {
    int in_fd;          /* the body: stdin */
    int out_fd;         /* the answer: stdout */
    long left;          /* body bytes not yet read (CONTENT_LENGTH) */
};

/* Sets up `out` to write to io->out_fd and the request's body reader to
 * read at most req->content_length bytes of io->in_fd (a CGI program's
 * stdin need not end where the body does).  Call after mr_request_parse. */
void mr_cgi_bind(struct mr_cgi_io *io, struct mr_out *out, struct mr_request *req);

/* Reads and drops what is left of the body (at most cap bytes, waiting at
 * most wait_ms for each piece).  A CGI program that answers before it read
 * the body it was sent (a 401 needs no body) and exits makes Apache's write
 * of that body fail, and Apache then drops the connection instead of
 * sending the answer. */
void mr_cgi_drain(struct mr_cgi_io *io, long cap, int wait_ms);

/* True when this process was started as a CGI program: the web server set
 * GATEWAY_INTERFACE and fd 0 is not a listening socket (FastCGI's). */
bool mr_cgi_started(void);

#endif
