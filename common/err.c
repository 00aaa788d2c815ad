/* err.c - lookups into the ERR_LIST table. */
#include "err.h"

static const struct {
    const char *name;
    const char *message;
    int status;
} err_table[] = {
#define ERR_ROW(sym, name, status, msg) [ERR_##sym] = {name, msg, status},
    ERR_LIST(ERR_ROW)
#undef ERR_ROW
};

static enum err clamp(enum err e) {
    return (unsigned)e < ERR__COUNT ? e : ERR_INTERNAL;
}

const char *err_name(enum err e) { return err_table[clamp(e)].name; }
const char *err_message(enum err e) { return err_table[clamp(e)].message; }
int err_http_status(enum err e) { return err_table[clamp(e)].status; }
