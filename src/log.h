/* log.h: one line per event of note, "level=... msg="..." key=value", to stderr. */
#ifndef COLLECTORD_LOG_H
#define COLLECTORD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are dropped.  Default LOG_INFO. */
void log_set_level(enum log_level level);
bool log_parse_level(const char *name, enum log_level *out);
/* Send lines to PATH (appending) instead of stderr; NULL goes back to stderr.
 * Called again on SIGHUP to reopen after rotation.  0 or -1. */
int log_open(const char *path);

/*
 * Write one line.  MSG is the human message (quoted and escaped for you);
 * FMT/... are the trailing "key=value key=value" pairs, printf style, and
 * may be NULL.  Values that may hold spaces should be passed through %s
 * after log_quote().
 */
void log_write(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_write(LOG_DEBUG, (msg), __VA_ARGS__)
#define log_info(msg, ...) log_write(LOG_INFO, (msg), __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, (msg), __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, (msg), __VA_ARGS__)

/* Quote S for a key=value log field into BUF ("..." with \" and \\ escaped,
 * control characters dropped, cut to fit).  Returns BUF. */
const char *log_quote(const char *s, char *buf, size_t size);

/* Print to stderr and exit(1).  Only before the daemon reports ready. */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
