/* Unit tests for retrieval/: chunking, the SQLite store, BM25 search, ingestion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunk.h"
#include "html.h"
#include "ingest.h"
#include "store.h"
#include "text.h"

static const struct ret_chunk_opts opts = {.max_tokens = 12, .overlap_tokens = 4};

static void test_chunk_offsets_and_limits(void **state) {
    (void)state;
    const char *text = "# Title\n\nFirst sentence has five words. Second sentence is also here. "
                       "Third one closes the paragraph.\n\nA new paragraph starts. It has two sentences.\n";
    struct ret_chunk_span *sp = NULL;
    size_t n = 0;
    assert_int_equal(ret_chunk_text(text, strlen(text), 12, 4, &sp, &n), ERR_OK);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        assert_true(sp[i].end > sp[i].start);
        assert_true(sp[i].end <= strlen(text));
        assert_true(sp[i].tokens <= 12);
        assert_int_equal(sp[i].tokens, text_count_words(text + sp[i].start, sp[i].end - sp[i].start));
        /* chunks start and end on non-space */
        assert_true(text[sp[i].start] != ' ' && text[sp[i].start] != '\n');
        assert_true(text[sp[i].end - 1] != ' ' && text[sp[i].end - 1] != '\n');
    }
    /* the heading is a unit on its own and the first chunk starts with it */
    assert_memory_equal(text + sp[0].start, "# Title", 7);
    /* the second paragraph starts a chunk of its own */
    const char *p2 = strstr(text, "A new paragraph");
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= text + sp[i].start == p2;
    assert_true(found);
    free(sp);
}

static void test_chunk_long_sentence_and_overlap(void **state) {
    (void)state;
    char text[2048] = "";
    for (int i = 0; i < 30; i++)
        strcat(text, "word ");
    strcat(text, "end. Short one here. Another short one. And a third short. Final words now.");
    struct ret_chunk_span *sp = NULL;
    size_t n = 0;
    assert_int_equal(ret_chunk_text(text, strlen(text), 10, 4, &sp, &n), ERR_OK);
    /* 31 words split into pieces of at most 10 */
    assert_int_equal(sp[0].tokens, 10);
    assert_int_equal(sp[1].tokens, 10);
    assert_int_equal(sp[2].tokens, 10);
    for (size_t i = 0; i < n; i++)
        assert_true(sp[i].tokens <= 10);
    /* some later chunk repeats the previous chunk's last sentence (overlap) */
    int overlapped = 0;
    for (size_t i = 4; i < n; i++)
        overlapped |= sp[i].start < sp[i - 1].end;
    assert_true(overlapped);
    free(sp);
    assert_int_equal(ret_chunk_text(text, strlen(text), 10, 10, &sp, &n), ERR_INVALID_FIELD);
}

static void test_units_join_wrapped_lines(void **state) {
    (void)state;
    const char *text = "The ferry leaves\nfrom pier four. It is slow.\n\n## Next\n- item one\n- item two\n";
    struct ret_unit_iter it;
    struct ret_unit u;
    const char *want[] = {"The ferry leaves\nfrom pier four.", "It is slow.", "## Next", "- item one", "- item two"};
    const bool para[] = {true, false, true, false, false};
    ret_units_init(&it, text, strlen(text));
    for (size_t i = 0; i < 5; i++) {
        assert_true(ret_units_next(&it, &u));
        assert_int_equal(u.end - u.start, strlen(want[i]));
        assert_memory_equal(text + u.start, want[i], strlen(want[i]));
        assert_int_equal(u.para_start, para[i]);
    }
    assert_false(ret_units_next(&it, &u));
}

static void test_html_to_text(void **state) {
    (void)state;
    const char *html = "<html><head><title>Port &amp; Harbour</title><style>p{color:red}</style></head>"
                       "<body><h1>Tides</h1><p>High  tide\n comes <b>twice</b> a day.</p>"
                       "<script>var x = '<p>not text</p>';</script><!-- note --><ul><li>one</li><li>two &#233;&#x20AC;</li></ul>"
                       "<p>5 &lt; 6 &unknown; end</body></html>";
    char *text = NULL, *title = NULL;
    size_t len = 0;
    assert_int_equal(ret_html_to_text(html, strlen(html), &text, &len, &title), ERR_OK);
    assert_string_equal(title, "Port & Harbour");
    assert_string_equal(text, "Tides\n\nHigh tide comes twice a day.\n\none\ntwo \xc3\xa9\xe2\x82\xac\n\n5 < 6 &unknown; end");
    assert_int_equal(len, strlen(text));
    free(text);
    free(title);
    /* malformed markup never fails */
    assert_int_equal(ret_html_to_text("<p>open <b", 10, &text, &len, &title), ERR_OK);
    assert_string_equal(text, "open");
    assert_null(title);
    free(text);
}

static char dir[64];
static char dbpath[128];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/slorag-ret-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/slorag.db", dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(struct ret_store *s, int64_t cid, const char *id, const char *text) {
    struct ret_doc_in d = {.ext_id = id, .title = id, .text = text, .text_len = strlen(text)};
    struct ret_change c;
    assert_int_equal(ret_document_put(s, cid, &d, &opts, NULL, &c), ERR_OK);
    ret_change_done(&c);
}

static void test_store_put_search_replace(void **state) {
    (void)state;
    struct ret_store *s = NULL;
    assert_int_equal(ret_store_open(dbpath, 2, &s), ERR_OK);
    int64_t cid, other;
    assert_int_equal(ret_collection_ensure(s, "default", "docs", &cid), ERR_OK);
    assert_int_equal(ret_collection_ensure(s, "acme", "docs", &other), ERR_OK);
    assert_true(cid != other);
    int64_t again;
    assert_int_equal(ret_collection_ensure(s, "default", "docs", &again), ERR_OK);
    assert_int_equal(again, cid);
    assert_int_equal(ret_collection_ensure(s, "default", "../etc", &again), ERR_INVALID_FIELD);
    assert_int_equal(ret_collection_find(s, "default", "nope", &again), ERR_NOT_FOUND);

    put(s, cid, "paris", "Paris is the capital of France. It lies on the Seine.");
    put(s, cid, "rome", "Rome is the capital of Italy. It has many fountains.");
    put(s, other, "secret", "Paris secret document of another tenant.");

    struct arena *a = arena_new(0);
    struct ret_hit *hits;
    size_t n;
    assert_int_equal(ret_search_lexical(s, cid, "What is the capital of France?", 5, a, &hits, &n), ERR_OK);
    assert_true(n >= 1);
    assert_string_equal(hits[0].document_id, "paris");
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(hits[i].document_id, "secret"); /* collections are isolated */
    /* stemming: "fountain" finds "fountains" */
    assert_int_equal(ret_search_lexical(s, cid, "fountain", 5, a, &hits, &n), ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(hits[0].document_id, "rome");
    /* FTS5 syntax in user input is inert */
    assert_int_equal(ret_search_lexical(s, cid, "\"capital AND NEAR( OR * ^col:x", 5, a, &hits, &n), ERR_OK);
    assert_true(n >= 1);
    /* only stop words: nothing to search, no error */
    assert_int_equal(ret_search_lexical(s, cid, "what is the", 5, a, &hits, &n), ERR_OK);
    assert_int_equal(n, 0);

    /* replacing a document removes its old chunks from search */
    struct ret_doc_in d = {.ext_id = "paris", .title = "Paris", .text = "Lyon is a city on the Rhone.", .text_len = 28};
    struct ret_change r;
    assert_int_equal(ret_document_put(s, cid, &d, &opts, NULL, &r), ERR_OK);
    assert_true(r.replaced);
    assert_true(r.nremoved >= 1); /* the old chunks are reported for index upkeep */
    assert_int_equal(r.nadded, r.nchunks);
    assert_null(r.added_vecs);    /* no embedder given */
    ret_change_done(&r);
    /* deleting: gone from search, and a second delete is not found */
    struct ret_doc_in tmp = {.ext_id = "tmp", .text = "Transient words here.", .text_len = 21};
    assert_int_equal(ret_document_put(s, cid, &tmp, &opts, NULL, &r), ERR_OK);
    ret_change_done(&r);
    assert_int_equal(ret_document_delete(s, cid, "tmp", &r), ERR_OK);
    assert_int_equal(r.nremoved, 1);
    ret_change_done(&r);
    assert_int_equal(ret_document_delete(s, cid, "tmp", &r), ERR_NOT_FOUND);
    assert_int_equal(ret_search_lexical(s, cid, "transient", 5, a, &hits, &n), ERR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ret_search_lexical(s, cid, "Seine", 5, a, &hits, &n), ERR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ret_search_lexical(s, cid, "Rhone", 5, a, &hits, &n), ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(hits[0].title, "Paris");
    /* offsets cite the exact span */
    assert_int_equal(hits[0].start, 0);
    assert_int_equal(hits[0].end, 28);

    struct ret_store_stats st;
    assert_int_equal(ret_store_stats(s, &st), ERR_OK);
    assert_int_equal(st.collections, 2);
    assert_int_equal(st.documents, 3);
    arena_free(a);
    ret_store_free(s);

    /* durable: a new store on the same file sees the same documents */
    assert_int_equal(ret_store_open(dbpath, 1, &s), ERR_OK);
    assert_int_equal(ret_store_stats(s, &st), ERR_OK);
    assert_int_equal(st.documents, 3);
    ret_store_free(s);
}

static int64_t put_one(struct ret_store *s, int64_t cid, const char *id, const char *text) {
    struct ret_doc_in d = {.ext_id = id, .title = id, .text = text, .text_len = strlen(text)};
    struct ret_change c;
    assert_int_equal(ret_document_put(s, cid, &d, &opts, NULL, &c), ERR_OK);
    assert_int_equal(c.nadded, 1);
    int64_t chunk = c.added_ids[0];
    ret_change_done(&c);
    return chunk;
}

static const char *fill_one(struct ret_store *s, int64_t cid, int64_t chunk, struct arena *a) {
    struct ret_hit h = {.chunk_id = chunk};
    assert_int_equal(ret_store_fill_hits(s, cid, &h, 1, a), ERR_OK);
    return h.chunk_id == chunk ? h.text : NULL;
}

/* The text cache in front of SQLite (textcache.h): a second fill comes
 * from memory; a deleted chunk is never served from it, nor is an old text
 * under a chunk id SQLite has given to a new chunk. */
static void test_store_text_cache(void **state) {
    (void)state;
    struct ret_store *s = NULL;
    assert_int_equal(ret_store_open(dbpath, 2, &s), ERR_OK);
    int64_t cid;
    assert_int_equal(ret_collection_ensure(s, "default", "docs", &cid), ERR_OK);
    struct arena *a = arena_new(0);
    int64_t c1 = put_one(s, cid, "one", "Alpha words here.");
    assert_string_equal(fill_one(s, cid, c1, a), "Alpha words here.");
    assert_string_equal(fill_one(s, cid, c1, a), "Alpha words here.");
    struct ret_textcache_stats st;
    ret_store_text_cache_stats(s, &st);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 1);
    /* another collection's fill of the same id finds nothing, cached or not */
    int64_t other;
    assert_int_equal(ret_collection_ensure(s, "acme", "docs", &other), ERR_OK);
    assert_null(fill_one(s, other, c1, a));

    /* deleted: gone from fills at once */
    struct ret_change r;
    assert_int_equal(ret_document_delete(s, cid, "one", &r), ERR_OK);
    ret_change_done(&r);
    assert_null(fill_one(s, cid, c1, a));

    /* SQLite reuses the largest rowid once it is deleted: the new chunk
     * has the old id, and its own text is what a fill returns */
    int64_t c2 = put_one(s, cid, "two", "Beta text now.");
    assert_string_equal(fill_one(s, cid, c2, a), "Beta text now.");
    assert_int_equal(ret_document_delete(s, cid, "two", &r), ERR_OK);
    ret_change_done(&r);
    int64_t c3 = put_one(s, cid, "three", "Gamma text instead.");
    assert_int_equal(c3, c2); /* the case this test is about */
    assert_string_equal(fill_one(s, cid, c3, a), "Gamma text instead.");
    /* the same through a replacement of the document in place */
    struct ret_doc_in d = {.ext_id = "three", .title = "three", .text = "Delta replaces it.", .text_len = 18};
    assert_int_equal(ret_document_put(s, cid, &d, &opts, NULL, &r), ERR_OK);
    assert_true(r.replaced);
    assert_int_equal(r.nadded, 1);
    int64_t c5 = r.added_ids[0];
    ret_change_done(&r);
    assert_string_equal(fill_one(s, cid, c5, a), "Delta replaces it.");
    if (c5 != c3)
        assert_null(fill_one(s, cid, c3, a));

    /* capacity 0: every fill reads SQLite */
    assert_int_equal(ret_store_set_text_cache(s, 0), ERR_OK);
    int64_t c4 = put_one(s, cid, "four", "Epsilon.");
    assert_string_equal(fill_one(s, cid, c4, a), "Epsilon.");
    assert_string_equal(fill_one(s, cid, c4, a), "Epsilon.");
    ret_store_text_cache_stats(s, &st);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.entries, 0);
    arena_free(a);
    ret_store_free(s);
}

/* Collection lookups are kept in memory; a deleted collection is not
 * found afterwards, and one made again under its name is found with its
 * new id. */
static void test_store_collection_cache(void **state) {
    (void)state;
    struct ret_store *s = NULL;
    assert_int_equal(ret_store_open(dbpath, 2, &s), ERR_OK);
    int64_t a, b, found;
    assert_int_equal(ret_collection_ensure(s, "t1", "docs", &a), ERR_OK);
    assert_int_equal(ret_collection_ensure(s, "t2", "docs", &b), ERR_OK);
    for (int i = 0; i < 2; i++) { /* the second time from memory */
        assert_int_equal(ret_collection_find(s, "t1", "docs", &found), ERR_OK);
        assert_int_equal(found, a);
        assert_int_equal(ret_collection_find(s, "t2", "docs", &found), ERR_OK);
        assert_int_equal(found, b);
    }
    assert_int_equal(ret_collection_find(s, "t3", "docs", &found), ERR_NOT_FOUND);
    int64_t gone;
    assert_int_equal(ret_collection_delete(s, "t2", "docs", &gone), ERR_OK);
    assert_int_equal(gone, b);
    assert_int_equal(ret_collection_find(s, "t2", "docs", &found), ERR_NOT_FOUND);
    assert_int_equal(ret_collection_find(s, "t1", "docs", &found), ERR_OK);
    assert_int_equal(found, a);
    /* made again: SQLite reuses the largest id, so the new id may equal the
     * old one; either way the lookup agrees with ensure */
    int64_t again;
    assert_int_equal(ret_collection_ensure(s, "t2", "docs", &again), ERR_OK);
    assert_int_equal(ret_collection_find(s, "t2", "docs", &found), ERR_OK);
    assert_int_equal(found, again);
    assert_int_equal(ret_collection_delete(s, "t1", "docs", &gone), ERR_OK);
    assert_int_equal(ret_collection_find(s, "t1", "docs", &found), ERR_NOT_FOUND);
    ret_store_free(s);
}

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

struct seen {
    int stored, skipped;
    char last_skip[128];
};

static void on_file(void *ud, const char *path, const char *why, const struct ret_ingest_stats *st) {
    (void)path;
    (void)st;
    struct seen *s = ud;
    if (why) {
        s->skipped++;
        snprintf(s->last_skip, sizeof s->last_skip, "%s", why);
    } else {
        s->stored++;
    }
}

static void test_ingest_dir(void **state) {
    (void)state;
    char p[256], sub[128];
    snprintf(sub, sizeof sub, "%s/docs", dir);
    mkdir(sub, 0755);
    snprintf(p, sizeof p, "%s/a.md", sub);
    write_file(p, "# Alpha Guide\n\nAlpha explains the first letter.\n", 46);
    snprintf(p, sizeof p, "%s/b.txt", sub);
    write_file(p, "Beta is the second letter.", 26);
    snprintf(p, sizeof p, "%s/bin.md", sub);
    write_file(p, "abc\0def", 7);
    snprintf(p, sizeof p, "%s/latin1.txt", sub);
    write_file(p, "caf\xe9", 4);
    snprintf(p, sizeof p, "%s/empty.md", sub);
    write_file(p, "", 0);
    snprintf(p, sizeof p, "%s/image.png", sub);
    write_file(p, "\x89PNG", 4);
    snprintf(p, sizeof p, "%s/page.html", sub);
    const char *page = "<html><title>Gamma Page</title><body><p>Gamma is the third letter.</p></body></html>";
    write_file(p, page, strlen(page));
    snprintf(p, sizeof p, "%s/more.jsonl", sub);
    const char *jl = "{\"id\": \"delta\", \"title\": \"Delta\", \"text\": \"Delta is the fourth letter.\"}\n"
                     "not json\n"
                     "{\"text\": \"Epsilon is the fifth letter.\", \"metadata\": {\"n\": 5}}\n"
                     "{\"id\": \"empty\", \"text\": \"\"}\n";
    write_file(p, jl, strlen(jl));

    struct ret_store *s = NULL;
    assert_int_equal(ret_store_open(dbpath, 1, &s), ERR_OK);
    char idx[160];
    snprintf(idx, sizeof idx, "%s/index", dir);
    struct ret_engine_opts eo = {.index_dir = idx, .index_factory = "Flat", .dim = 64, .save_interval_ms = 1000,
                                 .chunk = opts};
    struct ret_engine *eng = NULL;
    assert_int_equal(ret_engine_open(s, &eo, NULL, &eng), ERR_OK);
    int64_t cid;
    assert_int_equal(ret_collection_ensure(s, "default", "ing", &cid), ERR_OK);
    struct seen seen = {0};
    struct ret_ingest_opts o = {.max_document_bytes = 1 << 20, .on_file = on_file, .ud = &seen};
    struct ret_ingest_stats st;
    char *paths[] = {sub};
    assert_int_equal(ret_ingest_paths(eng, cid, paths, 1, &o, &st), ERR_OK);
    /* a.md, b.txt, page.html, 2 good jsonl lines; skipped: 4 bad files, 2 bad lines */
    assert_int_equal(st.documents, 5);
    assert_int_equal(st.skipped, 6);
    assert_int_equal(seen.skipped, 6);
    assert_true(st.total_bytes > 0 && st.read_bytes == st.total_bytes);

    struct arena *a = arena_new(0);
    struct ret_hit *hits;
    size_t n;
    assert_int_equal(ret_search_lexical(s, cid, "alpha letter", 5, a, &hits, &n), ERR_OK);
    assert_true(n >= 1);
    assert_string_equal(hits[0].title, "Alpha Guide"); /* title from the first heading */
    assert_int_equal(ret_search_lexical(s, cid, "gamma third", 5, a, &hits, &n), ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(hits[0].title, "Gamma Page");
    assert_string_equal(hits[0].text, "Gamma is the third letter.");
    assert_int_equal(ret_search_lexical(s, cid, "epsilon", 5, a, &hits, &n), ERR_OK);
    assert_int_equal(n, 1);
    assert_non_null(strstr(hits[0].document_id, "more.jsonl:3")); /* default id PATH:LINE */
    assert_int_equal(ret_search_lexical(s, cid, "delta", 5, a, &hits, &n), ERR_OK);
    assert_string_equal(hits[0].document_id, "delta");
    arena_free(a);
    ret_engine_free(eng);
    ret_store_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_offsets_and_limits),
        cmocka_unit_test(test_chunk_long_sentence_and_overlap),
        cmocka_unit_test(test_units_join_wrapped_lines),
        cmocka_unit_test(test_html_to_text),
        cmocka_unit_test_setup_teardown(test_store_put_search_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_text_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_collection_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_dir, setup, teardown),
    };
    return cmocka_run_group_tests_name("retrieval", tests, NULL, NULL);
}
