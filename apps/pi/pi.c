/*
 * pi: Monte-Carlo estimate of pi, the compute-bound example app of poco.
 *
 * Usage: pi [SAMPLES] [SEED]
 *   SAMPLES  number of random points drawn in the unit square (default 1000000)
 *   SEED     seed of the pseudo-random generator (default 42)
 *
 * The generator is xoshiro256** seeded through splitmix64, so the result depends on
 * SAMPLES and SEED only: every replica of a task computes the same bytes.
 *
 * Output: $IEXEC_OUT/result.txt (samples, points inside the quarter disc, estimate) and
 * $IEXEC_OUT/computed.json naming result.txt as the deterministic output. The estimate is
 * also printed on stdout. Exit status 2 on a bad argument, 1 on an I/O error.
 *
 * The same source builds natively (the exec benchmark does so): set IEXEC_OUT to a directory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

struct rng {
    uint64_t s[4];
};

static void rng_seed(struct rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rng_next(struct rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* A double uniformly drawn in [0, 1) from the 53 high bits. */
static double rng_unit(struct rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static int parse_u64(const char *text, const char *what, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        fprintf(stderr, "pi: invalid %s: '%s' (expected an unsigned integer)\n", what, text);
        return -1;
    }
    *out = (uint64_t)value;
    return 0;
}

static int write_file(const char *dir, const char *name, const char *content) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        fprintf(stderr, "pi: output path too long\n");
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "pi: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(content);
    int failed = fwrite(content, 1, len, f) != len;
    failed |= fclose(f) != 0;
    if (failed) {
        fprintf(stderr, "pi: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    uint64_t samples = 1000000;
    uint64_t seed = 42;
    if (argc > 3) {
        fprintf(stderr, "usage: pi [SAMPLES] [SEED]\n");
        return 2;
    }
    if (argc > 1 && parse_u64(argv[1], "SAMPLES", &samples) != 0) return 2;
    if (argc > 2 && parse_u64(argv[2], "SEED", &seed) != 0) return 2;
    if (samples == 0) {
        fprintf(stderr, "pi: SAMPLES must be positive\n");
        return 2;
    }

    struct rng r;
    rng_seed(&r, seed);
    uint64_t inside = 0;
    for (uint64_t i = 0; i < samples; i++) {
        double x = rng_unit(&r);
        double y = rng_unit(&r);
        if (x * x + y * y < 1.0) inside++;
    }
    double estimate = 4.0 * (double)inside / (double)samples;

    const char *out = getenv("IEXEC_OUT");
    if (out == NULL || out[0] == '\0') out = "/iexec_out";

    char result[256];
    snprintf(result, sizeof result, "samples=%llu\nseed=%llu\ninside=%llu\npi=%.12f\n",
             (unsigned long long)samples, (unsigned long long)seed, (unsigned long long)inside,
             estimate);
    char computed[4200];
    snprintf(computed, sizeof computed, "{\"deterministic-output-path\":\"%s/result.txt\"}\n", out);
    if (write_file(out, "result.txt", result) != 0) return 1;
    if (write_file(out, "computed.json", computed) != 0) return 1;

    printf("pi ~= %.12f (%llu samples, seed %llu)\n", estimate, (unsigned long long)samples,
           (unsigned long long)seed);
    return 0;
}
