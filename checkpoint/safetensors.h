// Hugging Face's safetensors file format, for exchanging weights with
// transformers (https://github.com/huggingface/safetensors).
//
// Layout:
//   u64 little-endian header length N
//   N bytes of UTF-8 JSON: {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...,
//                           "__metadata__": {"key": "value", ...}}   (optional, strings only)
//     (writers may pad it with trailing spaces to a multiple of 8 bytes)
//   the byte buffer: each tensor's elements, row-major, little-endian, at
//     [BEGIN, END) relative to the start of the buffer (i.e. file offset 8 + N).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/status.h"
#include "runtime/tensor.h"

namespace baton {

// Tensors in a file's order; names are unique.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes `tensors` (host f32 or f64, any rank; names unique, non-empty and not
// "__metadata__") to `path` atomically, in the order given, with `metadata`
// as the "__metadata__" entry when it is not empty. transformers wants
// {"format": "pt"} there. InvalidArgument naming file and tensor otherwise.
Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& metadata);

// Reads every tensor of `path`, in the order of their data offsets. F32, F16
// and BF16 tensors come back as f32 (F16 and BF16 widen exactly), F64 as f64;
// any other dtype is refused naming the file, the tensor and the dtype. The
// header is validated (length inside the file, JSON object, field types,
// data_offsets inside the buffer and matching shape x dtype size, no two
// tensors sharing bytes); every error names the file and, when known, the
// tensor. With `metadata` non-null, "__metadata__" is stored there.
Result<NamedTensors> ReadSafetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

}  // namespace baton
