// The addon's one thread pool (parallel.h). Kernels run many short parallel regions back to
// back (a training step issues hundreds of matmuls and element-wise ops), so the workers are
// persistent: after a job they spin for a short while waiting for the next one, then sleep on
// a condition variable, so an idle process costs no CPU.
//
// The calling thread works too, and chunks are taken dynamically, so a worker that the OS has
// not scheduled yet (a busy machine) costs nothing: the caller takes its chunks, closes the
// job, and waits only for workers that joined it. Joining and closing are one atomic word
// (generation, closed flag, count of joined workers), which is what makes reusing the single
// job slot safe.
//
// A parallel_for called from inside a job (a worker, or the caller's own share) or while another
// thread holds the pool runs serially on the calling thread: it never waits on the pool, so it
// cannot deadlock.
#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VLMC_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define VLMC_PAUSE() asm volatile("yield")
#else
#define VLMC_PAUSE() ((void)0)
#endif

namespace vlmc {
namespace {

// About 50-150 microseconds of spinning (PAUSE takes 40-140 cycles) before a worker sleeps:
// longer than the gap between two kernels of one step, short enough not to take a core from
// other work for long.
constexpr int kSpinBeforeSleep = 2000;

// The job word: bits 0-15 count the workers in the job, bit 16 closes it, the rest count jobs.
constexpr uint64_t kJoinedMask = 0xFFFF;
constexpr uint64_t kClosed = uint64_t{1} << 16;
constexpr int kGenerationShift = 17;

thread_local bool in_job = false;

int cores() {
  if (const char* env = std::getenv("VLMC_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return std::min(n, 256);
  }
#if defined(__linux__)
  // The CPUs this process may run on (containers and taskset narrow it), not the machine's.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n >= 1 ? static_cast<int>(n) : 1;
}

class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int i = 1; i < threads_; ++i) std::thread([this] { work(); }).detach();
  }

  int threads() const { return threads_; }

  /** Runs chunks [0, chunks) of f on this thread and the workers; false when the pool is busy. */
  bool run(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t)>& f) {
    std::unique_lock<std::mutex> busy(call_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    // No worker is in a job now (the last one was closed with none joined): the slot is ours.
    f_ = &f;
    n_ = n;
    chunks_ = chunks;
    next_.store(0, std::memory_order_relaxed);
    const uint64_t generation = (job_.load(std::memory_order_relaxed) >> kGenerationShift) + 1;
    {
      std::lock_guard<std::mutex> lock(sleep_);
      job_.store(generation << kGenerationShift, std::memory_order_release);
    }
    wake_.notify_all();
    drain();
    // Every chunk is taken; late workers must not join any more, and those in it finish theirs.
    job_.fetch_or(kClosed, std::memory_order_acq_rel);
    for (int spins = 0; (job_.load(std::memory_order_acquire) & kJoinedMask) != 0; ++spins) {
      if (spins < kSpinBeforeSleep) VLMC_PAUSE();
      else std::this_thread::yield();
    }
    return true;
  }

 private:
  void drain() {
    in_job = true;
    for (;;) {
      int64_t c = next_.fetch_add(1, std::memory_order_relaxed);
      if (c >= chunks_) break;
      // Balanced contiguous chunks: sizes differ by at most one item.
      int64_t begin = n_ * c / chunks_, end = n_ * (c + 1) / chunks_;
      (*f_)(begin, end);
    }
    in_job = false;
  }

  void work() {
    uint64_t seen = 0;
    auto generation = [this] { return job_.load(std::memory_order_acquire) >> kGenerationShift; };
    for (;;) {
      for (int spins = 0; generation() == seen && spins < kSpinBeforeSleep; ++spins) VLMC_PAUSE();
      if (generation() == seen) {
        std::unique_lock<std::mutex> lock(sleep_);
        wake_.wait(lock, [&] { return generation() != seen; });
      }
      uint64_t s = job_.load(std::memory_order_acquire);
      seen = s >> kGenerationShift;
      // Join only the job just seen, and only while it is open.
      bool joined = false;
      while ((s >> kGenerationShift) == seen && !(s & kClosed)) {
        if (job_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
          joined = true;
          break;
        }
      }
      if (!joined) continue;
      drain();
      job_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  const int threads_;
  std::mutex call_;   // one job at a time
  std::mutex sleep_;  // the sleep/wake handshake on job_
  std::condition_variable wake_;
  std::atomic<uint64_t> job_{0};
  std::atomic<int64_t> next_{0};
  const std::function<void(int64_t, int64_t)>* f_ = nullptr;
  int64_t n_ = 0, chunks_ = 0;
};
Pool& pool() {
  // Never destroyed: the workers are detached and simply end with the process.
  static Pool* p = new Pool(cores());
  return *p;
}

}  // namespace

int num_threads() { return pool().threads(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int threads = num_threads();
  if (threads == 1 || n < 2 * grain || in_job) {
    f(0, n);
    return;
  }
  // A few chunks per thread, so a thread slowed by another process does not hold up the job.
  const int64_t chunks = std::min<int64_t>(n / grain, 4 * static_cast<int64_t>(threads));
  if (!pool().run(n, chunks, f)) f(0, n);
}

}  // namespace vlmc
