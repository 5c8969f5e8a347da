// A global executor for Swift concurrency that does not wake up when nothing is due.
//
// Why this is written by hand: on Linux, Swift 6.3's default global executor is libdispatch,
// and libdispatch monitors its worker pool with a timer that fires every second for the rest
// of the process's life once the first worker thread has started
// (_dispatch_workq_monitor_pools in swift-corelibs-libdispatch's src/event/workqueue.c; nothing
// turns it off). SPEC.md wants an idle nicrouted to wake for the watchdog only. Swift 6.3 has no
// public way to replace the global executor; the runtime's enqueue hooks used here are the ones
// swift-nio's NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor
// uses, but depending on swift-nio for this would add an event-loop framework to a daemon whose
// idle memory target (15 MB) it already nearly fills. This file is the smallest executor that
// does the job: a FIFO of ready jobs, a min-heap of timed jobs, a few threads and one
// condition variable on CLOCK_MONOTONIC.
//
// libdispatch stays in the process (signal sources, the main queue), but no Swift job reaches
// its global queues, so its worker-pool monitor is never armed. One path goes around the hooks:
// Task.sleep in Swift 6.3 hands its wake-up straight to libdispatch's default executor (its
// SchedulingExecutor), so nicrouted sleeps with nicroute_global_executor_after instead
// (ExecutorSleep.swift). When Swift's custom global executors (ExecutorFactory) ship, this file
// becomes a TaskExecutor and SchedulingExecutor conformance and the hooks go.
#define _GNU_SOURCE
#include "CGlobalExecutor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

// The runtime's declarations, from swift/Runtime/Concurrency.h (Swift 5.9 to 6.3): hooks are
// Swift-calling-convention function pointers the runtime calls instead of its own enqueue.
#define SWIFT_CC __attribute__((swiftcall))

typedef struct Job Job;  // opaque: only ever handed back to swift_job_run
typedef struct {
    void *identity;  // HeapObject *, NULL for the generic (global) executor
    uintptr_t implementation;
} SerialExecutorRef;

extern SWIFT_CC void swift_job_run(Job *job, SerialExecutorRef executor);

typedef SWIFT_CC void (*EnqueueOriginal)(Job *job);
extern SWIFT_CC void (*swift_task_enqueueGlobal_hook)(Job *job, EnqueueOriginal original);

typedef SWIFT_CC void (*DelayOriginal)(unsigned long long delay, Job *job);
extern SWIFT_CC void (*swift_task_enqueueGlobalWithDelay_hook)(
    unsigned long long delay, Job *job, DelayOriginal original);

typedef SWIFT_CC void (*DeadlineOriginal)(
    long long sec, long long nsec, long long tsec, long long tnsec, int clock, Job *job);
extern SWIFT_CC void (*swift_task_enqueueGlobalWithDeadline_hook)(
    long long sec, long long nsec, long long tsec, long long tnsec, int clock, Job *job,
    DeadlineOriginal original);

// swift_clock_id in swift/Runtime/Concurrency.h; the clocks are the ones Swift's Clock.cpp reads.
enum { SwiftClockContinuous = 1, SwiftClockSuspending = 2 };

// A unit of work: a Swift job, or a C callback (nicroute_global_executor_after).
typedef struct {
    Job *job;
    nicroute_executor_callback callback;
    void *context;
} Work;

typedef struct ReadyJob {
    Work work;
    struct ReadyJob *next;
} ReadyJob;

typedef struct {
    uint64_t deadline;  // CLOCK_MONOTONIC nanoseconds
    uint64_t order;     // FIFO among equal deadlines
    Work work;
} TimedJob;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;  // on CLOCK_MONOTONIC
    ReadyJob *head, *tail;
    TimedJob *timers;
    size_t timerCount, timerCapacity;
    uint64_t order;
    // One idle thread at most waits with a timeout, for the earliest timed job (the keeper);
    // the others wait without one, so an idle process has a single timed wait, if any.
    int keeperWaiting;
    uint64_t keeperDeadline;
    int idleWaiting;  // threads in the untimed wait
} executor = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_int installed;

static uint64_t now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *checkedAllocation(void *pointer) {
    // Out of memory while enqueueing: there is no caller to report to (the runtime's own
    // executor aborts the same way).
    if (pointer == NULL) abort();
    return pointer;
}

// --- with the lock held ---

static void pushReady(Work work) {
    ReadyJob *node = checkedAllocation(malloc(sizeof *node));
    node->work = work;
    node->next = NULL;
    if (executor.tail) executor.tail->next = node; else executor.head = node;
    executor.tail = node;
}

static int popReady(Work *work) {
    ReadyJob *node = executor.head;
    if (node == NULL) return 0;
    executor.head = node->next;
    if (executor.head == NULL) executor.tail = NULL;
    *work = node->work;
    free(node);
    return 1;
}

static int timerBefore(const TimedJob *a, const TimedJob *b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->order < b->order);
}

static void pushTimer(uint64_t deadline, Work work) {
    if (executor.timerCount == executor.timerCapacity) {
        size_t capacity = executor.timerCapacity ? executor.timerCapacity * 2 : 16;
        executor.timers = checkedAllocation(realloc(executor.timers, capacity * sizeof(TimedJob)));
        executor.timerCapacity = capacity;
    }
    size_t i = executor.timerCount++;
    TimedJob entry = {deadline, executor.order++, work};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timerBefore(&entry, &executor.timers[parent])) break;
        executor.timers[i] = executor.timers[parent];
        i = parent;
    }
    executor.timers[i] = entry;
}

static Work popTimer(void) {
    Work work = executor.timers[0].work;
    TimedJob last = executor.timers[--executor.timerCount];
    size_t i = 0, count = executor.timerCount;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= count) break;
        if (child + 1 < count && timerBefore(&executor.timers[child + 1], &executor.timers[child])) child++;
        if (!timerBefore(&executor.timers[child], &last)) break;
        executor.timers[i] = executor.timers[child];
        i = child;
    }
    if (count > 0) executor.timers[i] = last;
    return work;
}

// --- the hooks ---

static SWIFT_CC void enqueueGlobal(Job *job, EnqueueOriginal original) {
    (void)original;
    pthread_mutex_lock(&executor.lock);
    pushReady((Work){job, NULL, NULL});
    pthread_cond_signal(&executor.wake);
    pthread_mutex_unlock(&executor.lock);
}

static void enqueueAt(uint64_t deadline, Work work) {
    pthread_mutex_lock(&executor.lock);
    pushTimer(deadline, work);
    if (executor.keeperWaiting) {
        // The keeper waits for a later deadline: wake everyone so that it sees this one (a
        // single signal might wake a thread that goes back to its untimed wait).
        if (deadline < executor.keeperDeadline) pthread_cond_broadcast(&executor.wake);
    } else {
        pthread_cond_signal(&executor.wake);
    }
    pthread_mutex_unlock(&executor.lock);
}

static void enqueueAfter(uint64_t delay, Work work) {
    uint64_t start = now(CLOCK_MONOTONIC);
    enqueueAt(delay > UINT64_MAX - start ? UINT64_MAX : start + delay, work);
}

static SWIFT_CC void enqueueGlobalWithDelay(unsigned long long delay, Job *job, DelayOriginal original) {
    (void)original;
    enqueueAfter(delay, (Work){job, NULL, NULL});
}

static SWIFT_CC void enqueueGlobalWithDeadline(
    long long sec, long long nsec, long long tsec, long long tnsec, int clock, Job *job, DeadlineOriginal original) {
    (void)tsec;
    (void)tnsec;  // tolerance: the deadline is kept exactly
    clockid_t id;
    switch (clock) {
    case SwiftClockContinuous: id = CLOCK_BOOTTIME; break;
    case SwiftClockSuspending: id = CLOCK_MONOTONIC; break;
    default: original(sec, nsec, tsec, tnsec, clock, job); return;  // a clock this file does not know
    }
    // The deadline on its own clock, as a delay from now, onto CLOCK_MONOTONIC.
    uint64_t target;
    if (sec < 0) target = 0;
    else if ((uint64_t)sec >= UINT64_MAX / 1000000000ull - 1) target = UINT64_MAX;  // "never", saturated
    else target = (uint64_t)sec * 1000000000ull + (uint64_t)(nsec < 0 ? 0 : nsec);
    uint64_t current = now(id);
    enqueueAfter(target > current ? target - current : 0, (Work){job, NULL, NULL});
}

// --- the workers ---

static void *worker(void *argument) {
    (void)argument;
    pthread_setname_np(pthread_self(), "nicroute-exec");  // for ps -L, top -H, gdb
    SerialExecutorRef generic = {NULL, 0};
    pthread_mutex_lock(&executor.lock);
    for (;;) {
        uint64_t current = now(CLOCK_MONOTONIC);
        int expired = 0;
        while (executor.timerCount > 0 && executor.timers[0].deadline <= current) {
            pushReady(popTimer());
            expired++;
        }
        if (expired > 1) pthread_cond_signal(&executor.wake);  // more than this thread can take now
        Work work;
        if (popReady(&work)) {
            // Timers must not wait for this work to end: hand the timed wait to an idle thread.
            if (executor.timerCount > 0 && !executor.keeperWaiting && executor.idleWaiting > 0) {
                pthread_cond_signal(&executor.wake);  // only untimed waiters wait now
            }
            pthread_mutex_unlock(&executor.lock);
            if (work.job) swift_job_run(work.job, generic); else work.callback(work.context);
            pthread_mutex_lock(&executor.lock);
            continue;
        }
        if (executor.timerCount > 0 && !executor.keeperWaiting) {
            uint64_t deadline = executor.timers[0].deadline;
            struct timespec until = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
            executor.keeperWaiting = 1;
            executor.keeperDeadline = deadline;
            pthread_cond_timedwait(&executor.wake, &executor.lock, &until);
            executor.keeperWaiting = 0;
        } else {
            executor.idleWaiting++;
            pthread_cond_wait(&executor.wake, &executor.lock);
            executor.idleWaiting--;
        }
    }
    return NULL;
}

int nicroute_global_executor_install(int threads) {
    if (threads < 1 || threads > 16) return EINVAL;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&installed, &expected, 1)) return EALREADY;

    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&executor.wake, &attributes);
    pthread_condattr_destroy(&attributes);

    // Workers block the asynchronous signals (as libdispatch's do), so that SIGTERM and SIGHUP
    // reach the signal sources, never a worker; faults stay deliverable, so that a crash or a trap
    // in a job reaches Swift's backtracer (threads started from jobs inherit this mask).
    sigset_t all, previous;
    sigfillset(&all);
    int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_attr_t threadAttributes;
    pthread_attr_init(&threadAttributes);
    pthread_attr_setdetachstate(&threadAttributes, PTHREAD_CREATE_DETACHED);
    int result = 0;
    for (int i = 0; i < threads && result == 0; i++) {
        pthread_t thread;
        result = pthread_create(&thread, &threadAttributes, worker, NULL);
        if (result == 0 && i == 0) {
            // From here on jobs have somewhere to run: take over.
            swift_task_enqueueGlobal_hook = enqueueGlobal;
            swift_task_enqueueGlobalWithDelay_hook = enqueueGlobalWithDelay;
            swift_task_enqueueGlobalWithDeadline_hook = enqueueGlobalWithDeadline;
        }
    }
    pthread_attr_destroy(&threadAttributes);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    // A later thread failing to start leaves fewer workers, not none: only the first matters.
    if (result != 0 && swift_task_enqueueGlobal_hook == NULL) {
        atomic_store(&installed, 0);
        return result;
    }
    atomic_store(&installed, 2);
    return 0;
}

int nicroute_global_executor_installed(void) {
    return atomic_load(&installed) == 2;
}

void nicroute_global_executor_after(
    unsigned long long delayNanoseconds, nicroute_executor_callback callback, void *context) {
    enqueueAfter(delayNanoseconds, (Work){NULL, callback, context});
}
