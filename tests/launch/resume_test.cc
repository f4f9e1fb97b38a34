// Checkpoints end to end, as users meet them: resuming is bitwise exact, a
// checkpoint loads under any layout, damage is found and named (and --resume
// auto falls back past it), refusals change nothing, a signal on one rank or a
// wall-time budget stops every rank with a checkpoint, a full disk keeps the
// last good checkpoint. The SIGKILL-during-write loop is in kill_during_write_test.cc.
#include <cmath>
#include <map>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/manifest.h"
#include "tests/launch/run_fixture.h"

namespace {

using namespace baton::testing;  // NOLINT: the fixture and its helpers

class Resume : public RunFixture {
 protected:
  // Same numbers as `reference` for every training and validation line of `run`
  // (bitwise when tol == 0); `run` may start later (a run directory that began by
  // resuming), but from there on it has every line the reference has.
  void ExpectSameLosses(const std::string& reference, const std::string& run, double tol = 0) {
    auto a = LossLines(reference), b = LossLines(run);
    ASSERT_FALSE(b.empty()) << run;
    size_t skip = 0;
    while (skip < a.size() && a[skip]["step"] < b[0]["step"]) ++skip;
    a.erase(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(skip));
    ASSERT_EQ(a.size(), b.size()) << reference << " vs " << run;
    for (size_t l = 0; l < a.size(); ++l) {
      ASSERT_EQ(a[l]["step"], b[l]["step"]) << "line " << l;
      for (const char* key : {"loss", "grad_norm", "val_loss", "lr"}) {
        ASSERT_EQ(a[l].contains(key), b[l].contains(key)) << key << " line " << l;
        if (!a[l].contains(key)) continue;
        if (tol == 0) {
          EXPECT_EQ(a[l][key].dump(), b[l][key].dump()) << key << " at step " << a[l]["step"] << " of " << run;
        } else {
          // The gradient norm is the most sensitive number (another replica split reorders the
          // sums of every gradient, and training for 9 steps amplifies that): 30x the tolerance.
          const double x = a[l][key], y = b[l][key], t = std::string(key) == "grad_norm" ? 30 * tol : tol;
          EXPECT_NEAR(x, y, t * std::max(1.0, std::fabs(x))) << key << " at step " << a[l]["step"] << " of " << run;
        }
      }
    }
  }
  std::string Ckpt(const std::string& run, int64_t step) const {
    char name[32];
    std::snprintf(name, sizeof(name), "step_%08ld", static_cast<long>(step));
    return (dir_ / run / "ckpt" / name).string();
  }
  std::string Latest(const std::string& run) const {
    std::ifstream in(dir_ / run / "ckpt/LATEST");
    std::string s;
    in >> s;
    return s;
  }
  // Every file under `run` with its contents: what "nothing changed" compares.
  std::map<std::string, std::string> Snapshot(const std::string& run) const {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / run)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      files[e.path().string()] = std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
    return files;
  }
  static void FlipByte(const fs::path& file, uint64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x20);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
  }
};

constexpr char kExact[] = "--set train.threads=1 --set train.steps=12 --set train.eval_every=4 ";

TEST_F(Resume, CrashAndResumeIsBitwiseTheStraightRun) {
  ASSERT_EQ(Train("straight", kExact).exit_code, 0);
  // The run dies at the start of step 8 (after the checkpoint of step 6), then continues.
  CommandResult crash = Shell("BATON_FAIL_AT=0:8 " + TrainCommandLine("resumed", std::string(kExact) + "--set checkpoint.every=3"));
  ASSERT_NE(crash.exit_code, 0) << crash.output;
  EXPECT_EQ(Latest("resumed"), "step_00000006");
  CommandResult resumed = Train("resumed", std::string(kExact) + "--set checkpoint.every=3 --resume auto");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + Ckpt("resumed", 6) + " (step 6)"), std::string::npos) << resumed.output;
  ExpectSameLosses("straight", "resumed");
  // And the weights and AdaFactor state at the end, tensor by tensor.
  auto a = baton::CheckpointReader::Open(Ckpt("straight", 12));
  auto b = baton::CheckpointReader::Open(Ckpt("resumed", 12));
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
  ASSERT_EQ(a->manifest().tensors_size(), b->manifest().tensors_size());
  for (const auto& e : a->manifest().tensors()) {
    auto x = a->Read(e.name()), y = b->Read(e.name());
    ASSERT_TRUE(x.ok() && y.ok()) << e.name();
    ASSERT_EQ(x->nbytes(), y->nbytes());
    EXPECT_EQ(std::memcmp(x->raw(), y->raw(), x->nbytes()), 0) << e.name() << " differs after resuming";
  }
  EXPECT_NE(a->manifest().tensors_size(), 0);
}

TEST_F(Resume, ACheckpointLoadsUnderAnyLayoutWithTheSameNumbers) {
  // The same global batch everywhere: micro-batches x replicas = 4.
  const std::string base = std::string(kExact) + "--set checkpoint.every=6 ";
  struct Case {
    std::string name;
    int ranks;
    std::string layout;
    int replicas;
  };
  const std::vector<Case> writers = {
      {"w4x1", 4, "--set parallel.stages=4 --set train.microbatches=4", 1},
      {"w2x2", 4, "--set parallel.stages=2 --set parallel.replicas=2 --set train.microbatches=2", 2},
      {"w2v2", 2, "--set parallel.stages=2 --set parallel.schedule=INTERLEAVED_1F1B --set parallel.virtual_stages=2 "
                  "--set train.microbatches=4", 1},
  };
  const std::vector<Case> readers = {
      {"r1", 0, "--set train.microbatches=4", 1},
      {"r2x1", 2, "--set parallel.stages=2 --set train.microbatches=4", 1},
      {"r2x2", 4, "--set parallel.stages=2 --set parallel.replicas=2 --set train.microbatches=2", 2},
      {"r1x4", 4, "--set parallel.replicas=4 --set train.microbatches=1", 4},
  };
  for (const Case& w : writers) {
    // The run that never changes layout, and the same run dying after its step-6 checkpoint.
    CommandResult ref = Train(w.name + "_ref", base + w.layout, w.ranks);
    ASSERT_EQ(ref.exit_code, 0) << ref.output;
    CommandResult r = Shell("BATON_FAIL_AT=0:7 " + TrainCommandLine(w.name, base + w.layout, w.ranks));
    ASSERT_NE(r.exit_code, 0) << r.output;
    ASSERT_EQ(Latest(w.name), "step_00000006") << r.output;
    for (const Case& rd : readers) {
      const std::string run = w.name + "_" + rd.name;
      CommandResult c = Train(run, base + rd.layout + " --resume " + Ckpt(w.name, 6), rd.ranks);
      ASSERT_EQ(c.exit_code, 0) << w.name << " -> " << rd.name << "\n" << c.output;
      // Stages never change the arithmetic; replicas sum the gradients in another order.
      ExpectSameLosses(w.name + "_ref", run, w.replicas == rd.replicas ? 0 : 1e-6);
    }
  }
}

TEST_F(Resume, ADamagedCheckpointIsNamedAndAutoFallsBackToThePreviousOne) {
  const std::string base = std::string(kExact) + "--set checkpoint.every=4 ";
  ASSERT_EQ(Train("straight", base).exit_code, 0);
  CommandResult first = Shell("BATON_FAIL_AT=0:10 " + TrainCommandLine("run", base));
  ASSERT_EQ(Latest("run"), "step_00000008") << first.output;
  // Damage one payload byte of the embedding table in the newest checkpoint.
  auto reader = baton::CheckpointReader::Open(Ckpt("run", 8));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const baton::TensorSlice& wte = reader->Find("wte")->slices(0);
  FlipByte(fs::path(Ckpt("run", 8)) / wte.file(), wte.payload_offset() + wte.payload_bytes() / 2);

  CommandResult inspect = Shell(std::string(BATON_BINARY) + " inspect " + (dir_ / "run").string());
  EXPECT_EQ(inspect.exit_code, 1) << inspect.output;
  EXPECT_NE(inspect.output.find("checksum mismatch in tensor wte"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find(wte.file()), std::string::npos) << inspect.output;

  const auto before = Snapshot("run");
  CommandResult explicit_path = Train("run", base + "--resume " + Ckpt("run", 8));
  EXPECT_NE(explicit_path.exit_code, 0);
  EXPECT_NE(explicit_path.output.find("checksum mismatch in tensor wte"), std::string::npos) << explicit_path.output;
  EXPECT_NE(explicit_path.output.find(wte.file()), std::string::npos) << explicit_path.output;
  EXPECT_EQ(Snapshot("run"), before) << "a refused resume changed files";

  CommandResult fallback = Train("run", base + "--resume auto");
  ASSERT_EQ(fallback.exit_code, 0) << fallback.output;
  EXPECT_NE(fallback.output.find("falling back to the previous committed checkpoint " + Ckpt("run", 4)),
            std::string::npos) << fallback.output;
  EXPECT_NE(fallback.output.find("resumed from " + Ckpt("run", 4)), std::string::npos) << fallback.output;
  ExpectSameLosses("straight", "run");
  EXPECT_EQ(Shell(std::string(BATON_BINARY) + " inspect " + (dir_ / "run").string()).exit_code, 0);
}

TEST_F(Resume, RefusalsNameTheProblemAndChangeNothing) {
  const std::string base = std::string(kExact) + "--set checkpoint.every=4 --set train.steps=8 --set parallel.stages=2 ";
  ASSERT_EQ(Train("run", base, 2).exit_code, 0);
  const std::string step8 = Ckpt("run", 8);
  // Each case: damage a copy of step 8, resume from it explicitly, expect the message.
  struct Case {
    std::string name, expect;
    std::function<void(const fs::path&)> damage;
    std::string extra;
  };
  const std::vector<Case> cases = {
      {"missing shard", "shard file shard-p01-d00.bin is missing",
       [](const fs::path& d) { fs::remove(d / "shard-p01-d00.bin"); }, ""},
      {"truncated shard", "(truncated)",
       [](const fs::path& d) { fs::resize_file(d / "shard-p00-d00.bin", fs::file_size(d / "shard-p00-d00.bin") - 1); }, ""},
      {"newer format", "has checkpoint format version 2",
       [](const fs::path& d) {
         auto m = baton::ReadManifest(d.string());
         ASSERT_TRUE(m.ok());
         m->set_format_version(2);
         ASSERT_TRUE(baton::WriteManifest(d.string(), *m).ok());
       }, ""},
      {"other model", "model.hidden: 32 there, 64 in this run's config", [](const fs::path&) {}, "--set model.hidden=64"},
      {"damaged manifest", "manifest", [](const fs::path& d) { FlipByte(d / "manifest.pb", 40); }, ""},
  };
  for (const Case& c : cases) {
    const fs::path copy = dir_ / "copies" / c.name;
    fs::create_directories(copy.parent_path());
    fs::copy(step8, copy, fs::copy_options::recursive);
    c.damage(copy);
    const auto before = Snapshot("run");
    CommandResult r = Train("run", base + "--set train.steps=12 --resume '" + copy.string() + "' " + c.extra, 2);
    EXPECT_NE(r.exit_code, 0) << c.name;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.name << ":\n" << r.output;
    EXPECT_EQ(Snapshot("run"), before) << c.name << ": a refused resume changed files";
  }
  // An uncommitted directory is never read, even when complete.
  fs::copy(step8, dir_ / "run/ckpt/step_00000012.tmp", fs::copy_options::recursive);
  CommandResult tmp = Train("run", base + "--resume " + (dir_ / "run/ckpt/step_00000012.tmp").string(), 2);
  EXPECT_NE(tmp.exit_code, 0);
  EXPECT_NE(tmp.output.find("is an uncommitted checkpoint"), std::string::npos) << tmp.output;
}

TEST_F(Resume, ASignalOnOneRankStopsEveryRankWithACheckpoint) {
  // A constant learning rate: the numbers do not depend on train.steps, so the run can be
  // "endless" until signalled, and compared with a straight run of the length it reached.
  const std::string base = "--set train.threads=1 --set train.eval_every=5 --set parallel.stages=2 ";
  for (const std::string sig : {"TERM", "USR1"}) {
    const std::string run = "run_" + sig;
    Background job = StartInBackground(TrainCommandLine(run, base + "--set train.steps=1000000", 2, true),
                                       dir_ / (run + ".log"));
    // After a few steps: SIGTERM to rank 1 alone, or SIGUSR1 to mpirun (which forwards it).
    pid_t target = -1;
    for (int i = 0; i < 600 && target < 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (Metrics(run).size() < 4) continue;
      const std::string out = job.Output(), needle = "stage 1 of 2, replica 0 of 1 (pid ";
      const size_t at = out.find(needle);
      if (sig == "USR1") target = job.pid;
      else if (at != std::string::npos) target = std::stoi(out.substr(at + needle.size()));
    }
    ASSERT_GT(target, 0) << job.Output();
    kill(target, sig == "TERM" ? SIGTERM : SIGUSR1);
    ASSERT_EQ(job.Wait(120), 0) << job.Output();
    const std::string out = job.Output();
    const std::string expect = (sig == "TERM" ? "on SIGTERM on rank 1" : "on SIGUSR1 on rank 0");
    ASSERT_NE(out.find(expect + "; checkpoint written"), std::string::npos) << out;
    const std::string latest = Latest(run);
    ASSERT_FALSE(latest.empty());
    const long stopped = std::stol(latest.substr(5));
    EXPECT_NE(out.find("stopped after step " + std::to_string(stopped)), std::string::npos) << out;
    const std::string length = "--set train.steps=" + std::to_string(stopped + 7) + " ";
    CommandResult rest = Train(run, base + length + "--resume auto", 2);
    ASSERT_EQ(rest.exit_code, 0) << rest.output;
    ASSERT_EQ(Train(run + "_straight", base + length, 2).exit_code, 0);
    ExpectSameLosses(run + "_straight", run);
  }
}

TEST_F(Resume, TheWallTimeBudgetStopsWithACheckpoint) {
  CommandResult r = Train("run", "--set train.steps=1000000 --set checkpoint.wall_time_minutes=0.12");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("on the wall-time budget of 0.1 min"), std::string::npos) << r.output;
  EXPECT_FALSE(Latest("run").empty());
  EXPECT_EQ(Shell(std::string(BATON_BINARY) + " inspect " + (dir_ / "run").string()).exit_code, 0);
}

TEST_F(Resume, AFullDiskKeepsTheLastGoodCheckpoint) {
  MakeRunFiles(8192);  // a 1 MB token table: shards larger than the file-size limit below
  const std::string base = "--set train.steps=8 --set checkpoint.every=2 ";
  ASSERT_EQ(Train("run", base + "--set train.steps=4").exit_code, 0);
  ASSERT_EQ(Latest("run"), "step_00000004");
  // Every write past 512 kB now fails with EFBIG, as on a full disk. (Open MPI's own
  // shared-memory files would hit the limit too: keep them out of its way.)
  Background job = StartInBackground("env PMIX_MCA_gds=hash OMPI_MCA_btl=self " + TrainCommandLine("run", base + "--resume auto"),
                                     dir_ / "full.log", 512 * 1024);
  const int code = job.Wait(120);
  const std::string out = job.Output();
  EXPECT_NE(code, 0) << "the final checkpoint could not be written; the run must say so\n" << out;
  EXPECT_NE(out.find("checkpoint of step 6 not written"), std::string::npos) << out;
  EXPECT_NE(out.find("training continues, the last good checkpoint is kept"), std::string::npos) << out;
  EXPECT_NE(out.find("File too large"), std::string::npos) << out;
  EXPECT_NE(out.find("step      8/8"), std::string::npos) << out;
  EXPECT_EQ(Latest("run"), "step_00000004");
  for (const auto& e : fs::directory_iterator(dir_ / "run/ckpt"))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  EXPECT_EQ(Shell(std::string(BATON_BINARY) + " inspect " + (dir_ / "run").string()).exit_code, 0);
}

TEST_F(Resume, AnUnusableCheckpointDirectoryFailsBeforeTraining) {
  std::ofstream(dir_ / "a_file") << "x";
  CommandResult r = Train("run", "--set checkpoint.dir=" + (dir_ / "a_file/ckpt").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("cannot create checkpoint directory " + (dir_ / "a_file/ckpt").string()), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("step      1"), std::string::npos) << r.output;
}

}  // namespace
