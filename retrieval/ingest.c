/* ingest.c - file and directory ingestion (see ingest.h).
 *
 * Each file is read whole (under the document size cap), checked to be
 * UTF-8 text, and stored in one transaction, so a crash mid-walk leaves
 * every earlier file fully stored and none half-stored. */
#include "ingest.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool supported(const char *path) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return false;
    return strcmp(dot, ".md") == 0 || strcmp(dot, ".markdown") == 0 || strcmp(dot, ".txt") == 0;
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

static enum err ingest_file(struct ret_engine *s, int64_t cid, const char *path, const struct ret_ingest_opts *o,
                            struct ret_ingest_stats *st) {
    const char *why = NULL;
    char *text = NULL, *title = NULL;
    size_t len = 0;
    enum err e = ERR_OK;
    if (!supported(path))
        why = "unsupported file type";
    else
        why = read_text(path, o->max_document_bytes, &text, &len);
    if (!why) {
        title = make_title(path, text, len);
        const char *id = strncmp(path, "./", 2) == 0 ? path + 2 : path;
        struct ret_doc_in doc = {.ext_id = id, .title = title, .source = path, .text = text, .text_len = len};
        struct ret_change ch;
        e = title ? ret_engine_put(s, cid, &doc, &ch) : ERR_NOMEM;
        if (!e) {
            st->documents++;
            st->bytes += len;
            st->chunks += ch.nchunks;
            ret_change_done(&ch);
        } else if (e == ERR_INVALID_FIELD) {
            why = "invalid document id (longer than 256 bytes)";
            e = ERR_OK;
        }
    }
    if (why)
        st->skipped++;
    if (o->on_file)
        o->on_file(o->ud, path, e ? err_message(e) : why, st);
    free(text);
    free(title);
    return e;
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
    for (size_t i = 0; !e && i < npaths; i++)
        e = walk(s, collection_id, paths[i], opts, &st, 0);
    *ret_stats = st;
    return e;
}
