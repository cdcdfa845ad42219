/*
 * sleeper (test app): says on stdout and stderr how long it sleeps, sleeps SECONDS seconds (a
 * host call that burns no fuel), then writes "awake" to $IEXEC_OUT/result.txt. The sandbox's
 * wall-clock timeout must stop it, and what it wrote before must not reach the requester.
 *
 * Usage: sleeper SECONDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    unsigned seconds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 3600;
    printf("sleeping %u s\n", seconds);
    fflush(stdout);
    fprintf(stderr, "sleeping %u s\n", seconds);
    sleep(seconds);
    const char *out = getenv("IEXEC_OUT");
    char path[4096];
    snprintf(path, sizeof path, "%s/result.txt", out ? out : "/iexec_out");
    FILE *f = fopen(path, "w");
    if (f == NULL) return 1;
    fputs("awake\n", f);
    return fclose(f) != 0;
}
