/*
 * confidential: the TEE example app of poco. It reads a confidential dataset and uses a
 * requester secret and the app developer's secret, without ever writing either out.
 *
 * Usage: confidential
 *
 * Input: the dataset at $IEXEC_IN/$IEXEC_DATASET_FILENAME (any text; every run of decimal
 * digits counts as a number), the requester secret IEXEC_REQUESTER_SECRET_1 and the developer
 * secret IEXEC_APP_DEVELOPER_SECRET (both optional).
 *
 * Outputs, under $IEXEC_OUT:
 *   result.txt     lines=, bytes=, numbers=, sum= over the dataset, then
 *                  requester_secret_fnv1a= and developer_secret_fnv1a=: the 64-bit FNV-1a hash
 *                  of each secret in hexadecimal ("none" when absent), which proves the secret
 *                  reached the app without revealing it
 *   computed.json  names result.txt as the deterministic output
 * Exit status 2 on a missing dataset, 1 on an I/O error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fingerprint(const char *name, char *out, size_t size) {
    const char *value = getenv(name);
    if (value == NULL) {
        snprintf(out, size, "none");
        return;
    }
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        hash ^= *p;
        hash *= 0x100000001b3ULL;
    }
    snprintf(out, size, "%016llx", (unsigned long long)hash);
}

int main(void) {
    const char *in = getenv("IEXEC_IN");
    const char *out = getenv("IEXEC_OUT");
    const char *dataset = getenv("IEXEC_DATASET_FILENAME");
    if (in == NULL || out == NULL || dataset == NULL) {
        fprintf(stderr, "confidential: no dataset (IEXEC_DATASET_FILENAME)\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", in, dataset);
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "confidential: cannot open the dataset\n");
        return 2;
    }
    uint64_t lines = 0, bytes = 0, numbers = 0, sum = 0, current = 0;
    int in_number = 0, c, last = '\n';
    while ((c = fgetc(file)) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        if (c >= '0' && c <= '9') {
            current = current * 10 + (uint64_t)(c - '0');
            in_number = 1;
        } else if (in_number) {
            sum += current;
            numbers++;
            current = 0;
            in_number = 0;
        }
        last = c;
    }
    if (in_number) {
        sum += current;
        numbers++;
    }
    if (bytes > 0 && last != '\n') lines++;
    fclose(file);

    char requester[32], developer[32];
    fingerprint("IEXEC_REQUESTER_SECRET_1", requester, sizeof requester);
    fingerprint("IEXEC_APP_DEVELOPER_SECRET", developer, sizeof developer);

    snprintf(path, sizeof path, "%s/result.txt", out);
    FILE *result = fopen(path, "w");
    if (result == NULL) return 1;
    fprintf(result,
            "lines=%llu\nbytes=%llu\nnumbers=%llu\nsum=%llu\nrequester_secret_fnv1a=%s\n"
            "developer_secret_fnv1a=%s\n",
            (unsigned long long)lines, (unsigned long long)bytes, (unsigned long long)numbers,
            (unsigned long long)sum, requester, developer);
    if (fclose(result) != 0) return 1;

    snprintf(path, sizeof path, "%s/computed.json", out);
    FILE *computed = fopen(path, "w");
    if (computed == NULL) return 1;
    fprintf(computed, "{\"deterministic-output-path\":\"/iexec_out/result.txt\"}\n");
    if (fclose(computed) != 0) return 1;
    printf("confidential: %llu lines, %llu numbers\n", (unsigned long long)lines,
           (unsigned long long)numbers);
    return 0;
}
