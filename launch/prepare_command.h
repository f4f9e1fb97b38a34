// `baton prepare`: tokenizes text files into llm.c token shards.
#pragma once

namespace baton {
// argv[0] is "prepare". Returns the process exit code.
int RunPrepareCommand(int argc, char** argv);
}  // namespace baton
