/*
 * argecho (test app): writes its arguments, one per line, to $IEXEC_OUT/result.txt and names
 * that file in computed.json. Its result depends only on its arguments, so a test makes
 * "nondeterministic" replicas by giving each worker different arguments.
 *
 * Usage: argecho [ARG...]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *out = getenv("IEXEC_OUT");
    if (out == NULL || out[0] == '\0') out = "/iexec_out";
    char path[4096];
    snprintf(path, sizeof path, "%s/result.txt", out);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "argecho: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    for (int i = 1; i < argc; i++) fprintf(f, "%s\n", argv[i]);
    if (fclose(f) != 0) return 1;
    snprintf(path, sizeof path, "%s/computed.json", out);
    f = fopen(path, "w");
    if (f == NULL) return 1;
    fprintf(f, "{\"deterministic-output-path\":\"%s/result.txt\"}\n", out);
    if (fclose(f) != 0) return 1;
    printf("argecho: %d argument(s)\n", argc - 1);
    return 0;
}
