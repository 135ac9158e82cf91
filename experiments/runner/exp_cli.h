/* exp_cli.h - the `temper` command line: parsing, help, dispatch, exit status.
 *
 * Exit status: 0 success (including --help/--version), 1 a runtime error (printed as
 * "temper: error: <message>" on errs), 2 a command-line mistake (unknown command or option, missing or
 * malformed value; the message names the option). */
#ifndef EXP_CLI_H
#define EXP_CLI_H

#include <stdio.h>

enum { EXP_EXIT_OK = 0, EXP_EXIT_ERROR = 1, EXP_EXIT_USAGE = 2 };

/* Runs the command in argv[1..argc) (argv[0] is ignored). Results and help go to out; errors, and
 * training progress, to errs. Returns the process exit status. Not reentrant across threads
 * (it sets the OpenMP thread count). */
int exp_main(int argc, char **argv, FILE *out, FILE *errs);

#endif
