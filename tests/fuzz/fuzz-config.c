/* fuzz-config.c - the JSON config loader: any input either loads or fails
 * with a message; never crashes or leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256] = "";
    struct cfg *c = NULL;
    if (cfg_load_text((const char *)data, size, err, sizeof err, &c) == ERR_OK) {
        if (!c || c->server.workers < 1 || c->query.default_k > c->query.max_k)
            abort(); /* a loaded config always satisfies the validated invariants */
        cfg_unref(c);
    } else if (c || !err[0]) {
        abort(); /* failures leave no config and always say why */
    }
    return 0;
}
