/* log.h - structured logs: one JSON object per line on stderr.
 *
 * Only the orchestrator (and command-line front ends) log; library code
 * returns errors.  Fields are typed so values are always escaped:
 *
 *   log_msg(LOG_INFO, "listening", LOG_S("addr", addr), LOG_I("port", port), LOG_END);
 */
#ifndef SLORAG_LOG_H
#define SLORAG_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

#define LOG_S(k, v) 's', (const char *)(k), (const char *)(v)
#define LOG_I(k, v) 'i', (const char *)(k), (long long)(v)
#define LOG_F(k, v) 'f', (const char *)(k), (double)(v)
#define LOG_END 0

/* Returns -1 for an unknown name. */
int log_level_parse(const char *name);
void log_set_level(enum log_level lvl);
int log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *event, ...);

#endif
