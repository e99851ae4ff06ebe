/* llhttp_http.c - compiles Debian node-llhttp http.c (found by configure, never copied). */
#include <http.c>
