/* server.h - the simulator's HTTP server (OpenAI-compatible routes). */
#ifndef SLORAG_LLMSIM_SERVER_H
#define SLORAG_LLMSIM_SERVER_H

#include <stddef.h>

#include "config.h"
#include "err.h"

struct sim_server;

/* Binds cfg->listen_host:listen_port (port 0 picks a free one) and starts
 * serving.  cfg must outlive the server. */
enum err sim_server_start(const struct sim_cfg *cfg, char *errbuf, size_t errlen, struct sim_server **ret_srv);
int sim_server_port(const struct sim_server *srv);
/* Ends every waiting or hung request, stops the daemon and frees it all.
 * NULL-safe, returns NULL. */
struct sim_server *sim_server_stop(struct sim_server *srv);

#endif
