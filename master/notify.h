/* notify.h - tell a service manager (systemd, Type=notify) how the master is doing. */
#ifndef RZ_NOTIFY_H
#define RZ_NOTIFY_H

/* Send one state datagram ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET. Without that
 * variable nothing is sent and 0 is returned; -1 with errno when sending failed. */
int notify_send(const char *state);

/* READY=1, with the number of workers as STATUS. */
int notify_ready(unsigned workers);
/* RELOADING=1, with MONOTONIC_USEC= as systemd 253 and later expect. */
int notify_reloading(void);
/* STOPPING=1. */
int notify_stopping(void);

#endif
