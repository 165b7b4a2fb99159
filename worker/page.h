/* page.h - the drop page (GET /) and its assets (GET /assets/NAME), built into the
 * binary from web/ (the Makefile's EMBED). */
#ifndef RZ_PAGE_H
#define RZ_PAGE_H

#include <h2o.h>
#include <stddef.h>

int page_handle(h2o_req_t *req);
int page_asset_handle(h2o_req_t *req, const char *name, size_t len);

#endif
