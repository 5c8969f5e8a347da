// Swift concurrency's global executor for nicrouted, replacing libdispatch's (see
// GlobalExecutor.c for why).
#ifndef NICROUTE_CGLOBALEXECUTOR_H
#define NICROUTE_CGLOBALEXECUTOR_H

/// Starts `threads` worker threads (1...16) and routes every job Swift concurrency gives its
/// global executor (tasks, continuations) to them. Call it once, before the first task is
/// created; the executor lives as long as the process.
/// Returns 0, EALREADY when already installed, EINVAL for a bad count, or pthread_create's error
/// (nothing is installed then, and libdispatch's executor stays).
int nicroute_global_executor_install(int threads);

/// 1 once nicroute_global_executor_install succeeded.
int nicroute_global_executor_installed(void);

typedef void (*nicroute_executor_callback)(void *context);

/// Calls `callback(context)` on one of the executor's threads `delayNanoseconds` from now
/// (CLOCK_MONOTONIC). Only after a successful install. What ExecutorSleep builds on: Swift 6.3's
/// `Task.sleep` hands its wake-up to libdispatch directly, past the executor hooks.
void nicroute_global_executor_after(
    unsigned long long delayNanoseconds, nicroute_executor_callback callback, void *context);

#endif
