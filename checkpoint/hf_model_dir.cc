#include "checkpoint/hf_model_dir.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

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

}  // namespace baton
