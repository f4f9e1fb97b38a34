#include "data/causal_lm_examples.h"

#include <algorithm>

namespace baton {

void CausalLmExamples::Fill(uint64_t index, uint64_t, ExampleRow* row) const {
  const int n = windows_.seq_len();
  const uint16_t* window = windows_[index];
  std::copy(window, window + n, row->tokens);
  std::copy(window + 1, window + n + 1, row->targets);
  row->length = n;
  row->prefix = 0;
}

std::string CausalLmExamples::Describe() const {
  return "windows of seq_len + 1 = " + std::to_string(windows_.seq_len() + 1) + " tokens";
}

}  // namespace baton
