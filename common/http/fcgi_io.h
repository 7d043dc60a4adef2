/* fcgi_io.h - binds a request's body and a response's output to FastCGI.
 *
 * The one place besides server.c that touches libfcgi's streams.
 */
#ifndef MR_FCGI_IO_H
#define MR_FCGI_IO_H

#include <fcgiapp.h>

#include "http/request.h"
#include "http/response.h"

/* Sets up `out` to write to r->out and the request's body reader to read
 * r->in.  Both stay valid until FCGX_Finish_r. */
void mr_fcgi_bind(FCGX_Request *r, struct mr_out *out, struct mr_request *req);

/* Lets go of what the thread's request held for moving bytes (pipes);
 * after each request. */
void mr_fcgi_end(void);

/* How large the mover asks its pipes to be (default 1 MiB).  For tests,
 * which shrink them to walk the paths where a pipe fills mid-record; set it
 * before threads start. */
void mr_fcgi_pipe_bytes(int bytes);

/* Ends the connection without ending the request: for a body that broke
 * off after its headers were sent. */
void mr_fcgi_abort(FCGX_Request *r);

#endif
