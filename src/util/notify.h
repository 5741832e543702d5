#ifndef CHORUS_UTIL_NOTIFY_H
#define CHORUS_UTIL_NOTIFY_H

/*
 * The service manager's readiness protocol (sd_notify(3)) without
 * libsystemd: one datagram of "KEY=VALUE" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET, a file system path ("/run/...") or an abstract
 * name ("@..."). With the variable unset or empty every call does nothing,
 * so a node started by hand or by a test behaves the same. A failure is
 * logged (log_warn) and never stops the caller.
 *
 * Any thread may call these; systemd accepts messages only from the main
 * process of a Type=notify unit (NotifyAccess=main), which chorus is.
 */

/* Sends state (for example "READY=1\nSTATUS=serving"). Returns 1 when
 * $NOTIFY_SOCKET is unset or empty (nothing sent), 0 once the datagram is
 * sent, or -errno (logged). */
int notify_send(const char *state);

/* "READY=1": the node listens and answers (its read model is in place). */
void notify_ready(void);

/* "STOPPING=1": the drain has begun. */
void notify_stopping(void);

/* "STATUS=TEXT": a line systemctl status shows. Newlines in TEXT are sent
 * as spaces (a newline would start another assignment). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
