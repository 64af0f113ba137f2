/* daemon.h: wires the modules of one collectord process onto one loop. */
#ifndef COLLECTORD_DAEMON_H
#define COLLECTORD_DAEMON_H

struct config;

/*
 * Run until SIGTERM/SIGINT, then stop gracefully: stop accepting, finish
 * in-flight batches, flush the producer, finish the sinks and commit.
 * CONFIG_PATH is re-read on SIGHUP (NULL: nothing to re-read).  Takes
 * ownership of CFG.  Returns the process exit status.
 */
int daemon_run(const char *config_path, struct config *cfg);

#endif
