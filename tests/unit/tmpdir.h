/* tmpdir.h — a fresh directory per test group (cmocka group setup and
 * teardown), for the unit tests that need real files (LMDB, configs). */
#ifndef TMPDIR_H
#define TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char dir[64];

static int tmpdir_setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/cbtest.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int tmpdir_teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

#endif
