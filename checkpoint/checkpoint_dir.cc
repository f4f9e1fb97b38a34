#include "checkpoint/checkpoint_dir.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "runtime/atomic_file.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

Status FsError(const std::string& what, const fs::path& path, const std::error_code& ec) {
  return Status::IOError("cannot " + what + " " + path.string() + ": " + ec.message());
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

constexpr char kReplacedSuffix[] = ".replaced";
constexpr char kDeletingSuffix[] = ".deleting";

// Removes a committed directory so that it disappears at once (a rename), not
// file by file: a crash mid-removal must not leave a damaged committed name.
Status RemoveCommitted(const fs::path& dir) {
  std::error_code ec;
  const fs::path doomed = dir.string() + kDeletingSuffix;
  fs::rename(dir, doomed, ec);
  if (ec) return FsError("remove old checkpoint", dir, ec);
  fs::remove_all(doomed, ec);  // a leftover is removed by the next BeginStepDir
  return Status::OK();
}

}  // namespace

std::string StepDirName(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::optional<int64_t> StepOfDirName(const std::string& name) {
  if (name.size() < 6 || name.compare(0, 5, "step_") != 0) return std::nullopt;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || step > (INT64_MAX - 9) / 10) return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

Result<std::vector<int64_t>> ListCommittedSteps(const std::string& ckpt_dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  if (!fs::exists(ckpt_dir, ec)) return steps;
  for (fs::directory_iterator it(ckpt_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::optional<int64_t> step = StepOfDirName(it->path().filename().string());
    if (step && it->is_directory()) steps.push_back(*step);
  }
  if (ec) return FsError("list", ckpt_dir, ec);
  std::sort(steps.begin(), steps.end());
  return steps;
}

Result<std::optional<int64_t>> ReadLatest(const std::string& ckpt_dir) {
  const std::string path = ckpt_dir + "/" + kLatestFileName;
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<int64_t>();
  std::ifstream in(path);
  std::string name;
  if (!in || !(in >> name)) return Status::Corruption(path + " is unreadable or empty");
  const std::optional<int64_t> step = StepOfDirName(name);
  if (!step) return Status::Corruption(path + " names '" + name + "', not a step directory");
  return step;
}

Status PrepareCheckpointDir(const std::string& ckpt_dir) {
  std::error_code ec;
  fs::create_directories(ckpt_dir, ec);
  if (ec) return FsError("create checkpoint directory", ckpt_dir, ec);
  const std::string probe = ckpt_dir + "/.write-probe";
  BATON_RETURN_IF_ERROR(
      WriteFileAtomically(probe, "baton").WithContext("checkpoint directory " + ckpt_dir + " is not writable"));
  fs::remove(probe, ec);
  return Status::OK();
}

Result<std::string> BeginStepDir(const std::string& ckpt_dir, int64_t step) {
  std::error_code ec;
  for (fs::directory_iterator it(ckpt_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("step_", 0) == 0 && (EndsWith(name, ".tmp") || EndsWith(name, kReplacedSuffix) || EndsWith(name, kDeletingSuffix))) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
      if (rm) return FsError("remove the unfinished checkpoint", it->path(), rm);
    }
  }
  if (ec) return FsError("list", ckpt_dir, ec);
  const std::string tmp = ckpt_dir + "/" + StepDirName(step) + ".tmp";
  fs::create_directory(tmp, ec);
  if (ec) return FsError("create", tmp, ec);
  return tmp;
}

Status CommitStepDir(const std::string& ckpt_dir, int64_t step) {
  const std::string name = StepDirName(step);
  const std::string tmp = ckpt_dir + "/" + name + ".tmp", final_dir = ckpt_dir + "/" + name;
  BATON_RETURN_IF_ERROR(SyncDirectory(tmp));
  std::error_code ec;
  const bool replacing = fs::exists(final_dir, ec);
  const std::string aside = final_dir + kReplacedSuffix;
  if (replacing) {
    fs::rename(final_dir, aside, ec);
    if (ec) return FsError("move aside the old", final_dir, ec);
  }
  fs::rename(tmp, final_dir, ec);
  if (ec) return FsError("rename " + tmp + " to", final_dir, ec);
  BATON_RETURN_IF_ERROR(SyncDirectory(ckpt_dir));
  BATON_RETURN_IF_ERROR(WriteFileAtomically(ckpt_dir + "/" + kLatestFileName, name + "\n"));
  if (replacing) fs::remove_all(aside, ec);  // a leftover is removed by the next BeginStepDir
  return Status::OK();
}

void AbandonStepDir(const std::string& ckpt_dir, int64_t step) {
  std::error_code ec;
  fs::remove_all(ckpt_dir + "/" + StepDirName(step) + ".tmp", ec);
}

Status PruneCheckpoints(const std::string& ckpt_dir, int keep, const std::string& protect_dir) {
  BATON_ASSIGN_OR_RETURN(std::vector<int64_t> steps, ListCommittedSteps(ckpt_dir));
  BATON_ASSIGN_OR_RETURN(std::optional<int64_t> latest, ReadLatest(ckpt_dir));
  std::error_code ec;
  const fs::path protect = protect_dir.empty() ? fs::path() : fs::weakly_canonical(protect_dir, ec);
  const size_t keep_n = static_cast<size_t>(std::max(keep, 1));
  for (size_t i = 0; i + keep_n < steps.size(); ++i) {  // oldest first; the newest keep_n stay
    const fs::path dir = fs::path(ckpt_dir) / StepDirName(steps[i]);
    if (latest && *latest == steps[i]) continue;
    if (!protect.empty() && fs::weakly_canonical(dir, ec) == protect) continue;
    BATON_RETURN_IF_ERROR(RemoveCommitted(dir));
  }
  return SyncDirectory(ckpt_dir);
}

}  // namespace baton
