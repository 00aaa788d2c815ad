/* span.h - the answer span inside a supporting sentence.
 *
 * SQuAD-style questions ask for a name, a date, a number, a place or a
 * thing, and the answer is a few words of the sentence that supports it.
 * The question's wh-word gives the expected kind; the sentence's words are
 * typed (capitalised, number, month, weekday, year, time of day) and the
 * candidate of that kind nearest to the question's own words, and sharing
 * none of them, is the span.  Questions that ask why or how to do
 * something get no span: the sentence is the answer. */
#ifndef SLORAG_SPAN_H
#define SLORAG_SPAN_H

#include <stdbool.h>
#include <stddef.h>

enum span_kind { SPAN_NONE, SPAN_PERSON, SPAN_TIME, SPAN_PLACE, SPAN_QUANTITY, SPAN_THING };

/* The kind of answer the question asks for (SPAN_NONE: a sentence). */
enum span_kind span_question_kind(const char *question);

/* is_question_word(ud, lower-cased word) says whether a word of the
 * sentence is one of the question's terms (the caller stems). */
typedef bool (*span_qword_fn)(void *ud, const char *lower_word);

/* Finds the span in text[start, end) for a question of this kind; on
 * success sets ret_start and ret_end (byte offsets into text) and returns
 * true. */
bool span_find(enum span_kind kind, const char *text, size_t start, size_t end, span_qword_fn is_qword, void *ud,
               size_t *ret_start, size_t *ret_end);

#endif
