// libFuzzer's driver entry point. Declared weak: in a normal build (no -sanitize=fuzzer) the
// symbol is absent and the fuzz executable falls back to replaying the files it is given.
#ifndef NICROUTE_CFUZZER_H
#define NICROUTE_CFUZZER_H
#include <stddef.h>
#include <stdint.h>

typedef int (*cfuzzer_callback)(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerRunDriver(int *argc, char ***argv, cfuzzer_callback callback);

static inline int cfuzzer_driver_available(void) { return LLVMFuzzerRunDriver != 0; }
#endif
