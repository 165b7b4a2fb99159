/* openapi.c - GET /openapi.json: the OpenAPI description at the root of the source tree,
 * embedded at build time (see the Makefile), so the binary needs no file at run time and
 * can never serve a description of another version. */
#include "openapi.h"

#include "http.h"

int openapi_handle(h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = rz_openapi_json_len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json; charset=utf-8"));
    h2o_start_response(req, &generator);
    /* Static bytes: nothing to copy into the request's pool. */
    h2o_iovec_t body = h2o_iovec_init(rz_openapi_json, rz_openapi_json_len);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}
