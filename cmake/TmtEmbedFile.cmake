# Run as a script (cmake -P): writes OUT, a C file defining the bytes of IN as
#   const unsigned char SYMBOL[];  const size_t SYMBOL_len;
# so that a page or a template is edited as a file and shipped inside the program.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n"
       bytes "${bytes}")
file(WRITE "${OUT}"
     "/* Generated from ${IN} by cmake/TmtEmbedFile.cmake: do not edit. */\n"
     "#include <stddef.h>\n"
     "const unsigned char ${SYMBOL}[] = {\n${bytes}0x00};\n"
     "const size_t ${SYMBOL}_len = ${len};\n")
