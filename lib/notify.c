/* notify.c - a LISTEN connection: poll on its socket, consume input before every PQnotifies,
 * listen again after a reconnect and say so, so the caller catches up. */
#include "notify.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct Listener {
    PGconn *conn;
    char *channels[NOTIFY_MAX_CHANNELS];
    int nchannels;
    PGnotify *last; /* the notification handed out by the last call */
    bool ready;     /* connected and listening to every channel */
};

static bool listen_one(PGconn *conn, const char *channel)
{
    const char *v[] = {channel};
    PGresult *r = PQexecParams(conn, "SELECT extension_pulumi_state_listen($1)", 1, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        log_error("LISTEN %s failed: %s", channel, PQerrorMessage(conn));
    PQclear(r);
    return ok;
}

Listener *listener_open(const char *conninfo)
{
    Listener *l = xcalloc(1, sizeof(*l));
    l->conn = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(l->conn) != CONNECTION_OK) {
        log_error("listener: database connection failed: %s", PQerrorMessage(l->conn));
        listener_close(l);
        return NULL;
    }
    l->ready = true;
    return l;
}

void listener_close(Listener *l)
{
    if (!l)
        return;
    PQfreemem(l->last);
    for (int i = 0; i < l->nchannels; i++)
        free(l->channels[i]);
    PQfinish(l->conn);
    free(l);
}

bool listener_listen(Listener *l, const char *channel)
{
    if (l->nchannels == NOTIFY_MAX_CHANNELS || !listen_one(l->conn, channel))
        return false;
    l->channels[l->nchannels++] = xstrdup(channel);
    return true;
}

int listener_backend_pid(const Listener *l)
{
    return PQbackendPID(l->conn);
}

/* The connection is gone: make it again and listen to every channel again. */
static ListenResult reconnect(Listener *l)
{
    if (l->ready)
        log_warn("listener: database connection lost; reconnecting");
    l->ready = false;
    PQreset(l->conn);
    if (PQstatus(l->conn) != CONNECTION_OK) {
        log_error("listener: reconnect failed: %s", PQerrorMessage(l->conn));
        return LISTEN_DOWN;
    }
    for (int i = 0; i < l->nchannels; i++)
        if (!listen_one(l->conn, l->channels[i]))
            return LISTEN_DOWN; /* the next call starts over */
    l->ready = true;
    return LISTEN_RECONNECTED;
}

/* A notification already received, if any (input consumed first). */
static bool take(Listener *l, const char **channel, const char **payload, bool *lost)
{
    *lost = !PQconsumeInput(l->conn) || PQstatus(l->conn) != CONNECTION_OK;
    if (*lost)
        return false;
    PGnotify *n = PQnotifies(l->conn);
    if (!n)
        return false;
    PQfreemem(l->last);
    l->last = n;
    *channel = n->relname;
    *payload = n->extra ? n->extra : "";
    return true;
}

ListenResult listener_wait(Listener *l, int timeout_ms, const char **channel, const char **payload)
{
    bool lost = !l->ready || PQstatus(l->conn) != CONNECTION_OK;
    if (lost)
        return reconnect(l);
    if (take(l, channel, payload, &lost))
        return LISTEN_NOTIFY;
    if (lost)
        return reconnect(l);
    double deadline = mono_ms() + timeout_ms;
    for (;;) {
        int wait = -1;
        if (timeout_ms >= 0) {
            double left = deadline - mono_ms();
            if (left <= 0)
                return LISTEN_TIMEOUT;
            wait = (int)left + 1;
        }
        struct pollfd p = {.fd = PQsocket(l->conn), .events = POLLIN};
        if (p.fd < 0)
            return reconnect(l);
        int rc = poll(&p, 1, wait);
        if (rc < 0 && errno != EINTR) {
            log_error("listener: poll failed: %s", strerror(errno));
            return reconnect(l);
        }
        if (rc <= 0)
            continue;
        if (take(l, channel, payload, &lost))
            return LISTEN_NOTIFY;
        if (lost || (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
            return reconnect(l);
    }
}
