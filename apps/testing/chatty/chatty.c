/*
 * chatty (test app): writes STDOUT_BYTES bytes on stdout and STDERR_BYTES bytes on stderr, the
 * lines "0123456789...", to test how the sandbox caps captured output.
 *
 * Usage: chatty STDOUT_BYTES [STDERR_BYTES]
 */
#include <stdio.h>
#include <stdlib.h>

static void emit(FILE *f, long n) {
    for (long i = 0; i < n; i++) fputc(i % 64 == 63 ? '\n' : '0' + (int)(i % 10), f);
    fflush(f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: chatty STDOUT_BYTES [STDERR_BYTES]\n");
        return 2;
    }
    emit(stdout, strtol(argv[1], NULL, 10));
    if (argc > 2) emit(stderr, strtol(argv[2], NULL, 10));
    return 0;
}
