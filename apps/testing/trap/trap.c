/*
 * trap (test app): stops on a WebAssembly trap of the kind named by its argument.
 *
 * Usage: trap [KIND]
 *   unreachable  executes `unreachable` (the default; what abort() does)
 *   oob          reads linear memory far out of bounds
 *   div0         divides an integer by zero
 *   stack        recurses without end until the call stack overflows
 *   exit:N       does not trap: exits with status N (to test exit codes)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int zero = 0;
static volatile int seven = 7;

static int __attribute__((noinline)) recurse(int depth) {
    /* Not a tail call: the addition happens after the call returns. `zero` is never -1, but
     * the compiler cannot know it, so this recursion has no visible end. */
    if (zero == -1) return depth;
    return recurse(depth + 1) + zero + depth;
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "unreachable";
    fprintf(stderr, "trap: %s\n", kind);
    if (strcmp(kind, "oob") == 0) {
        volatile int *far = (volatile int *)0xfffffff0u;
        return *far;
    }
    if (strcmp(kind, "div0") == 0) return seven / zero;
    if (strcmp(kind, "stack") == 0) return recurse(0);
    if (strncmp(kind, "exit:", 5) == 0) exit(atoi(kind + 5));
    __builtin_trap();
}
