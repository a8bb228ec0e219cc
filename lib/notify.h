/* notify.h - LISTEN/NOTIFY on a connection of its own: what wakes deploy agents and live log
 * readers. NOTIFY is only a wake-up; the truth is in the tables, and a caller re-reads them after a
 * wake-up, a timeout, or a reconnect (notifications sent while the connection was down are lost). */
#ifndef PS_NOTIFY_H
#define PS_NOTIFY_H

#include <stdbool.h>

#define NOTIFY_MAX_CHANNELS 8

typedef struct Listener Listener;

typedef enum {
    LISTEN_NOTIFY,      /* a notification: *channel and *payload are set (valid until the next call) */
    LISTEN_TIMEOUT,     /* nothing within the timeout */
    LISTEN_RECONNECTED, /* the connection was lost and is back, every channel listened to again:
                         * notifications may have been missed, so catch up from the tables */
    LISTEN_DOWN,        /* the connection is lost and could not be made again; call again later */
} ListenResult;

/* new: a listener on its own connection (NULL if it cannot connect at all). */
Listener *listener_open(const char *conninfo);
void listener_close(Listener *l);
/* LISTEN on channel (at most NOTIFY_MAX_CHANNELS; kept for reconnects). */
bool listener_listen(Listener *l, const char *channel);
/* Wait up to timeout_ms (< 0: for ever) for a notification on any channel. */
ListenResult listener_wait(Listener *l, int timeout_ms, const char **channel, const char **payload);
/* The server process of the listener's connection (for tests and logs). */
int listener_backend_pid(const Listener *l);

#endif
