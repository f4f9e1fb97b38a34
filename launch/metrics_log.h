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
  // Continues a resumed run's file: keeps the lines of steps <= `step` (what the
  // checkpoint includes; later lines came from steps that are trained again),
  // rewritten atomically, then appends.
  static Result<MetricsLog> Continue(const std::string& path, int64_t step);
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
