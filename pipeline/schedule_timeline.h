// A text picture of a simulated pipeline schedule, for `baton schedule` and
// for people reading logs.
#pragma once

#include <string>

#include "pipeline/schedule.h"
#include "pipeline/schedule_verifier.h"

namespace baton {

// One row per rank, time flowing right, one cell per time unit (the shortest
// compute action; a longer action spans several cells: "B3---"). Cells hold
// F/B/W plus the micro-batch, with a chunk letter a, b, c, ... when
// virtual_stages > 1 ("F3a", "B3b"); idle cells show '.'. Rows longer than
// `max_width` columns wrap into blocks, each with a time ruler. A legend
// follows. `report` must come from VerifySchedule(s, ...).
std::string RenderTimeline(const PipelineSchedule& s, const ScheduleReport& report, int max_width = 200);

}  // namespace baton
