// Causal language modelling (GPT): example i is window i of the dataset
// (token_dataset.h), its first seq_len tokens the input and the same tokens
// shifted by one the targets. Windows run across document boundaries, as
// GPT-2's and llm.c's training does.
#pragma once

#include "data/example_set.h"
#include "data/token_dataset.h"

namespace baton {

class CausalLmExamples : public ExampleSet {
 public:
  // `data` must outlive the set.
  CausalLmExamples(const TokenDataset& data, int seq_len) : windows_(data.Windows(seq_len)) {}

  uint64_t count() const override { return windows_.count(); }
  int seq_len() const override { return windows_.seq_len(); }
  bool has_masks() const override { return false; }
  void Fill(uint64_t index, uint64_t epoch, ExampleRow* row) const override;
  std::string Describe() const override;

 private:
  TokenWindows windows_;
};

}  // namespace baton
