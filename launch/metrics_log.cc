#include "launch/metrics_log.h"

#include <cerrno>
#include <cstring>

namespace baton {

Result<MetricsLog> MetricsLog::Create(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
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
