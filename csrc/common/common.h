// Shared helpers for every stage: index types, cooperative cancellation, CPU thread control.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace isogan {

// Row offsets and flat positions into N x N outputs: int64 because N^2 overflows int32 at N > 46340.
using index_t = std::int64_t;

// Cooperative cancellation for long native loops that run with the GIL released.
// Any thread may call `stop_requested()`; only the thread that entered the native call (OpenMP's
// master thread) runs `poll_signals`, at most every `poll_interval`, because Python signal
// handlers may run only there. Once set, the flag stays set and every worker leaves its loop.
class Cancellation {
 public:
  Cancellation() = default;
  explicit Cancellation(std::function<bool()> poll_signals)
      : poll_signals_(std::move(poll_signals)), last_poll_(std::chrono::steady_clock::now()) {}

  // `is_caller_thread`: true on the thread that entered the native call (omp_get_thread_num()==0
  // inside a parallel region started by it).
  bool stop_requested(bool is_caller_thread) {
    if (cancelled_.load(std::memory_order_relaxed)) return true;
    if (is_caller_thread && poll_signals_) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_poll_ >= poll_interval) {
        last_poll_ = now;
        if (poll_signals_()) cancelled_.store(true, std::memory_order_relaxed);
      }
    }
    return cancelled_.load(std::memory_order_relaxed);
  }

  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

  static constexpr std::chrono::milliseconds poll_interval{100};

 private:
  std::function<bool()> poll_signals_;
  std::chrono::steady_clock::time_point last_poll_{};
  std::atomic<bool> cancelled_{false};
};

// Thrown by kernels when a Cancellation fired; the binding turns it into the pending
// KeyboardInterrupt (or whatever exception the signal handler raised).
struct Cancelled : std::exception {
  const char* what() const noexcept override { return "interrupted"; }
};

// Number of OpenMP threads for a call: n_jobs follows joblib/scikit-learn (None/0 -> all,
// -1 -> all, -2 -> all but one, k>0 -> k).
int resolve_threads(int n_jobs);

}  // namespace isogan
