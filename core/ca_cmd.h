/* ca_cmd.h - the `portcullis ca` command: creates and shows the local CA. */
#ifndef PC_CA_CMD_H
#define PC_CA_CMD_H

/* Usage lines for main.c's help. */
#define CA_CMD_USAGE                                                                  \
    "       portcullis ca init [-d DIR | -c FILE] [--rsa] [--cn NAME] [--org NAME]\n"  \
    "                          [--days N] [--force]\n"                                  \
    "       portcullis ca show [-d DIR | -c FILE]\n"

/* Runs `portcullis ca ARGS...` (argv[0] is "ca"). default_conf is read for
 * ca_dir when neither -d nor -c is given. Prints to stdout, errors to
 * stderr. Returns the exit status: 0 done, 1 failed, 2 usage error. */
int ca_cmd_main(int argc, char **argv, const char *default_conf);

#endif
