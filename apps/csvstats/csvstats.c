/*
 * csvstats: statistics over the numeric columns of a CSV dataset, the dataset example app of
 * poco.
 *
 * Usage: csvstats [DELIMITER]
 *   DELIMITER  the field separator, one character (default ',')
 *
 * Input: the dataset at $IEXEC_IN/$IEXEC_DATASET_FILENAME, a CSV file whose first line names
 * the columns. Fields may be surrounded by spaces or double quotes; quoted fields holding the
 * delimiter are not supported. An empty field, or one that is not a finite decimal number,
 * counts as missing for its column.
 *
 * Outputs, under $IEXEC_OUT:
 *   stats.json     {"dataset", "rows", "columns": [{"name", "count", "missing", "sum", "min",
 *                  "max", "mean", "stddev"}]} with the population standard deviation (Welford's
 *                  algorithm); min, max, mean and stddev are null for a column without numbers
 *   computed.json  names stats.json as the deterministic output
 * Exit status 2 on a bad argument or a missing dataset, 1 on an I/O error.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLUMNS 256

struct column {
    char *name;
    uint64_t count, missing;
    double sum, min, max, mean, m2;
};

/* Strips spaces, a trailing CR and one pair of surrounding double quotes, in place. */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
                       s[len - 1] == '\n'))
        s[--len] = '\0';
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s[len - 1] = '\0';
        s++;
    }
    return s;
}

/* Splits line at delim into at most max fields, in place; returns the number of fields. */
static size_t split(char *line, char delim, char **fields, size_t max) {
    size_t n = 0;
    char *start = line;
    for (char *p = line;; p++) {
        if (*p == delim || *p == '\0' || *p == '\n') {
            int end = *p != delim;
            *p = '\0';
            if (n < max) fields[n++] = trim(start);
            if (end) break;
            start = p + 1;
        }
    }
    return n;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double value, int present) {
    if (present)
        fprintf(f, "%.10g", value);
    else
        fputs("null", f);
}

int main(int argc, char **argv) {
    char delim = ',';
    if (argc > 2 || (argc == 2 && strlen(argv[1]) != 1)) {
        fprintf(stderr, "usage: csvstats [DELIMITER]   (DELIMITER is one character)\n");
        return 2;
    }
    if (argc == 2) delim = argv[1][0];

    const char *in_dir = getenv("IEXEC_IN");
    if (in_dir == NULL || in_dir[0] == '\0') in_dir = "/iexec_in";
    const char *out_dir = getenv("IEXEC_OUT");
    if (out_dir == NULL || out_dir[0] == '\0') out_dir = "/iexec_out";
    const char *dataset = getenv("IEXEC_DATASET_FILENAME");
    if (dataset == NULL || dataset[0] == '\0') {
        fprintf(stderr, "csvstats: IEXEC_DATASET_FILENAME is not set: this app needs a dataset\n");
        return 2;
    }

    char path[4096];
    snprintf(path, sizeof path, "%s/%s", in_dir, dataset);
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        fprintf(stderr, "csvstats: cannot open the dataset %s: %s\n", path, strerror(errno));
        return 2;
    }

    char *line = NULL;
    size_t line_cap = 0;
    if (getline(&line, &line_cap, in) < 0) {
        fprintf(stderr, "csvstats: the dataset %s is empty\n", path);
        return 2;
    }
    char *fields[MAX_COLUMNS];
    struct column columns[MAX_COLUMNS];
    size_t ncol = split(line, delim, fields, MAX_COLUMNS);
    for (size_t i = 0; i < ncol; i++) {
        memset(&columns[i], 0, sizeof columns[i]);
        columns[i].name = strdup(fields[i]);
        if (columns[i].name == NULL) return 1;
    }

    uint64_t rows = 0;
    while (getline(&line, &line_cap, in) >= 0) {
        char *rest = line;
        while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n') rest++;
        if (*rest == '\0') continue; /* blank line */
        rows++;
        size_t n = split(line, delim, fields, MAX_COLUMNS);
        for (size_t i = 0; i < ncol; i++) {
            struct column *c = &columns[i];
            char *end = NULL;
            double value = 0.0;
            int ok = i < n && fields[i][0] != '\0';
            if (ok) {
                value = strtod(fields[i], &end);
                ok = *end == '\0' && isfinite(value);
            }
            if (!ok) {
                c->missing++;
                continue;
            }
            c->count++;
            c->sum += value;
            if (c->count == 1 || value < c->min) c->min = value;
            if (c->count == 1 || value > c->max) c->max = value;
            double delta = value - c->mean;
            c->mean += delta / (double)c->count;
            c->m2 += delta * (value - c->mean);
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "csvstats: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    fclose(in);
    free(line);

    snprintf(path, sizeof path, "%s/stats.json", out_dir);
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        fprintf(stderr, "csvstats: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    fputs("{\"dataset\":", out);
    json_string(out, dataset);
    fprintf(out, ",\"rows\":%llu,\"columns\":[", (unsigned long long)rows);
    for (size_t i = 0; i < ncol; i++) {
        struct column *c = &columns[i];
        int some = c->count > 0;
        fputs(i ? ",\n  {\"name\":" : "\n  {\"name\":", out);
        json_string(out, c->name);
        fprintf(out, ",\"count\":%llu,\"missing\":%llu,\"sum\":", (unsigned long long)c->count,
                (unsigned long long)c->missing);
        json_number(out, c->sum, 1);
        fputs(",\"min\":", out);
        json_number(out, c->min, some);
        fputs(",\"max\":", out);
        json_number(out, c->max, some);
        fputs(",\"mean\":", out);
        json_number(out, c->mean, some);
        fputs(",\"stddev\":", out);
        json_number(out, some ? sqrt(c->m2 / (double)c->count) : 0.0, some);
        fputc('}', out);
    }
    fputs("\n]}\n", out);
    if (fclose(out) != 0) {
        fprintf(stderr, "csvstats: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }

    snprintf(path, sizeof path, "%s/computed.json", out_dir);
    out = fopen(path, "w");
    if (out == NULL) {
        fprintf(stderr, "csvstats: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(out, "{\"deterministic-output-path\":\"%s/stats.json\"}\n", out_dir);
    if (fclose(out) != 0) return 1;

    printf("csvstats: %s, %llu rows, %zu columns\n", dataset, (unsigned long long)rows, ncol);
    return 0;
}
