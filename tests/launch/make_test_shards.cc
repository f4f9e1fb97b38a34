// make_test_shards OUT_DIR: writes a tiny learnable corpus as llm.c token shards,
// OUT_DIR/t_train_000000.bin (300 documents) and OUT_DIR/t_val_000000.bin (40),
// for the shell tests (tests/launch/slurm_preempt_test.sh), which cannot count on
// python or node being installed. The corpus is the one train_command_test.cc
// uses: each document is an arithmetic progression mod 97 (tokens 100..196) with
// one of three steps after a separator token 50, so a model learns it quickly.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::vector<uint16_t> Corpus(int documents, uint32_t seed) {
  std::vector<uint16_t> t;
  uint32_t state = seed;
  for (int d = 0; d < documents; ++d) {
    state = state * 1664525u + 1013904223u;
    const int start = static_cast<int>(state >> 8) % 97, step = 1 + static_cast<int>(state >> 20) % 3;
    t.push_back(50);
    for (int i = 0; i < 40; ++i) t.push_back(static_cast<uint16_t>(100 + (start + i * step) % 97));
  }
  return t;
}

// llm.c format: 256 int32 header (magic 20240520, version 1, token count), then uint16 tokens.
bool WriteShard(const std::string& path, const std::vector<uint16_t>& tokens) {
  std::vector<int32_t> header(256, 0);
  header[0] = 20240520;
  header[1] = 1;
  header[2] = static_cast<int32_t>(tokens.size());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), 1024);
  out.write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(2 * tokens.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "make_test_shards: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_test_shards OUT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const bool ok = WriteShard(dir + "/t_train_000000.bin", Corpus(300, 1)) &&
                  WriteShard(dir + "/t_val_000000.bin", Corpus(40, 2));
  return ok ? 0 : 1;
}
