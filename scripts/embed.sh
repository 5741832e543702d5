#!/bin/sh
# Writes a C file defining the bytes of FILE as NAME[] and NAME_len.
# usage: embed.sh FILE NAME > out.c
set -eu
printf '/* generated from %s by scripts/embed.sh; do not edit */\n#include <stddef.h>\n' "$1"
printf 'const unsigned char %s[] = {\n' "$2"
od -An -v -tx1 "$1" | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'
printf '};\nconst size_t %s_len = sizeof(%s);\n' "$2" "$2"
