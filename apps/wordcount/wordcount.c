/*
 * wordcount: counts lines, words and bytes of every input file, lists the most frequent
 * words, and writes an uppercased copy of each file. The file-transforming example app of poco.
 *
 * Usage: wordcount [TOP]
 *   TOP  how many of the most frequent words to list (default 10)
 *
 * Inputs: the deal's dataset (IEXEC_DATASET_FILENAME), if it has one, then the files named by
 * IEXEC_INPUT_FILES_NUMBER and IEXEC_INPUT_FILE_NAME_1..N, in that order, when either variable
 * is set; otherwise every regular file of $IEXEC_IN whose name does not start with '.', in byte
 * order of their names (never in directory order, which differs between file systems).
 *
 * A word (for the counts) is a maximal run of non-space bytes, as in wc; a word (for the
 * frequencies) is a maximal run of ASCII letters and digits, lowercased.
 *
 * Outputs, all under $IEXEC_OUT:
 *   wordcount.txt   one tab-separated line per file: name, lines, words, bytes; a total line;
 *                   then the TOP most frequent words with their counts (ties by byte order)
 *   upper/<name>    the file with ASCII letters uppercased
 *   computed.json   names wordcount.txt as the deterministic output
 * Exit status 2 on a bad argument or no input, 1 on an I/O error.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_WORD 64

struct entry {
    char *word;
    uint64_t count;
};

struct table {
    struct entry *slots;
    size_t capacity; /* a power of two */
    size_t used;
};

static void *xmalloc(size_t size) {
    void *p = malloc(size);
    if (p == NULL) {
        fprintf(stderr, "wordcount: out of memory\n");
        exit(1);
    }
    return p;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static void table_insert_entry(struct table *t, struct entry e) {
    size_t mask = t->capacity - 1;
    size_t i = (size_t)fnv1a(e.word) & mask;
    while (t->slots[i].word != NULL) i = (i + 1) & mask;
    t->slots[i] = e;
    t->used++;
}

static void table_grow(struct table *t) {
    struct table bigger = {0};
    bigger.capacity = t->capacity ? t->capacity * 2 : 1024;
    bigger.slots = xmalloc(bigger.capacity * sizeof *bigger.slots);
    memset(bigger.slots, 0, bigger.capacity * sizeof *bigger.slots);
    for (size_t i = 0; i < t->capacity; i++)
        if (t->slots[i].word != NULL) table_insert_entry(&bigger, t->slots[i]);
    free(t->slots);
    *t = bigger;
}

static void table_add(struct table *t, const char *word) {
    if ((t->used + 1) * 4 > t->capacity * 3) table_grow(t);
    size_t mask = t->capacity - 1;
    size_t i = (size_t)fnv1a(word) & mask;
    while (t->slots[i].word != NULL) {
        if (strcmp(t->slots[i].word, word) == 0) {
            t->slots[i].count++;
            return;
        }
        i = (i + 1) & mask;
    }
    size_t len = strlen(word);
    char *copy = xmalloc(len + 1);
    memcpy(copy, word, len + 1);
    t->slots[i].word = copy;
    t->slots[i].count = 1;
    t->used++;
}

static int by_count_then_word(const void *a, const void *b) {
    const struct entry *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct counts {
    uint64_t lines, words, bytes;
};

/* Counts one file, feeds the frequency table and writes the uppercased copy. */
static int process(const char *in_dir, const char *out_dir, const char *name, struct table *t,
                   struct counts *c) {
    char in_path[4096], out_path[4096];
    if (snprintf(in_path, sizeof in_path, "%s/%s", in_dir, name) >= (int)sizeof in_path ||
        snprintf(out_path, sizeof out_path, "%s/upper/%s", out_dir, name) >= (int)sizeof out_path) {
        fprintf(stderr, "wordcount: path too long for %s\n", name);
        return -1;
    }
    FILE *in = fopen(in_path, "rb");
    if (in == NULL) {
        fprintf(stderr, "wordcount: cannot open %s: %s\n", in_path, strerror(errno));
        return -1;
    }
    FILE *out = fopen(out_path, "wb");
    if (out == NULL) {
        fprintf(stderr, "wordcount: cannot create %s: %s\n", out_path, strerror(errno));
        fclose(in);
        return -1;
    }
    char word[MAX_WORD + 1];
    size_t word_len = 0;
    int in_word = 0;
    int ch;
    memset(c, 0, sizeof *c);
    while ((ch = fgetc(in)) != EOF) {
        c->bytes++;
        if (ch == '\n') c->lines++;
        if (isspace(ch)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            c->words++;
        }
        if (ch < 128 && isalnum(ch)) {
            if (word_len < MAX_WORD) word[word_len++] = (char)tolower(ch);
        } else if (word_len > 0) {
            word[word_len] = '\0';
            table_add(t, word);
            word_len = 0;
        }
        if (fputc(ch < 128 ? toupper(ch) : ch, out) == EOF) {
            fprintf(stderr, "wordcount: cannot write %s: %s\n", out_path, strerror(errno));
            fclose(in);
            fclose(out);
            return -1;
        }
    }
    if (word_len > 0) {
        word[word_len] = '\0';
        table_add(t, word);
    }
    int failed = ferror(in);
    fclose(in);
    if (fclose(out) != 0 || failed) {
        fprintf(stderr, "wordcount: I/O error on %s\n", name);
        return -1;
    }
    return 0;
}

/* The input names: the dataset and IEXEC_INPUT_FILE_NAME_i, or the sorted listing of the
 * directory. */
static char **input_names(const char *in_dir, size_t *count) {
    const char *number = getenv("IEXEC_INPUT_FILES_NUMBER");
    const char *dataset = getenv("IEXEC_DATASET_FILENAME");
    int has_number = number != NULL && number[0] != '\0';
    int has_dataset = dataset != NULL && dataset[0] != '\0';
    if (has_number || has_dataset) {
        long n = has_number ? strtol(number, NULL, 10) : 0;
        if (n < 0 || n > 100000) n = 0;
        char **names = xmalloc(((size_t)n + 2) * sizeof *names);
        size_t found = 0;
        if (has_dataset) names[found++] = (char *)dataset;
        for (long i = 1; i <= n; i++) {
            char var[64];
            snprintf(var, sizeof var, "IEXEC_INPUT_FILE_NAME_%ld", i);
            const char *name = getenv(var);
            if (name == NULL || name[0] == '\0') {
                fprintf(stderr, "wordcount: %s is not set\n", var);
                continue;
            }
            names[found++] = (char *)name;
        }
        *count = found;
        return names;
    }
    DIR *dir = opendir(in_dir);
    if (dir == NULL) {
        fprintf(stderr, "wordcount: cannot list %s: %s\n", in_dir, strerror(errno));
        *count = 0;
        return NULL;
    }
    size_t cap = 16, n = 0;
    char **names = xmalloc(cap * sizeof *names);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", in_dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (n == cap) {
            cap *= 2;
            char **more = realloc(names, cap * sizeof *names);
            if (more == NULL) {
                fprintf(stderr, "wordcount: out of memory\n");
                exit(1);
            }
            names = more;
        }
        size_t len = strlen(e->d_name);
        names[n] = xmalloc(len + 1);
        memcpy(names[n], e->d_name, len + 1);
        n++;
    }
    closedir(dir);
    qsort(names, n, sizeof *names, by_name);
    *count = n;
    return names;
}

int main(int argc, char **argv) {
    long top = 10;
    if (argc > 2) {
        fprintf(stderr, "usage: wordcount [TOP]\n");
        return 2;
    }
    if (argc == 2) {
        char *end = NULL;
        top = strtol(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || top < 0) {
            fprintf(stderr, "wordcount: invalid TOP: '%s'\n", argv[1]);
            return 2;
        }
    }
    const char *in_dir = getenv("IEXEC_IN");
    if (in_dir == NULL || in_dir[0] == '\0') in_dir = "/iexec_in";
    const char *out_dir = getenv("IEXEC_OUT");
    if (out_dir == NULL || out_dir[0] == '\0') out_dir = "/iexec_out";

    size_t n = 0;
    char **names = input_names(in_dir, &n);
    if (n == 0) {
        fprintf(stderr, "wordcount: no input file in %s\n", in_dir);
        return 2;
    }

    char path[4096];
    snprintf(path, sizeof path, "%s/upper", out_dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "wordcount: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/wordcount.txt", out_dir);
    FILE *report = fopen(path, "w");
    if (report == NULL) {
        fprintf(stderr, "wordcount: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }

    struct table t = {0};
    table_grow(&t);
    struct counts total = {0};
    fprintf(report, "file\tlines\twords\tbytes\n");
    for (size_t i = 0; i < n; i++) {
        struct counts c;
        if (process(in_dir, out_dir, names[i], &t, &c) != 0) return 1;
        fprintf(report, "%s\t%llu\t%llu\t%llu\n", names[i], (unsigned long long)c.lines,
                (unsigned long long)c.words, (unsigned long long)c.bytes);
        total.lines += c.lines;
        total.words += c.words;
        total.bytes += c.bytes;
    }
    fprintf(report, "total\t%llu\t%llu\t%llu\n", (unsigned long long)total.lines,
            (unsigned long long)total.words, (unsigned long long)total.bytes);

    struct entry *ranked = xmalloc((t.used + 1) * sizeof *ranked);
    size_t distinct = 0;
    for (size_t i = 0; i < t.capacity; i++)
        if (t.slots[i].word != NULL) ranked[distinct++] = t.slots[i];
    qsort(ranked, distinct, sizeof *ranked, by_count_then_word);
    fprintf(report, "\nword\tcount\n");
    for (size_t i = 0; i < distinct && i < (size_t)top; i++)
        fprintf(report, "%s\t%llu\n", ranked[i].word, (unsigned long long)ranked[i].count);
    if (fclose(report) != 0) {
        fprintf(stderr, "wordcount: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }

    snprintf(path, sizeof path, "%s/computed.json", out_dir);
    FILE *computed = fopen(path, "w");
    if (computed == NULL) {
        fprintf(stderr, "wordcount: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(computed, "{\"deterministic-output-path\":\"%s/wordcount.txt\"}\n", out_dir);
    if (fclose(computed) != 0) return 1;

    printf("wordcount: %zu file(s), %llu lines, %llu words, %llu bytes, %zu distinct words\n", n,
           (unsigned long long)total.lines, (unsigned long long)total.words,
           (unsigned long long)total.bytes, distinct);
    return 0;
}
