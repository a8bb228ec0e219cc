/* unit.h - what every unit test program shares: run its suite under Check's runner. */
#ifndef PS_UNIT_H
#define PS_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Run every test of s; the exit status main() returns. */
static inline int unit_run(Suite *s, enum fork_status fork)
{
    SRunner *sr = srunner_create(s);
    if (fork != CK_FORK_GETENV)
        srunner_set_fork_status(sr, fork);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
