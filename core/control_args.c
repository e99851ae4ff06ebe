/* control_args.c - splitting a control-socket command line into words (a fuzz target of its own). */
#include "control_args.h"

int control_split_args(char *line, char **argv, int max, const char **why)
{
    int argc = 0;
    char *p = line;

    while (*p) {
        char *out;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (argc == max) {
            *why = "too many arguments";
            return -1;
        }
        argv[argc++] = out = p;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                *out++ = *p++;
            }
            if (*p != '"') {
                *why = "unterminated quote";
                return -1;
            }
            p++;
            if (*p && *p != ' ' && *p != '\t') {
                *why = "junk after a closing quote";
                return -1;
            }
        } else {
            while (*p && *p != ' ' && *p != '\t')
                *out++ = *p++;
        }
        if (*p)
            p++;
        *out = '\0';
    }
    return argc;
}
