// filler: writes as much as it is told into /iexec_out, to test the sandbox's output quota.
//
//   filler bytes TOTAL CHUNK   write TOTAL bytes to /iexec_out/fill.bin, CHUNK bytes a write
//   filler sparse OFFSET       seek to OFFSET in /iexec_out/sparse.bin and write one byte
//   filler files COUNT         create COUNT empty files /iexec_out/f<i>
//   filler deep LEVELS         create LEVELS nested directories /iexec_out/d/d/d/...
//   filler rewrite TIMES CHUNK write CHUNK bytes at the start of /iexec_out/same.bin, TIMES times
//   filler twofds TOTAL CHUNK  grow /iexec_out/two.bin to TOTAL bytes through two descriptors
//                              in turn: one appends CHUNK bytes, the other writes CHUNK bytes at
//                              its own position, over what the first wrote
//
// Prints what it did and exits 0, or names the call that failed and exits 1.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long long number(const char *text) {
    return strtoull(text, NULL, 10);
}

static int fail(const char *what) {
    printf("%s failed: %s\n", what, strerror(errno));
    return 1;
}

static int fill(unsigned long long total, unsigned long long chunk) {
    if (chunk == 0 || chunk > (64u << 20)) {
        chunk = 1u << 20;
    }
    char *buffer = malloc(chunk);
    if (buffer == NULL) {
        return fail("malloc");
    }
    memset(buffer, 'x', chunk);
    int fd = open("/iexec_out/fill.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        return fail("open");
    }
    unsigned long long written = 0;
    while (written < total) {
        unsigned long long left = total - written;
        size_t n = left < chunk ? (size_t)left : (size_t)chunk;
        ssize_t done = write(fd, buffer, n);
        if (done <= 0) {
            return fail("write");
        }
        written += (unsigned long long)done;
    }
    close(fd);
    printf("wrote %llu bytes\n", written);
    return 0;
}

static int sparse(unsigned long long offset) {
    int fd = open("/iexec_out/sparse.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        return fail("open");
    }
    if (lseek(fd, (off_t)offset, SEEK_SET) < 0) {
        return fail("lseek");
    }
    if (write(fd, "!", 1) != 1) {
        return fail("write");
    }
    close(fd);
    printf("wrote one byte at %llu\n", offset);
    return 0;
}

static int files(unsigned long long count) {
    char path[64];
    for (unsigned long long i = 0; i < count; i++) {
        snprintf(path, sizeof path, "/iexec_out/f%llu", i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            return fail("open");
        }
        close(fd);
    }
    printf("created %llu files\n", count);
    return 0;
}

static int deep(unsigned long long levels) {
    size_t size = 16 + 2 * (size_t)levels;
    char *path = malloc(size);
    if (path == NULL) {
        return fail("malloc");
    }
    strcpy(path, "/iexec_out");
    size_t len = strlen(path);
    for (unsigned long long i = 0; i < levels; i++) {
        path[len++] = '/';
        path[len++] = 'd';
        path[len] = '\0';
        if (mkdir(path, 0755) != 0) {
            return fail("mkdir");
        }
    }
    printf("created %llu levels\n", levels);
    return 0;
}

static int rewrite(unsigned long long times, unsigned long long chunk) {
    char *buffer = malloc(chunk ? chunk : 1);
    if (buffer == NULL) {
        return fail("malloc");
    }
    memset(buffer, 'r', chunk);
    int fd = open("/iexec_out/same.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        return fail("open");
    }
    for (unsigned long long i = 0; i < times; i++) {
        if (pwrite(fd, buffer, chunk, 0) != (ssize_t)chunk) {
            return fail("pwrite");
        }
    }
    close(fd);
    printf("rewrote %llu bytes %llu times\n", chunk, times);
    return 0;
}

static int twofds(unsigned long long total, unsigned long long chunk) {
    char *buffer = malloc(chunk ? chunk : 1);
    if (buffer == NULL) {
        return fail("malloc");
    }
    memset(buffer, 't', chunk);
    int appender = open("/iexec_out/two.bin", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    int writer = open("/iexec_out/two.bin", O_WRONLY);
    if (appender < 0 || writer < 0) {
        return fail("open");
    }
    unsigned long long size = 0;
    for (int turn = 0; size < total; turn ^= 1) {
        if (write(turn ? writer : appender, buffer, chunk) != (ssize_t)chunk) {
            return fail("write");
        }
        struct stat st;
        if (fstat(writer, &st) != 0) {
            return fail("fstat");
        }
        size = (unsigned long long)st.st_size;
    }
    close(appender);
    close(writer);
    printf("grew a file to %llu bytes through two descriptors\n", size);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "bytes") == 0) {
        return fill(number(argv[2]), number(argv[3]));
    }
    if (argc >= 3 && strcmp(argv[1], "sparse") == 0) {
        return sparse(number(argv[2]));
    }
    if (argc >= 3 && strcmp(argv[1], "files") == 0) {
        return files(number(argv[2]));
    }
    if (argc >= 3 && strcmp(argv[1], "deep") == 0) {
        return deep(number(argv[2]));
    }
    if (argc >= 4 && strcmp(argv[1], "rewrite") == 0) {
        return rewrite(number(argv[2]), number(argv[3]));
    }
    if (argc >= 4 && strcmp(argv[1], "twofds") == 0) {
        return twofds(number(argv[2]), number(argv[3]));
    }
    printf("usage: filler bytes TOTAL CHUNK | sparse OFFSET | files COUNT | deep LEVELS | "
           "rewrite TIMES CHUNK | twofds TOTAL CHUNK\n");
    return 2;
}
