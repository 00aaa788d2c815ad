/* squad.c - SQuAD files into a scratch store (see squad.h). */
#include "squad.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void squad_paragraph_id(size_t article, size_t paragraph, char *out, size_t n) {
    snprintf(out, n, "a%zu.p%zu", article, paragraph);
}

int squad_scratch_open(const struct cfg *c, const char *tool, const char *dataset, struct squad_scratch *ret) {
    struct squad_scratch s = {0};
    json_error_t jerr;
    s.root = json_load_file(dataset, 0, &jerr);
    if (!s.root) {
        fprintf(stderr, "slorag %s: %s:%d:%d: %s\n", tool, dataset, jerr.line, jerr.column, jerr.text);
        return 2;
    }
    s.articles = json_object_get(s.root, "data");
    if (!json_is_array(s.articles)) {
        fprintf(stderr, "slorag %s: %s: expected a SQuAD file with a top-level \"data\" array\n", tool, dataset);
        json_decref(s.root);
        return 2;
    }
    snprintf(s.dir, sizeof s.dir, "/tmp/slorag-eval-XXXXXX");
    if (!mkdtemp(s.dir)) {
        perror("mkdtemp");
        json_decref(s.root);
        return 1;
    }
    char path[96], idx[96];
    snprintf(path, sizeof path, "%s/slorag.db", s.dir);
    snprintf(idx, sizeof idx, "%s/index", s.dir);
    struct ret_engine_opts o = {
        .index_dir = idx,
        .index_factory = c->retrieval.index_factory,
        .dim = c->retrieval.embedding_dim,
        .save_interval_ms = 60000,
        .chunk = {c->retrieval.chunk_tokens, c->retrieval.chunk_overlap_tokens},
        .lexical_index = c->retrieval.lexical_index,
    };
    struct ret_embed_http_opts http;
    bool is_http = false;
    enum err e = ret_embed_http_opts_from_cfg(c, &http, &is_http);
    o.http = is_http ? &http : NULL;
    if (!e)
        e = ret_store_open(path, 2, &s.store);
    if (!e)
        e = ret_engine_open(s.store, &o, NULL, &s.engine);
    if (!e)
        e = ret_collection_ensure(s.store, "eval", "eval", &s.collection_id);
    size_t total = 0;
    for (size_t a = 0; a < json_array_size(s.articles); a++)
        total += json_array_size(json_object_get(json_array_get(s.articles, a), "paragraphs"));
    bool tty = isatty(STDERR_FILENO) == 1;
    double t0 = clock_ms();
    for (size_t a = 0; !e && a < json_array_size(s.articles); a++) {
        json_t *art = json_array_get(s.articles, a);
        json_t *paras = json_object_get(art, "paragraphs");
        for (size_t p = 0; !e && p < json_array_size(paras); p++) {
            json_t *ctx = json_object_get(json_array_get(paras, p), "context");
            if (!json_is_string(ctx) || json_string_length(ctx) == 0)
                continue;
            char id[48];
            squad_paragraph_id(a, p, id, sizeof id);
            struct ret_doc_in d = {.ext_id = id, .title = json_string_value(json_object_get(art, "title")),
                                   .text = json_string_value(ctx), .text_len = json_string_length(ctx)};
            e = ret_engine_put(s.engine, s.collection_id, &d, NULL);
            s.paragraphs++;
            if (tty && (s.paragraphs % 25 == 0 || s.paragraphs == total))
                fprintf(stderr, "\r\033[Kingesting paragraphs %zu/%zu", s.paragraphs, total);
        }
    }
    s.ingest_ms = clock_ms() - t0;
    if (tty)
        fputs("\r\033[K", stderr);
    if (e) {
        fprintf(stderr, "slorag %s: %s\n", tool, ret_error_detail(e));
        squad_scratch_close(&s);
        return 1;
    }
    *ret = s;
    return 0;
}

void squad_scratch_close(struct squad_scratch *s) {
    ret_engine_free(s->engine);
    ret_store_free(s->store);
    if (s->dir[0]) {
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
    }
    json_decref(s->root);
    memset(s, 0, sizeof(*s));
}
