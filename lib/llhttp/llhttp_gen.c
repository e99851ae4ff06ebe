/* llhttp_gen.c - compiles Debian node-llhttp llhttp.c (the generated parser). */
#include <llhttp.c>
