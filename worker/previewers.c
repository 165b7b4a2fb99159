/* previewers.c - link previewers and crawlers by User-Agent, and the one page they get
 * on /download/{key} and /preview/{key}: a card that says what the link is and holds
 * nothing about any file. */
#include "previewers.h"

#include <string.h>

#include "http.h"

/* Previewers put their name early; a longer User-Agent is only looked at this far. */
#define AGENT_MAX 1024

int previewers_match(const cfg_str_list *agents, h2o_req_t *req)
{
    ssize_t i = agents->n > 0 ? h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1) : -1;
    if (i == -1)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    char ua[AGENT_MAX + 1];
    size_t n = v.len < AGENT_MAX ? v.len : AGENT_MAX;
    /* Lowercased once; the agents were lowercased when the setting was read. */
    for (size_t k = 0; k < n; k++) {
        char c = v.base[k];
        ua[k] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c == '\0' ? ' ' : c;
    }
    ua[n] = '\0';
    for (size_t k = 0; k < agents->n; k++)
        if (strstr(ua, agents->items[k]) != NULL)
            return 1;
    return 0;
}

static const char page[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"robots\" content=\"noindex, nofollow\">\n"
    "<title>Raven Zero: a private file link</title>\n"
    "<meta name=\"description\" content=\"A file shared through Raven Zero. Open the link in a web browser to "
    "fetch it.\">\n"
    "<meta property=\"og:site_name\" content=\"Raven Zero\">\n"
    "<meta property=\"og:title\" content=\"A private file link\">\n"
    "<meta property=\"og:description\" content=\"A file shared through Raven Zero. Open the link in a web browser "
    "to fetch it; link previews never see it.\">\n"
    "<meta property=\"og:type\" content=\"website\">\n"
    "<meta name=\"twitter:card\" content=\"summary\">\n"
    "</head>\n"
    "<body>\n"
    "<h1>A private file link</h1>\n"
    "<p>This is a Raven Zero link: a file shared for a few minutes and a few downloads, then destroyed. "
    "Open the link in a web browser to fetch it.</p>\n"
    "<p>Link previews and crawlers get only this page. They learn nothing about the file and use up "
    "none of its downloads.</p>\n"
    "</body>\n"
    "</html>\n";

void previewers_page(h2o_req_t *req)
{
    static const char csp[] = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                          H2O_STRLIT(csp));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-robots-tag"), 0, NULL,
                          H2O_STRLIT("noindex, nofollow"));
    http_html(req, 200, page, sizeof(page) - 1);
}
