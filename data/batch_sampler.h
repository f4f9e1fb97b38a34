// Deterministic training batches: which examples of an ExampleSet (causal-LM
// windows, masked-LM chunks, seq2seq examples; example_set.h) a replica trains
// on, in which order, from a seed and a cursor small enough to store in every
// checkpoint.
//
// Each epoch visits the examples ("windows" below) in a permutation that is a pure function of
// (seed, epoch). The permutation's positions are dealt round-robin to the
// data-parallel replicas: replica r of R takes positions r, r + R, ..., so
// replicas see disjoint windows. Every replica takes the same number of
// windows per epoch, floor(windows / R): with R > 1 the last windows % R
// positions of each epoch are skipped (a different few each epoch).
#pragma once

#include <cstdint>
#include <memory>

#include "data/example_set.h"
#include "data/feistel_permutation.h"
#include "data/token_dataset.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

// Where the replicas are in the stream of windows. `position` counts the
// permutation positions consumed in `epoch` by all replicas together, so the
// cursor is the same on every replica and survives a change of R.
struct SamplerCursor {
  uint64_t epoch = 0;
  uint64_t position = 0;
};

class BatchSampler {
 public:
  // Checks the arguments, and that the set has at least one example per
  // replica; the dataset behind `examples` must outlive the sampler.
  static Result<BatchSampler> Create(std::shared_ptr<const ExampleSet> examples, uint64_t seed, int replica = 0,
                                     int replicas = 1);
  // Causal LM (causal_lm_examples.h) over `data`, which must outlive the sampler.
  static Result<BatchSampler> Create(const TokenDataset* data, int seq_len, uint64_t seed, int replica = 0,
                                     int replicas = 1);
  // As Create, but a bad argument is a programmer error (BATON_CHECK).
  BatchSampler(const TokenDataset* data, int seq_len, uint64_t seed, int replica = 0, int replicas = 1);

  // Fills `out` with the next `batch` examples (host tensors, reallocated when
  // their shape differs).
  void Next(int batch, ExampleBatch* out);
  // The same, for causal LM: targets are the tokens shifted by one.
  void Next(int batch, Tensor* tokens, Tensor* targets);

  SamplerCursor cursor() const { return cursor_; }
  void set_cursor(const SamplerCursor& cursor);

  int seq_len() const { return examples_->seq_len(); }
  const ExampleSet& examples() const { return *examples_; }
  uint64_t num_windows() const { return examples_->count(); }
  // Windows each replica takes per epoch.
  uint64_t windows_per_epoch() const { return examples_->count() / replicas_; }
  // The index (into TokenWindows) of the window this replica takes next.
  uint64_t PeekWindow();

 private:
  BatchSampler(std::shared_ptr<const ExampleSet> examples, uint64_t seed, int replica, int replicas);
  static Status Validate(const ExampleSet& examples, const std::string& source, int replica, int replicas);
  // Moves to the next epoch when this epoch has no full round of positions left.
  void WrapEpoch();
  const FeistelPermutation& EpochPermutation();

  std::shared_ptr<const ExampleSet> examples_;
  uint64_t seed_;
  int replica_, replicas_;
  SamplerCursor cursor_;
  // The permutation of cursor_.epoch, rebuilt when the epoch changes.
  FeistelPermutation permutation_;
  uint64_t permutation_epoch_;
};

}  // namespace baton
