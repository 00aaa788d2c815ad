/* html.h - HTML to plain text for ingestion. */
#ifndef SLORAG_HTML_H
#define SLORAG_HTML_H

#include <stddef.h>
#include "err.h"

/* Strips tags (dropping <script>, <style>, <head> contents and comments),
 * turns block elements into line breaks so paragraphs survive, decodes
 * the common named entities and numeric references to UTF-8, and returns
 * the <title> when present.  *ret_text and *ret_title are malloc'd; the
 * title is NULL when the page has none. */
enum err ret_html_to_text(const char *html, size_t len, char **ret_text, size_t *ret_len, char **ret_title);

#endif
