/* ingest.c - file and directory ingestion (see ingest.h).
 *
 * Each file is read whole (under the document size cap), checked to be
 * UTF-8 text, and stored in one transaction, so a crash mid-walk leaves
 * every earlier file fully stored and none half-stored. */
#include "ingest.h"
#include "html.h"
#include "util.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum kind { K_NONE, K_TEXT, K_HTML, K_JSONL };

static enum kind kind_of(const char *path) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return K_NONE;
    if (strcmp(dot, ".md") == 0 || strcmp(dot, ".markdown") == 0 || strcmp(dot, ".txt") == 0)
        return K_TEXT;
    if (strcmp(dot, ".html") == 0 || strcmp(dot, ".htm") == 0)
        return K_HTML;
    if (strcmp(dot, ".jsonl") == 0)
        return K_JSONL;
    return K_NONE;
}

/* Title: the first Markdown "# " heading, else the file's base name. */
static char *make_title(const char *path, const char *text, size_t len) {
    size_t i = 0;
    while (i < len) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t ll = nl ? (size_t)(nl - line) : len - i;
        if (ll > 2 && line[0] == '#' && line[1] == ' ') {
            size_t tl = ll - 2 > 200 ? 200 : ll - 2;
            while (tl && (line[2 + tl - 1] == '\r' || line[2 + tl - 1] == ' '))
                tl--;
            if (tl && util_utf8_valid(line + 2, tl))
                return strndup(line + 2, tl);
        }
        i += ll + 1;
    }
    const char *slash = strrchr(path, '/');
    return strdup(slash ? slash + 1 : path);
}

static const char *read_text(const char *path, long max_bytes, char **ret_text, size_t *ret_len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return "cannot open";
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return "not a regular file";
    }
    if (st.st_size > max_bytes) {
        fclose(f);
        return "larger than retrieval.max_document_bytes";
    }
    char *text = malloc((size_t)st.st_size + 1);
    if (!text) {
        fclose(f);
        return "out of memory";
    }
    size_t n = fread(text, 1, (size_t)st.st_size, f);
    fclose(f);
    text[n] = '\0';
    const char *why = NULL;
    if (n == 0)
        why = "empty";
    else if (memchr(text, '\0', n))
        why = "binary (contains NUL bytes)";
    else if (!util_utf8_valid(text, n))
        why = "not valid UTF-8";
    if (why) {
        free(text);
        return why;
    }
    *ret_text = text;
    *ret_len = n;
    return NULL;
}

static enum err store_doc(struct ret_engine *s, int64_t cid, const struct ret_doc_in *doc, struct ret_ingest_stats *st,
                          const char **ret_why) {
    struct ret_change ch;
    enum err e = ret_engine_put(s, cid, doc, &ch);
    if (!e) {
        st->documents++;
        st->bytes += doc->text_len;
        st->chunks += ch.nchunks;
        ret_change_done(&ch);
    } else if (e == ERR_INVALID_FIELD) {
        *ret_why = "invalid document id (empty or longer than 256 bytes)";
        e = ERR_OK;
    }
    return e;
}

static void report(const struct ret_ingest_opts *o, const char *path, const char *why, struct ret_ingest_stats *st) {
    if (why)
        st->skipped++;
    if (o->on_file)
        o->on_file(o->ud, path, why, st);
}

/* One document per line; a bad line is reported and skipped. */
static enum err ingest_jsonl(struct ret_engine *s, int64_t cid, const char *path, const struct ret_ingest_opts *o,
                             struct ret_ingest_stats *st) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        report(o, path, "cannot open", st);
        return ERR_OK;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    enum err e = ERR_OK;
    while (!e && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        st->read_bytes += (size_t)n;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        char where[4200];
        snprintf(where, sizeof where, "%s:%zu", path, lineno);
        const char *why = NULL;
        json_error_t jerr;
        json_t *j = NULL;
        if (n > o->max_document_bytes)
            why = "line longer than retrieval.max_document_bytes";
        else if (!(j = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr)))
            why = json_error_code(&jerr) == json_error_invalid_utf8 ? "not valid UTF-8" : "not valid JSON";
        else if (!json_is_object(j))
            why = "not a JSON object";
        else {
            json_t *id = json_object_get(j, "id"), *text = json_object_get(j, "text");
            json_t *title = json_object_get(j, "title"), *meta = json_object_get(j, "metadata");
            if (!json_is_string(text) || json_string_length(text) == 0)
                why = "\"text\" missing or empty";
            else if ((id && !json_is_string(id)) || (title && !json_is_string(title)) ||
                     (meta && !json_is_object(meta)))
                why = "\"id\" and \"title\" must be strings, \"metadata\" an object";
            else {
                char *meta_text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
                const char *did = id ? json_string_value(id) : (strncmp(where, "./", 2) == 0 ? where + 2 : where);
                struct ret_doc_in doc = {.ext_id = did,
                                         .title = title ? json_string_value(title) : did,
                                         .source = path,
                                         .metadata = meta_text,
                                         .text = json_string_value(text),
                                         .text_len = json_string_length(text)};
                e = store_doc(s, cid, &doc, st, &why);
                free(meta_text);
            }
        }
        json_decref(j);
        if (why || e)
            report(o, where, e ? ret_error_detail(e) : why, st);
    }
    free(line);
    fclose(f);
    if (o->on_file)
        o->on_file(o->ud, path, NULL, st);
    return e;
}

static enum err ingest_file(struct ret_engine *s, int64_t cid, const char *path, const struct ret_ingest_opts *o,
                            struct ret_ingest_stats *st) {
    enum kind k = kind_of(path);
    if (k == K_NONE) {
        report(o, path, "unsupported file type", st);
        return ERR_OK;
    }
    if (k == K_JSONL)
        return ingest_jsonl(s, cid, path, o, st);
    char *text = NULL, *title = NULL;
    size_t len = 0;
    enum err e = ERR_OK;
    const char *why = read_text(path, o->max_document_bytes, &text, &len);
    struct stat sb;
    if (stat(path, &sb) == 0)
        st->read_bytes += (size_t)sb.st_size; /* processed, stored or not */
    if (!why && k == K_HTML) {
        char *plain = NULL;
        size_t plen = 0;
        e = ret_html_to_text(text, len, &plain, &plen, &title);
        free(text);
        text = plain;
        len = plen;
        if (!e && len == 0)
            why = "no text after removing markup";
    }
    if (!why && !e) {
        if (!title)
            title = make_title(path, text, len);
        const char *id = strncmp(path, "./", 2) == 0 ? path + 2 : path;
        struct ret_doc_in doc = {.ext_id = id, .title = title, .source = path, .text = text, .text_len = len};
        e = title ? store_doc(s, cid, &doc, st, &why) : ERR_NOMEM;
    }
    report(o, path, e ? ret_error_detail(e) : why, st);
    free(text);
    free(title);
    return e;
}

/* First pass: bytes of the files that will be read, for progress and ETA. */
static void measure(const char *path, size_t *total, int depth) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return;
    if (!S_ISDIR(sb.st_mode)) {
        if (kind_of(path) != K_NONE)
            *total += (size_t)sb.st_size;
        return;
    }
    if (depth > 32)
        return;
    DIR *d = opendir(path);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        char p[4096];
        if (snprintf(p, sizeof p, "%s/%s", path, de->d_name) < (int)sizeof p)
            measure(p, total, depth + 1);
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum err walk(struct ret_engine *s, int64_t cid, const char *path, const struct ret_ingest_opts *o,
                     struct ret_ingest_stats *st, int depth) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        st->skipped++;
        if (o->on_file)
            o->on_file(o->ud, path, strerror(errno), st);
        return ERR_OK;
    }
    if (!S_ISDIR(sb.st_mode))
        return ingest_file(s, cid, path, o, st);
    if (depth > 32)
        return ERR_OK;
    DIR *d = opendir(path);
    if (!d)
        return ERR_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    enum err e = ERR_OK;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn) {
                e = ERR_NOMEM;
                break;
            }
            names = nn;
        }
        size_t pl = strlen(path);
        names[n] = malloc(pl + strlen(de->d_name) + 2);
        if (!names[n]) {
            e = ERR_NOMEM;
            break;
        }
        sprintf(names[n], "%s%s%s", path, pl && path[pl - 1] == '/' ? "" : "/", de->d_name);
        n++;
    }
    closedir(d);
    if (!e)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; !e && i < n; i++)
        e = walk(s, cid, names[i], o, st, depth + 1);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return e;
}

enum err ret_ingest_paths(struct ret_engine *s, int64_t collection_id, char *const *paths, size_t npaths,
                          const struct ret_ingest_opts *opts, struct ret_ingest_stats *ret_stats) {
    struct ret_ingest_stats st = {0};
    enum err e = ERR_OK;
    for (size_t i = 0; i < npaths; i++)
        measure(paths[i], &st.total_bytes, 0);
    for (size_t i = 0; !e && i < npaths; i++)
        e = walk(s, collection_id, paths[i], opts, &st, 0);
    *ret_stats = st;
    return e;
}
