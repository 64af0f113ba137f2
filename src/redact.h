/*
 * redact.h: what of a setting may be shown.  --check-config prints every
 * effective setting and error messages quote what they refuse; neither may
 * carry a password, a key or a token.  Pure functions: no I/O, nothing kept.
 *
 * Every char * returned is malloc'd and the caller frees it; NULL means out
 * of memory, never "nothing to hide".
 */
#ifndef COLLECTORD_REDACT_H
#define COLLECTORD_REDACT_H

#include <stdbool.h>

/* What stands in place of a secret that is set. */
#define REDACT_SET "(set)"
/* What redact_conninfo() gives for a string libpq cannot parse. */
#define REDACT_UNPARSABLE "(unparsable, not shown)"

/*
 * True when the value of librdkafka property KEY must not be shown:
 * librdkafka's own list of sensitive properties (see redact.c), and any
 * name ending in ".password" or ".secret", so that properties added later
 * are hidden too.  Case-insensitive.  KEY NULL: false.
 */
bool redact_kafka_key(const char *key);

/*
 * VALUE of [kafka] property KEY as it may be shown: REDACT_SET for a
 * sensitive key with a non-empty value, the URL without its password for
 * a key ending in ".url", else VALUE itself.  VALUE NULL counts as "".
 */
char *redact_kafka_value(const char *key, const char *value);

/*
 * CONNINFO (libpq key=value string or postgresql:// URI) with the value of
 * every option libpq itself marks as a password (dispchar "*": password,
 * sslpassword, ...) replaced by REDACT_SET, whichever part of the string
 * set it (a URI's user:password@, its ?password=).  The result is always
 * in key=value form, options in libpq's order, values quoted where libpq
 * needs quotes; it parses back to the same options, secrets aside.  A
 * string libpq cannot parse gives REDACT_UNPARSABLE, never the raw text.
 * CONNINFO NULL counts as "".
 */
char *redact_conninfo(const char *conninfo);

/*
 * URL with the password of its userinfo replaced by REDACT_SET:
 * "http://user:pass@host/p" gives "http://user:(set)@host/p".  The
 * authority is what follows "://" (or the whole string without a scheme)
 * up to the first '/', '?' or '#', as curl reads it; the userinfo ends at
 * its last '@'.  A URL without a password comes back unchanged.  URL NULL
 * counts as "".
 */
char *redact_url(const char *url);

/*
 * VALUE of collectord's own key SECTION/KEY (config_key_at's names) as it
 * may be shown: [pg] conninfo through redact_conninfo(); a key named "url"
 * or "endpoint", or ending in "_url", through redact_url(); REDACT_SET for
 * a non-empty key whose name contains "password" or "secret", and for
 * [server] api_keys; anything else as is.  VALUE NULL counts as "".
 */
char *redact_config_value(const char *section, const char *key, const char *value);

/*
 * MSG, a libpq error about a conninfo it could not parse, with the text
 * between every pair of double quotes replaced by "...", unless that text
 * is a libpq option name, "=" or "]" (what libpq expected): libpq quotes the
 * piece of the string it stumbled on, which may be part of a password
 * ('missing "=" after "cret"'), or the whole URI.  MSG NULL counts as "".
 */
char *redact_pq_message(const char *msg);

#endif
