/*
 * loop (test app): never ends. The sandbox must stop it when its fuel runs out.
 *
 * Usage: loop   (no argument; prints "looping" on stdout first)
 */
#include <stdio.h>

int main(void) {
    volatile unsigned long long n = 0;
    printf("looping\n");
    fflush(stdout);
    for (;;) n++;
}
