/* llhttp_api.c - compiles Debian node-llhttp api.c (found by configure, never copied). */
#include <api.c>
