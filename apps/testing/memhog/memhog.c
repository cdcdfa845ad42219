/*
 * memhog (test app): allocates and touches memory in 1 MiB chunks until an allocation fails,
 * then reports on stderr how far it got and aborts (a trap). The sandbox must refuse to grow the
 * linear memory beyond its limit and report the run as out of memory.
 *
 * Usage: memhog [MAX_MIB]   stop (exit 0) after MAX_MIB MiB if allocation never fails
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where each chunk is published, so the compiler cannot drop the allocations. */
static void *volatile last_chunk;

int main(int argc, char **argv) {
    long max = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    for (long mib = 0; max <= 0 || mib < max; mib++) {
        char *chunk = malloc(1 << 20);
        if (chunk == NULL) {
            fprintf(stderr, "memhog: allocation failed after %ld MiB\n", mib);
            abort();
        }
        memset(chunk, (int)(mib & 0xff), 1 << 20);
        last_chunk = chunk;
    }
    printf("memhog: allocated %ld MiB\n", max);
    return 0;
}
