/* test_routes.h - a route table of the real table's shapes, shared by the router's unit test and its
 * fuzz target (the real one, fcgi/routes.c, names every handler and so the whole worker). */
#ifndef PS_TEST_ROUTES_H
#define PS_TEST_ROUTES_H

#include "router.h"

static void test_route_handler(struct Ctx *c)
{
    (void)c;
}

#define TR_STACK "/api/stacks/:org/:project/:stack"

/* The unit test names rows 0, 1 and 3 by index. */
static const Route test_routes[] = {
    {"GET", "/api/user", AUTH_USER, ROLE_READ, 0, NULL, test_route_handler},
    {"GET", TR_STACK "/updates/latest", AUTH_USER, ROLE_READ, 0, NULL, test_route_handler},
    {"POST", TR_STACK "/update|preview|refresh|destroy", AUTH_USER, ROLE_WRITE, 0, NULL, test_route_handler},
    {"GET", TR_STACK "/update|updates/:update", AUTH_USER, ROLE_READ, 0, NULL, test_route_handler},
    {"HEAD", "/api/stacks/:org/:project", AUTH_USER, ROLE_READ, 0, NULL, test_route_handler},
    {"PATCH", TR_STACK "/update|updates/:update/checkpoint", AUTH_UPDATE, ROLE_WRITE, 0, NULL, test_route_handler},
    {"GET", TR_STACK "/export/:version", AUTH_USER, ROLE_READ, 0, NULL, test_route_handler},
    {NULL, NULL, AUTH_NONE, ROLE_READ, 0, NULL, NULL},
};

#endif
