// What a training objective makes of a dataset: an indexed set of examples,
// each one row of a micro-batch (input tokens, the target of every position,
// how much of the row is real and how much of it attends bidirectionally).
// The sampler (batch_sampler.h) decides which example comes when; the set
// decides what an example is. Causal LM, masked LM and UniLM seq2seq are
// three sets over the same token shards.
#pragma once

#include <cstdint>

#include "runtime/tensor.h"

namespace baton {

// A position without a target: it adds nothing to the loss (layers' kIgnoreTarget).
constexpr int32_t kExampleNoTarget = -1;

// One row of a batch, filled by ExampleSet::Fill.
struct ExampleRow {
  int32_t* tokens = nullptr;   // seq_len inputs
  int32_t* targets = nullptr;  // seq_len targets (kExampleNoTarget where there is none)
  int32_t length = 0;          // real tokens; positions [length, seq_len) are padding
  int32_t prefix = 0;          // positions [0, prefix) attend to each other both ways; the rest causally
};

// A whole batch: [batch, seq_len] tokens and targets; lengths and prefixes as
// i32 [batch] when the set has per-example masks (undefined otherwise: every
// row is a full causal window).
struct ExampleBatch {
  Tensor tokens, targets;
  Tensor lengths, prefix_lengths;
};

class ExampleSet {
 public:
  virtual ~ExampleSet() = default;
  virtual uint64_t count() const = 0;
  virtual int seq_len() const = 0;
  // False: every row is a full causal window (length seq_len, prefix 0), and
  // ExampleBatch carries no lengths or prefixes.
  virtual bool has_masks() const = 0;
  // Writes example `index` (< count()) into `row`. `epoch` lets an objective
  // draw new random choices every pass over the data (masked LM); the result
  // is a pure function of (index, epoch) and the set's seed.
  virtual void Fill(uint64_t index, uint64_t epoch, ExampleRow* row) const = 0;
  // What the examples are, for messages ("windows of 1025 tokens", ...).
  virtual std::string Describe() const = 0;
};

}  // namespace baton
