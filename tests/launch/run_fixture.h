// What the end-to-end tests of `baton train` share: a learnable token corpus
// written byte by byte from the llm.c format description (independently of
// baton's own writer), a tiny config, running the binary (directly, under
// mpirun, or in the background to signal it), and reading metrics.jsonl.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace baton::testing {

namespace fs = std::filesystem;

// Open MPI as root and with more ranks than cores (NOTES.md), whoever runs the test.
inline const std::string kMpiEnv =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
    "OMPI_MCA_btl_vader_single_copy_mechanism=none ";

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

inline CommandResult Shell(const std::string& command) {
  CommandResult r{-1, ""};
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

inline void WriteShard(const fs::path& path, const std::vector<uint16_t>& tokens, int32_t magic = 20240520) {
  std::vector<int32_t> header(256, 0);
  header[0] = magic;
  header[1] = 1;
  header[2] = static_cast<int32_t>(tokens.size());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), 1024);
  out.write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(2 * tokens.size()));
}

// Documents that follow a learnable rule: each is an arithmetic progression mod 97
// (offset 100) with one of three steps, so context predicts the next token.
inline std::vector<uint16_t> Corpus(int documents, uint32_t seed) {
  std::vector<uint16_t> t;
  uint32_t state = seed;
  for (int d = 0; d < documents; ++d) {
    state = state * 1664525u + 1013904223u;
    const int start = static_cast<int>(state >> 8) % 97, step = 1 + static_cast<int>(state >> 20) % 3;
    t.push_back(50);  // a document separator
    for (int i = 0; i < 40; ++i) t.push_back(static_cast<uint16_t>(100 + (start + i * step) % 97));
  }
  return t;
}

// A process started in the background, in its own process group, its output in a file.
struct Background {
  pid_t pid = -1;
  fs::path log;

  // Exit code, 128 + signal, or -1 after `timeout_s` (the group is then killed).
  int Wait(double timeout_s) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        killpg(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string Output() const {
    std::ifstream in(log);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
};

// Runs `command` with /bin/sh in a new process group; `file_size_limit` > 0 sets
// RLIMIT_FSIZE (writes past it fail with EFBIG, as on a full disk).
inline Background StartInBackground(const std::string& command, const fs::path& log, long file_size_limit = 0) {
  Background b;
  b.log = log;
  b.pid = fork();
  if (b.pid == 0) {
    setpgid(0, 0);
    if (file_size_limit > 0) {
      signal(SIGXFSZ, SIG_IGN);  // inherited through exec: a write fails instead of killing
      rlimit limit{static_cast<rlim_t>(file_size_limit), static_cast<rlim_t>(file_size_limit)};
      setrlimit(RLIMIT_FSIZE, &limit);
    }
    execl("/bin/sh", "sh", "-c", ("exec " + command + " > " + log.string() + " 2>&1").c_str(), nullptr);
    _exit(127);
  }
  setpgid(b.pid, b.pid);
  return b;
}

class RunFixture : public ::testing::Test {
 protected:
  // A model of 2 blocks, hidden 32, vocab `vocab`, CONSTANT learning rate.
  void MakeRunFiles(int vocab = 512) {
    dir_ = fs::temp_directory_path() / ("baton_" + std::string(::testing::UnitTest::GetInstance()->current_test_suite()->name()) +
                                        "_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    WriteShard(dir_ / "data/t_train_000000.bin", Corpus(300, 1));
    WriteShard(dir_ / "data/t_val_000000.bin", Corpus(40, 2));
    config_ = dir_ / "tiny.pbtxt";
    std::ofstream(config_) << "model { layers: 2 hidden: 32 heads: 2 vocab: " << vocab << " max_positions: 32 }\n"
                              "train { steps: 40 seq_len: 16 microbatch_size: 4 microbatches: 2 eval_every: 20 "
                              "eval_batches: 4 log_every: 10 }\n"
                              "data { train: \"" << (dir_ / "data/t_train_*.bin").string() << "\" val: \""
                           << (dir_ / "data/t_val_*.bin").string() << "\" }\n"
                              "optim { lr_schedule: CONSTANT lr: 0.03 clip_grad_norm: 1.0 }\n";
  }
  void SetUp() override { MakeRunFiles(); }
  void TearDown() override { fs::remove_all(dir_); }

  // `background`: for StartInBackground, which has its own time limit (timeout(1) would
  // stand between the test and mpirun, and not pass signals on).
  std::string TrainCommandLine(const std::string& run_dir, const std::string& extra = "", int ranks = 0,
                               bool background = false) const {
    std::string launcher;
    if (ranks > 0) launcher = "env " + kMpiEnv + (background ? "" : "timeout 120 ") + "mpirun -np " + std::to_string(ranks) + " ";
    return launcher + std::string(BATON_BINARY) + " train --config " + config_.string() + " --run-dir " +
           (dir_ / run_dir).string() + " " + extra;
  }
  // ranks 0: the binary alone (one process); else under mpirun -np ranks.
  CommandResult Train(const std::string& run_dir, const std::string& extra = "", int ranks = 0) {
    return Shell(TrainCommandLine(run_dir, extra, ranks));
  }
  std::vector<nlohmann::json> Metrics(const std::string& run_dir) {
    std::vector<nlohmann::json> lines;
    std::ifstream in(dir_ / run_dir / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
  // The training and validation lines (not checkpoint lines), in order.
  std::vector<nlohmann::json> LossLines(const std::string& run_dir) {
    std::vector<nlohmann::json> out;
    for (auto& j : Metrics(run_dir))
      if (j.contains("loss") || j.contains("val_loss")) out.push_back(j);
    return out;
  }

  fs::path dir_, config_;
};

}  // namespace baton::testing
