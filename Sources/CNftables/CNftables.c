#include "CNftables.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// From <nftables/libnftables.h>.
struct nft_ctx;
typedef struct nft_ctx *(*nft_ctx_new_fn)(unsigned int flags);
typedef void (*nft_ctx_free_fn)(struct nft_ctx *ctx);
typedef int (*nft_ctx_buffer_fn)(struct nft_ctx *ctx);
typedef const char *(*nft_ctx_get_buffer_fn)(struct nft_ctx *ctx);
typedef int (*nft_run_cmd_from_buffer_fn)(struct nft_ctx *nft, const char *buf);
#define NFT_CTX_DEFAULT 0

static struct {
    void *handle;
    const char *why;
    nft_ctx_new_fn ctx_new;
    nft_ctx_free_fn ctx_free;
    nft_ctx_buffer_fn buffer_output, buffer_error;
    nft_ctx_get_buffer_fn get_output, get_error;
    nft_run_cmd_from_buffer_fn run;
} lib;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        lib.why = e ? strdup(e) : "libnftables.so.1 cannot be loaded";
        return;
    }
    lib.ctx_new = (nft_ctx_new_fn)dlsym(h, "nft_ctx_new");
    lib.ctx_free = (nft_ctx_free_fn)dlsym(h, "nft_ctx_free");
    lib.buffer_output = (nft_ctx_buffer_fn)dlsym(h, "nft_ctx_buffer_output");
    lib.buffer_error = (nft_ctx_buffer_fn)dlsym(h, "nft_ctx_buffer_error");
    lib.get_output = (nft_ctx_get_buffer_fn)dlsym(h, "nft_ctx_get_output_buffer");
    lib.get_error = (nft_ctx_get_buffer_fn)dlsym(h, "nft_ctx_get_error_buffer");
    lib.run = (nft_run_cmd_from_buffer_fn)dlsym(h, "nft_run_cmd_from_buffer");
    if (!lib.ctx_new || !lib.ctx_free || !lib.buffer_output || !lib.buffer_error || !lib.get_output
        || !lib.get_error || !lib.run) {
        lib.why = "libnftables.so.1 lacks a function nicroute needs";
        dlclose(h);
        return;
    }
    lib.handle = h;
}

int nicroute_nft_load(const char **why) {
    pthread_once(&once, load);
    if (lib.handle) return 0;
    if (why) *why = lib.why;
    return -1;
}

static char *copy(const char *s) { return strdup(s ? s : ""); }

int nicroute_nft_run(const char *script, char **output, char **error) {
    *output = NULL;
    *error = NULL;
    const char *why = NULL;
    if (nicroute_nft_load(&why) != 0) {
        *error = copy(why);
        return -2;
    }
    struct nft_ctx *ctx = lib.ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) {
        *error = copy("nft_ctx_new failed");
        return -1;
    }
    lib.buffer_output(ctx);
    lib.buffer_error(ctx);
    int rc = lib.run(ctx, script);
    *output = copy(lib.get_output(ctx));
    *error = copy(lib.get_error(ctx));
    lib.ctx_free(ctx);
    return rc;
}

void nicroute_nft_free(char *text) { free(text); }
