/* fastcgi.h - the FastCGI adapter's entry points for the worker's startup (main.c). */
#ifndef PS_FASTCGI_H
#define PS_FASTCGI_H

#include "http.h"

/* The socket requests are accepted on (0: the one the web server handed over as stdin). */
extern int fcgi_listen_fd;
/* A request thread: arg is its Worker. Serves requests until cancelled or accept fails. */
void *fcgi_thread_main(void *arg);

#endif
