// `baton schedule`, run in-process.
#include "launch/schedule_command.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace baton {
namespace {

struct CommandRun {
  int code;
  std::string out, err;
};

CommandRun Schedule(std::vector<std::string> args) {
  args.insert(args.begin(), "schedule");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  const int code = RunScheduleCommand(static_cast<int>(args.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "output:\n" << (haystack)

TEST(ScheduleCommandTest, PrintsTimelineBubbleAndMemory) {
  const CommandRun r = Schedule({"--stages", "4", "--microbatches", "8", "--kind", "1f1b"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (int rank = 0; rank < 4; ++rank) EXPECT_CONTAINS(r.out, "rank " + std::to_string(rank) + " | ");
  EXPECT_CONTAINS(r.out, "bubble: 27.27%");
  EXPECT_CONTAINS(r.out, "(p-1)/(m+p-1) = 3/11 = 27.27%");
  EXPECT_CONTAINS(r.out, "rank 0: 4, rank 1: 3, rank 2: 2, rank 3: 1");
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(ScheduleCommandTest, EveryKind) {
  struct Case {
    std::vector<std::string> args;
    std::string bubble, textbook;
  };
  for (const Case& c : std::vector<Case>{
           {{"--kind", "gpipe"}, "bubble: 27.27%", "3/11"},
           {{"--kind=ZERO_BUBBLE_H1"}, "bubble: 11.11%", "3/27"},
           {{"--kind", "interleaved", "--virtual", "2"}, "bubble: 15.79%", "(p-1)/(v*m+p-1) = 3/19"},
       }) {
    std::vector<std::string> args = {"--stages", "4", "--microbatches=8"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const CommandRun r = Schedule(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "rank 3 | ");
    EXPECT_CONTAINS(r.out, c.bubble);
    EXPECT_CONTAINS(r.out, c.textbook);
  }
}

TEST(ScheduleCommandTest, BadArgumentsExit2) {
  for (const auto& [args, needle] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--stages", "4"}, "--stages and --microbatches are required"},
           {{"--stages", "four", "--microbatches", "8"}, "--stages must be an integer, got 'four'"},
           {{"--stages", "0", "--microbatches", "8"}, "--stages must be an integer >= 1"},
           {{"--stages", "4", "--microbatches", "8", "--kind", "2f2b"}, "unknown pipeline schedule '2f2b'"},
           {{"--stages", "4", "--microbatches", "6", "--kind", "interleaved", "--virtual", "2"},
            "must be a multiple of stages (4)"},
           {{"--stages", "4", "--microbatches", "8", "--virtual", "2"}, "need the interleaved schedule"},
           {{"--stages", "4", "--microbatches", "8", "--costs", "1,x,1"}, "--costs must be"},
           {{"--stages", "4", "--microbatches", "8", "--bogus"}, "unknown argument '--bogus'"},
           {{"--stages"}, "--stages needs a value"},
       }) {
    const CommandRun r = Schedule(args);
    EXPECT_EQ(r.code, 2);
    EXPECT_CONTAINS(r.err, needle);
  }
}

TEST(ScheduleCommandTest, MemoryBudgetAndHelp) {
  const CommandRun over = Schedule({"--stages", "2", "--microbatches", "4", "--kind", "gpipe", "--memory-budget", "3"});
  EXPECT_EQ(over.code, 1);
  EXPECT_CONTAINS(over.err, "over the memory budget of 3");
  const CommandRun fits = Schedule({"--stages", "2", "--microbatches", "4", "--kind", "1f1b", "--memory-budget", "2"});
  EXPECT_EQ(fits.code, 0) << fits.err;
  const CommandRun help = Schedule({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_CONTAINS(help.out, "usage: baton schedule");
}

}  // namespace
}  // namespace baton
