// run_dir/metrics.jsonl: one JSON object per line, flushed as written, so a
// run that dies keeps every line it reached.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/status.h"

namespace baton {

class MetricsLog {
 public:
  // Creates (truncates) the file.
  static Result<MetricsLog> Create(const std::string& path);
  MetricsLog(MetricsLog&& other) noexcept : file_(other.file_), path_(std::move(other.path_)) { other.file_ = nullptr; }
  ~MetricsLog();

  Status Append(const nlohmann::json& line);
  const std::string& path() const { return path_; }

 private:
  MetricsLog(FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  FILE* file_;
  std::string path_;
};

}  // namespace baton
