// libnftables, loaded at run time.
//
// Why dlopen and not a link: nicroute's release binaries depend on libc and libsystemd only
// (scripts/build-release.sh checks their NEEDED entries), and docs/design.md wants everything but
// forwarded connections to keep working where nftables is missing. libnftables.so.1 is loaded
// on first use; when it is absent, `nicroute_nft_run` says so and the caller reports why.
//
// Why libnftables and not nf_tables netlink by hand: the ruleset is nft syntax that the
// netfilter project's own library parses, checks and sends as one atomic batch; writing the
// nf_tables expression encoding (bitwise, ct, meta, cmp, immediate) would be a second codec
// with no benefit for a ruleset this small. The functions used are declared here with the
// signatures of <nftables/libnftables.h> (libnftables-dev), so the build needs no headers.
#ifndef CNFTABLES_H
#define CNFTABLES_H

/// Loads libnftables.so.1 if not already loaded. Returns 0, or -1 with a reason in `why`
/// (a static or library-owned string).
int nicroute_nft_load(const char **why);

/// Runs an nft script in one transaction (`nft -f -`). Returns libnftables' status (0 on
/// success) or -2 when the library cannot be loaded. `*output` and `*error` receive
/// malloc'd copies of what nft printed (free them with `nicroute_nft_free`).
int nicroute_nft_run(const char *script, char **output, char **error);

void nicroute_nft_free(char *text);

#endif
