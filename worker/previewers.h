/* previewers.h - link previewers and crawlers (PREVIEW_AGENTS): telling them by their
 * User-Agent, and the harmless page they get on the links people paste into chats, so
 * that a chat's preview spends no use and learns nothing about the file. */
#ifndef RZ_PREVIEWERS_H
#define RZ_PREVIEWERS_H

#include <h2o.h>

#include "cfg.h"

/* Does the request's User-Agent contain one of agents (lowercase substrings)? */
int previewers_match(const cfg_str_list *agents, h2o_req_t *req);

/* 200 text/html: what this link is and that it wants a browser. The same bytes for
 * every key, known or not: no store call, nothing counted, nothing spent. */
void previewers_page(h2o_req_t *req);

#endif
