/* The python.exe of the Windows CPython stand-in used by the Wine test (tests/wine.rs).
 *
 * The foreign CPythons of the fixture mirror hold this machine's Linux files, which Wine can't
 * run, so the test swaps in this program: it prints each argument it got, one per line, and
 * exits with the number in ENVPACK_STANDIN_EXIT. That makes what the `.cmd` shims and launchers
 * pass through (quoting, argument count, exit code) visible, which is what the test checks. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *code = getenv("ENVPACK_STANDIN_EXIT");
    for (int i = 1; i < argc; i++)
        printf("arg%d=[%s]\n", i, argv[i]);
    fflush(stdout);
    return code ? atoi(code) : 0;
}
