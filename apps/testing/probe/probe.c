/*
 * probe (test app): reports what a task can see and do in the sandbox, one "key=value" line per
 * fact, on stdout and in $IEXEC_OUT/probe.txt: its arguments, its whole environment, the clocks,
 * the random source, the listing of /iexec_in in directory order, and the result of attempts
 * to escape (read host files, write the inputs, follow a symbolic link out of a mount). The
 * sandbox tests read these lines.
 *
 * Usage: probe [ARG...]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static FILE *report;

static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("%s\n", buf);
    if (report != NULL) fprintf(report, "%s\n", buf);
}

static const char *outcome(int ok) { return ok ? "ok" : strerror(errno); }

static void try_read(const char *key, const char *path) {
    errno = 0;
    FILE *f = fopen(path, "r");
    line("%s=%s", key, outcome(f != NULL));
    if (f != NULL) fclose(f);
}

static void try_write(const char *key, const char *path) {
    errno = 0;
    FILE *f = fopen(path, "w");
    line("%s=%s", key, outcome(f != NULL));
    if (f != NULL) fclose(f);
}

int main(int argc, char **argv) {
    char path[4096];
    const char *out = getenv("IEXEC_OUT");
    snprintf(path, sizeof path, "%s/probe.txt", out ? out : "/iexec_out");
    report = fopen(path, "w");

    line("argc=%d", argc);
    for (int i = 0; i < argc; i++) line("argv[%d]=%s", i, argv[i]);
    for (char **e = environ; *e != NULL; e++) line("env=%s", *e);
    char cwd[1024];
    line("cwd=%s", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));

    line("time=%lld", (long long)time(NULL));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    line("realtime_ns=%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    line("monotonic_ns=%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    for (volatile int i = 0; i < 1000000; i++) {
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    line("monotonic_ns_later=%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);

    for (int round = 0; round < 2; round++) {
        unsigned char bytes[16];
        char hex[33];
        if (getentropy(bytes, sizeof bytes) != 0) {
            line("random=%s", strerror(errno));
        } else {
            for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
            line("random=%s", hex);
        }
    }
    line("rand=%d", rand());

    DIR *dir = opendir("/iexec_in");
    if (dir == NULL) {
        line("in_list=%s", strerror(errno));
    } else {
        char names[4096] = "";
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if (names[0] != '\0') strncat(names, ",", sizeof names - strlen(names) - 1);
            strncat(names, e->d_name, sizeof names - strlen(names) - 1);
        }
        closedir(dir);
        line("in_list=%s", names);
    }

    try_read("read_etc_passwd", "/etc/passwd");
    try_read("read_dotdot", "/iexec_in/../etc/passwd");
    try_read("read_out_dotdot", "/iexec_out/../../etc/passwd");
    try_read("read_symlink", "/iexec_in/link");
    errno = 0;
    DIR *root = opendir("/");
    line("opendir_root=%s", outcome(root != NULL));
    if (root != NULL) closedir(root);
    errno = 0;
    DIR *tmp = opendir("/tmp");
    line("opendir_tmp=%s", outcome(tmp != NULL));
    if (tmp != NULL) closedir(tmp);
    try_write("write_in_new", "/iexec_in/new.txt");
    try_write("write_in_existing", "/iexec_in/a.txt");
    errno = 0;
    line("mkdir_in=%s", outcome(mkdir("/iexec_in/newdir", 0755) == 0));
    errno = 0;
    line("unlink_in=%s", outcome(unlink("/iexec_in/a.txt") == 0));
    try_write("write_out", "/iexec_out/written.txt");

    if (report != NULL) fclose(report);
    return 0;
}
