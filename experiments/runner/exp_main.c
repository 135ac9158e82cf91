/* exp_main.c - the `temper` program: everything, including the exit status, is decided by exp_main. */
#include <stdio.h>

#include "exp_cli.h"

int main(int argc, char **argv) {
    return exp_main(argc, argv, stdout, stderr);
}
