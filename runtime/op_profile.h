// Where a step's time goes, op by op, for benchmarks (`baton_bench --profile`).
// When enabled, every op (and every named phase) records its start and end on
// the compute device: CUDA events on a GPU (no host synchronisation while the
// step runs), the wall clock on the CPU. Collect() then sums the intervals per
// name. Disabled (the default), a scope costs one branch.
#pragma once

#include <string>
#include <vector>

namespace baton {

class OpProfile {
 public:
  // phases_only: only scopes named "phase: ..." (a few per micro-batch), so that the
  // timing itself costs nothing measurable.
  static void Enable(bool on, bool phases_only = false);
  static bool enabled();

  struct Entry {
    std::string name;
    int64_t calls = 0;
    double ms = 0;
  };
  // Waits for the device, then returns the time per name since the last Collect
  // (most time first) and starts over.
  static std::vector<Entry> Collect();

  // Times the enclosed work under `name` (a string literal: kept by pointer).
  class Scope {
   public:
    explicit Scope(const char* name);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    int slot_ = -1;
  };
};

}  // namespace baton
