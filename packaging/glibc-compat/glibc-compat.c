/*
 * What the release binaries need from a newer glibc than the one they are linked against.
 *
 * scripts/build-release.sh links nicrouted and nicroutectl against Debian 11's glibc 2.31 (a
 * sysroot made by scripts/build-sysroot.sh), so every glibc symbol they use binds to a version
 * that 2.31 has, and the binaries start on any glibc from 2.31 on. Everything else comes from
 * that sysroot too (crt files, libgcc and its unwinder from GCC 10), except libstdc++: the
 * toolchain's static Swift runtime needs GCC 11's libstdc++ or newer
 * (std::__throw_bad_array_new_length), so the host's GCC 12 libstdc++.a is linked in, and it
 * was compiled against glibc 2.36's headers. This file supplies the one symbol that archive
 * then misses; the build's floor check (scripts/check-glibc-floor.sh) names anything else that
 * ever slips above 2.31.
 *
 * Linked into the release binaries only (never into debug builds, which use the host's glibc).
 */

/*
 * glibc 2.32 exports `char __libc_single_threaded`, non-zero while the process has one thread;
 * libstdc++ reads it to skip atomic reference counts and the locks of function-local statics.
 * Zero here means "possibly multi-threaded": libstdc++ always takes the thread-safe path, which
 * is what it did before glibc had the variable. Never written.
 */
char __libc_single_threaded = 0;
