#include "launch/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "runtime/atomic_file.h"

namespace baton {

Result<MetricsLog> MetricsLog::Create(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  return MetricsLog(f, path);
}

Result<MetricsLog> MetricsLog::Continue(const std::string& path, int64_t step) {
  std::string kept;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    // A torn last line (the process died mid-write) does not parse and is dropped.
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= step)
      kept += line + "\n";
  }
  BATON_RETURN_IF_ERROR(WriteFileAtomically(path, kept));
  FILE* f = std::fopen(path.c_str(), "a");
  if (!f) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  return MetricsLog(f, path);
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

Status MetricsLog::Append(const nlohmann::json& line) {
  const std::string text = line.dump() + "\n";
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0)
    return Status::IOError("cannot write " + path_ + ": " + std::strerror(errno));
  return Status::OK();
}

}  // namespace baton
