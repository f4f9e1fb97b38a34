#include "checkpoint/hf_model_dir.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/atomic_file.h"

namespace baton {

namespace fs = std::filesystem;
using json = nlohmann::json;

Result<std::string> ReadHfTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return Status::IOError(path + ": read failed");
  return s.str();
}

Result<NamedTensors> ReadHfWeights(const std::string& hf_dir, std::string* source) {
  const std::string single = (fs::path(hf_dir) / "model.safetensors").string();
  const std::string index = (fs::path(hf_dir) / "model.safetensors.index.json").string();
  std::error_code ec;
  *source = single;
  if (fs::exists(single, ec)) return ReadSafetensors(single);
  *source = index;
  if (!fs::exists(index, ec)) {
    return Status::NotFound(hf_dir + ": has neither model.safetensors nor model.safetensors.index.json " +
                            "(pytorch_model.bin is not read; save the model with safe_serialization=True)");
  }
  BATON_ASSIGN_OR_RETURN(const std::string text, ReadHfTextFile(index));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return Status::Corruption(index + ": expected a JSON object with a \"weight_map\" object");
  }
  std::set<std::string> shards;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos) {
      return Status::Corruption(index + ": weight_map entry " + name + " is not a file name in " + hf_dir);
    }
    shards.insert(file.get<std::string>());
  }
  NamedTensors all;
  for (const std::string& shard : shards) {
    BATON_ASSIGN_OR_RETURN(NamedTensors part, ReadSafetensors((fs::path(hf_dir) / shard).string()));
    for (auto& named : part) all.push_back(std::move(named));
  }
  return all;
}

std::string HfConfigPath(const std::string& hf_dir) { return (fs::path(hf_dir) / "config.json").string(); }

Result<ParamTensors> ReadHfParams(const std::string& hf_dir, const std::string& config_path,
                                  const std::function<Result<ParamTensors>(const NamedTensors&)>& convert) {
  std::string source;
  BATON_ASSIGN_OR_RETURN(const NamedTensors tensors, ReadHfWeights(hf_dir, &source));
  Result<ParamTensors> params = convert(tensors);
  if (!params.ok()) return params.status().WithContext(source + " (for " + config_path + ")");
  return params;
}

Status WriteHfModelDir(const std::string& out_dir, const std::string& config_json, const NamedTensors& tensors) {
  std::error_code ec;
  if (fs::exists(out_dir, ec)) {
    if (!fs::is_directory(out_dir, ec)) return Status::InvalidArgument(out_dir + ": exists and is not a directory");
    if (!fs::is_empty(out_dir, ec)) {
      return Status::InvalidArgument(out_dir +
                                     ": exists and is not empty; refusing to overwrite (pick a new directory)");
    }
  }
  fs::create_directories(out_dir, ec);
  if (ec) return Status::IOError(out_dir + ": cannot create directory: " + ec.message());
  BATON_RETURN_IF_ERROR(
      WriteSafetensors((fs::path(out_dir) / "model.safetensors").string(), tensors, {{"format", "pt"}}));
  return WriteFileAtomically((fs::path(out_dir) / "config.json").string(), config_json);
}

Status CheckHfSizes(const ModelSpec& s, const std::string& what) {
  if (s.layers <= 0 || s.hidden <= 0 || s.heads <= 0 || s.ffn <= 0 || s.vocab <= 0 || s.max_positions <= 0) {
    return Status::InvalidArgument(what + "layers, hidden, heads, ffn, vocab and max_positions must be positive");
  }
  if (s.padded_vocab < s.vocab) {
    return Status::InvalidArgument(what + "padded_vocab " + std::to_string(s.padded_vocab) + " < vocab " +
                                   std::to_string(s.vocab));
  }
  return Status::OK();
}

Result<const Tensor*> HfExportParam(const ParamTensors& params, const std::string& name, const Shape& shape) {
  const auto it = params.find(name);
  if (it == params.end()) return Status::NotFound("parameter " + name + " (f32 " + ShapeString(shape) + ") is missing");
  const Tensor& t = it->second;
  if (!t.defined() || t.dtype() != DType::kF32 || !t.device().is_cpu() || t.shape() != shape) {
    return Status::InvalidArgument("parameter " + name + " is " + t.Describe() + ", expected f32" +
                                   ShapeString(shape) + " on cpu");
  }
  return &t;
}

Status CheckAllParamsMapped(const ParamTensors& params, const std::set<std::string>& mapped, const std::string& model) {
  for (const auto& [name, t] : params) {
    if (!mapped.count(name)) return Status::InvalidArgument("parameter " + name + " has no " + model + " counterpart");
  }
  return Status::OK();
}

Status CheckHfTensor(const std::string& name, const Tensor& t, const Shape& shape, const std::string& what) {
  if (t.shape() == shape && (t.dtype() == DType::kF32 || t.dtype() == DType::kF64)) return Status::OK();
  return Status::InvalidArgument("tensor " + name + " is " + t.Describe() + ", expected f32" + ShapeString(shape) +
                                 " (" + what + ")");
}

Tensor HfTensorToF32(const Tensor& t) {
  if (t.dtype() == DType::kF32) return t;
  const std::vector<double> d = t.ToDoubles();  // f64, rounded to baton's f32
  return Tensor::FromVector(t.shape(), std::vector<float>(d.begin(), d.end()));
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

Status CheckTiedToWte(const std::string& name, const Tensor& copy, const std::string& of_name, const Tensor& of) {
  if (SameBytes(copy, of)) return Status::OK();
  return Status::Unimplemented("tensor " + name + " " + copy.Describe() + " differs from " + of_name +
                               ": untied output embeddings are not supported (baton ties them to wte)");
}

Status NotAnHfParameter(const std::string& name, const Tensor& t, int64_t layers, const std::string& model) {
  return Status::InvalidArgument("tensor " + name + " " + ShapeString(t.shape()) + " is not a parameter of a " +
                                 std::to_string(layers) + "-layer " + model + " (or of baton's version of it)");
}

}  // namespace baton
