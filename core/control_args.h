/* control_args.h - splitting a control-socket command line into words. */
#ifndef PC_CONTROL_ARGS_H
#define PC_CONTROL_ARGS_H

/* Splits line into words in place: words are separated by spaces and tabs;
 * "..." groups words and understands \" and \\ (a '\' before anything else
 * stays); a closing quote must end the word. argv[0..count) point into
 * line. Returns the count (at most max), or -1 with *why set ("too many
 * arguments", "unterminated quote", "junk after a closing quote"). */
int control_split_args(char *line, char **argv, int max, const char **why);

#endif
