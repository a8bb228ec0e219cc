/* router.h - the route table: {method, pattern, auth, role, handler}, and path matching. */
#ifndef PS_ROUTER_H
#define PS_ROUTER_H

#include <stdbool.h>

#include "token.h"

struct Ctx;

typedef enum { AUTH_NONE, AUTH_USER, AUTH_UPDATE } AuthKind;
/* Route flags. */
#define ROUTE_AUDIT 1   /* state-changing: write an audit row */
#define ROUTE_STACK 2   /* captures 0..2 are org/project/stack */
#define ROUTE_MACHINE 4 /* the machine API: capture 0 (if any) is a machine id; unscoped tokens only */
#define ROUTE_NODB 8    /* answers without the database being reachable first */

typedef void (*Handler)(struct Ctx *c);

/* pattern: "/api/stacks/:org/:project" - ":x" captures a segment, "a|b" matches (and
 * captures) one of the alternatives, anything else is literal. */
typedef struct Route {
    const char *method;
    const char *pattern;
    AuthKind auth;
    Role role;
    int flags;
    const char *action; /* audit action name */
    Handler handler;
} Route;

typedef enum { ROUTE_FOUND, ROUTE_NO_PATH, ROUTE_NO_METHOD } RouteMatch;

/* Match the decoded path segments against table (ended by a NULL method). On ROUTE_FOUND,
 * *route is set and captures[0..*ncaptures) are borrowed pointers into segs. */
RouteMatch router_match(const Route *table, const char *method, char **segs, int nsegs, const Route **route,
                        char **captures, int *ncaptures, int maxcaptures);
/* Split path ("/a/b%2Fc") into decoded segments (new array of new strings). Returns -1 for
 * malformed paths: empty segments, "." or "..", bad escapes, decoded '/' or NUL. */
int router_split(const char *path, char ***segs);
void router_free_segs(char **segs, int n);

#endif
