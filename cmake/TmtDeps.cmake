# External libraries, all from Debian 12 packages (scripts/setup.sh installs them). Each is wrapped by
# exactly one module of ours; see docs/ARCHITECTURE.md ("one owner per external library").
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent libevent_pthreads libevent_openssl)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(INIH REQUIRED IMPORTED_TARGET inih)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(MAXMINDDB REQUIRED IMPORTED_TARGET libmaxminddb)
pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET
                  libavformat libavcodec libavutil libavfilter libswscale libswresample)
# RocksDB ships no pkg-config file on Debian 12.
find_path(ROCKSDB_INCLUDE_DIR rocksdb/c.h REQUIRED)
find_library(ROCKSDB_LIBRARY rocksdb REQUIRED)
add_library(tmt_rocksdb INTERFACE)
target_include_directories(tmt_rocksdb INTERFACE ${ROCKSDB_INCLUDE_DIR})
target_link_libraries(tmt_rocksdb INTERFACE ${ROCKSDB_LIBRARY})
if(TMT_TESTS)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
