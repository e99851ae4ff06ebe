#!/bin/sh
# autogen.sh - regenerate the autotools build files (needs autoconf, automake, pkg-config).
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf --install --force
