# Turns a text file into a C source holding it as a NUL-terminated string, so the
# built-in default city is the same data format as a deployment's file.
# Usage: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}" "/* Generated from ${IN}; do not edit. */\n"
     "const char ${NAME}[] = {${body}0x00};\n")
