/* dashboard_assets.h - the dashboard page, compiled into slorag.
 *
 * dashboard_assets.c is generated at build time by gen_asset.py from
 * index.html, dashboard.css and dashboard.js (the CSS and JS inlined), so
 * the page is served from memory with nothing else to fetch but
 * GET /v1/stats.  Serve it as "text/html; charset=utf-8" with
 * dashboard_csp as its Content-Security-Policy header: the policy admits
 * exactly the inline script and style (by hash) and connections to the
 * page's own origin. */
#ifndef SLORAG_DASHBOARD_ASSETS_H
#define SLORAG_DASHBOARD_ASSETS_H

extern const char dashboard_html[];            /* UTF-8 HTML, NUL-terminated */
extern const unsigned long dashboard_html_len; /* bytes, without the NUL */
extern const char dashboard_csp[];             /* Content-Security-Policy header value */
extern const char dashboard_etag[];            /* strong ETag, with its quotes */

#endif
