/* html.c - a small, forgiving HTML-to-text converter (see html.h).
 *
 * It is a single pass over the bytes with no DOM: good enough for the
 * documentation pages people ingest, never fails on malformed markup, and
 * bounded by the input size (the output is never longer than the input
 * plus one newline per tag). */
#include "html.h"
#include "buf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool tag_is(const char *name, size_t n, const char *want) {
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static bool block_tag(const char *name, size_t n) {
    static const char *const blocks[] = {"p",  "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3",
                                         "h4", "h5",  "h6", "pre", "section", "article", "blockquote", "hr",
                                         "dt", "dd",  "header", "footer", "nav", "main", "td", "th"};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        if (tag_is(name, n, blocks[i]))
            return true;
    return false;
}

static size_t utf8_encode(unsigned long cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the entity at s[0] == '&'; returns bytes consumed (0 = not one). */
static size_t entity(const char *s, size_t n, char *out, size_t *ret_outlen) {
    static const struct {
        const char *name;
        const char *text;
    } named[] = {{"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "},
                 {"mdash", "\xe2\x80\x94"}, {"ndash", "\xe2\x80\x93"}, {"hellip", "\xe2\x80\xa6"},
                 {"copy", "\xc2\xa9"}};
    const char *semi = memchr(s, ';', n < 12 ? n : 12);
    if (!semi)
        return 0;
    size_t len = (size_t)(semi - s) + 1;
    if (len > 3 && s[1] == '#') {
        char *end;
        unsigned long cp = (s[2] == 'x' || s[2] == 'X') ? strtoul(s + 3, &end, 16) : strtoul(s + 2, &end, 10);
        if (end != semi || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        *ret_outlen = utf8_encode(cp, out);
        return len;
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t nl = strlen(named[i].name);
        if (nl == len - 2 && strncmp(s + 1, named[i].name, nl) == 0) {
            *ret_outlen = strlen(named[i].text);
            memcpy(out, named[i].text, *ret_outlen);
            return len;
        }
    }
    return 0;
}

enum err ret_html_to_text(const char *html, size_t len, char **ret_text, size_t *ret_len, char **ret_title) {
    struct buf out, title;
    buf_init(&out, len * 2 + 16);
    buf_init(&title, 1024);
    enum err e = buf_append(&out, "", 0);
    bool in_title = false, space_pending = false;
    const char *skip_until = NULL; /* closing tag of script/style/head */
    size_t i = 0;
    while (!e && i < len) {
        char c = html[i];
        if (skip_until) {
            size_t sl = strlen(skip_until);
            if (c == '<' && len - i >= sl && strncasecmp(html + i, skip_until, sl) == 0)
                skip_until = NULL;
            else {
                i++;
                continue;
            }
        }
        if (c == '<') {
            if (len - i >= 4 && strncmp(html + i, "<!--", 4) == 0) {
                const char *end = NULL;
                for (size_t j = i + 4; j + 3 <= len; j++)
                    if (strncmp(html + j, "-->", 3) == 0) {
                        end = html + j + 3;
                        break;
                    }
                i = end ? (size_t)(end - html) : len;
                continue;
            }
            const char *gt = memchr(html + i, '>', len - i);
            if (!gt)
                break; /* unterminated tag: drop the rest */
            size_t j = i + 1;
            bool closing = j < len && html[j] == '/';
            if (closing)
                j++;
            size_t ns = j;
            while (j < (size_t)(gt - html) && html[j] != ' ' && html[j] != '/' && html[j] != '\t' && html[j] != '\n')
                j++;
            const char *name = html + ns;
            size_t nl = j - ns;
            if (!closing && (tag_is(name, nl, "script") || tag_is(name, nl, "style")))
                skip_until = tag_is(name, nl, "script") ? "</script" : "</style";
            else if (tag_is(name, nl, "title"))
                in_title = !closing;
            else if (block_tag(name, nl)) {
                bool para = !tag_is(name, nl, "br") && !tag_is(name, nl, "li") && !tag_is(name, nl, "td") &&
                            !tag_is(name, nl, "th");
                /* collapse runs of breaks to at most one blank line */
                size_t have = 0;
                while (have < out.len && have < 2 && out.data[out.len - 1 - have] == '\n')
                    have++;
                size_t want = out.len == 0 ? 0 : (para ? 2 : 1);
                while (!e && have < want) {
                    e = buf_append(&out, "\n", 1);
                    have++;
                }
                space_pending = false;
            }
            i = (size_t)(gt - html) + 1;
            continue;
        }
        char dec[8];
        size_t dl = 1, used = 1;
        dec[0] = c;
        if (c == '&') {
            size_t n = entity(html + i, len - i, dec, &dl);
            if (n)
                used = n;
            else
                dl = 1;
        }
        i += used;
        bool ws = dl == 1 && (dec[0] == ' ' || dec[0] == '\n' || dec[0] == '\t' || dec[0] == '\r');
        struct buf *target = in_title ? &title : &out;
        if (ws) {
            space_pending = target->len > 0 && target->data[target->len - 1] != '\n';
            continue;
        }
        if (space_pending) {
            e = buf_append(target, " ", 1);
            space_pending = false;
        }
        if (!e)
            e = buf_append(target, dec, dl);
        if (e == ERR_TOO_LARGE && target == &title) {
            buf_init(&title, 1024); /* an absurd title is dropped, not fatal */
            in_title = false;
            e = ERR_OK;
        }
    }
    while (!e && out.len && out.data[out.len - 1] == '\n')
        out.data[--out.len] = '\0';
    if (e) {
        buf_done(&out);
        buf_done(&title);
        return e;
    }
    *ret_len = out.len;
    *ret_text = buf_steal(&out);
    *ret_title = title.len ? buf_steal(&title) : NULL;
    buf_done(&title);
    return ERR_OK;
}
