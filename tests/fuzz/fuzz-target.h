/*
 * The libFuzzer entry point every tests/fuzz/fuzz-*.c defines.  Linked with
 * libFuzzer (fuzz-NAME, clang -fsanitize=fuzzer) or with replay-main.c
 * (replay-NAME, any compiler), which feeds it the corpus files.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
