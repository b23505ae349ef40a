// One pool of worker threads for every kernel (created once, sized to the cores or
// VLMC_THREADS). parallel.cc implements it.
#pragma once
#include <cstdint>
#include <functional>

namespace vlmc {

/** The pool's thread count (the calling thread included). */
int num_threads();

/**
 * Runs f(begin, end) over [0, n) split into contiguous chunks of at least `grain` items, on the
 * pool and the calling thread; returns when all are done. Serial when n < 2 * grain.
 */
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

}  // namespace vlmc
