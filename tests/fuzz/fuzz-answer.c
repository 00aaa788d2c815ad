/* fuzz-answer.c - reading an LLM's answer: citations always point at real
 * passages, confidence stays in [0, 1]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct ret_hit hits[] = {
        {.chunk_id = 1, .document_id = "a", .title = "A", .text = "The harbour opens at seven [2] in the morning."},
        {.chunk_id = 2, .document_id = "b", .title = "B", .text = "Ferries leave every two hours."},
        {.chunk_id = 3, .document_id = "c", .title = "C", .text = ""},
    };
    char *answer = malloc(size + 1);
    if (!answer)
        return 0;
    memcpy(answer, data, size);
    answer[size] = '\0';
    struct arena *a = arena_new(1 << 24);
    struct agent_io io = {.question = "q", .hits = hits, .nhits = 3};
    if (agent_llm_read_answer(answer, &io, a) == ERR_OK) {
        if (io.confidence < 0 || io.confidence > 1 || io.ncitations > 3)
            abort();
        for (size_t i = 0; i < io.ncitations; i++)
            if (io.citations[i].hit < hits || io.citations[i].hit >= hits + 3)
                abort();
        if (io.abstained != (io.answer == NULL))
            abort();
    }
    arena_free(a);
    free(answer);
    return 0;
}
