#include "pipeline/schedule_timeline.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace baton {
namespace {

std::string Label(const PipelineSchedule& s, const Action& a) {
  char letter = 'F';
  switch (a.kind) {
    case ActionKind::kForward: letter = 'F'; break;
    case ActionKind::kBackward:
    case ActionKind::kBackwardInput: letter = 'B'; break;
    case ActionKind::kBackwardWeight: letter = 'W'; break;
    default: letter = '?'; break;
  }
  std::string label = letter + std::to_string(a.microbatch);
  if (s.virtual_stages > 1) label += static_cast<char>(a.chunk < 26 ? 'a' + a.chunk : '+');
  return label;
}

bool NearInteger(double x) { return std::fabs(x - std::round(x)) < 1e-6 * std::max(1.0, std::fabs(x)); }

// The time one cell stands for: the shortest compute action, or a fraction of
// it when that makes every start and end fall on a cell boundary.
double CellUnit(const ScheduleReport& report) {
  double shortest = 0;
  for (const auto& rank : report.spans) {
    for (const ComputeSpan& sp : rank) {
      const double d = sp.end - sp.start;
      if (d > 0 && (shortest == 0 || d < shortest)) shortest = d;
    }
  }
  if (shortest == 0) return 1;
  for (int k = 1; k <= 8; ++k) {
    const double u = shortest / k;
    bool fits = NearInteger(report.makespan / u);
    for (const auto& rank : report.spans) {
      for (const ComputeSpan& sp : rank) fits = fits && NearInteger(sp.start / u) && NearInteger(sp.end / u);
    }
    if (fits) return u;
  }
  return shortest;  // costs without a common unit: positions are rounded
}

std::string FormatNumber(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

}  // namespace

std::string RenderTimeline(const PipelineSchedule& s, const ScheduleReport& report, int max_width) {
  const double unit = CellUnit(report);
  const int cells = static_cast<int>(std::lround(report.makespan / unit));
  int width = 3;  // characters per cell, the longest label plus a space
  for (int r = 0; r < s.stages && r < static_cast<int>(report.spans.size()); ++r) {
    for (const ComputeSpan& sp : report.spans[r]) {
      width = std::max(width, static_cast<int>(Label(s, s.ranks[r][sp.action]).size()) + 1);
    }
  }

  // Each rank's row as one long string of cells * width characters.
  std::vector<std::string> rows;
  for (int r = 0; r < s.stages; ++r) {
    std::string row;
    for (int c = 0; c < cells; ++c) row += "." + std::string(width - 1, ' ');
    if (r < static_cast<int>(report.spans.size())) {
      for (const ComputeSpan& sp : report.spans[r]) {
        const int begin = static_cast<int>(std::lround(sp.start / unit));
        const int end = std::max(begin + 1, static_cast<int>(std::lround(sp.end / unit)));
        if (sp.end <= sp.start || begin >= cells) continue;  // zero-cost actions are not drawn
        const std::string label = Label(s, s.ranks[r][sp.action]);
        const int chars = (std::min(end, cells) - begin) * width;
        // A one-cell action is its label; a longer one is drawn to its end: "B3----- ".
        const char fill = std::min(end, cells) - begin > 1 ? '-' : ' ';
        std::string cell = label + std::string(std::max(0, chars - 1 - static_cast<int>(label.size())), fill) + " ";
        row.replace(static_cast<size_t>(begin) * width, cell.size(), cell);
      }
    }
    rows.push_back(row);
  }

  std::ostringstream os;
  const std::string ruler_head = "time   ";
  const std::string prefix_example = "rank " + std::to_string(s.stages - 1) + " ";
  const int prefix = static_cast<int>(std::max(ruler_head.size(), prefix_example.size())) + 2;  // + "| "
  const int per_block = std::max(5, (max_width - prefix) / width);
  for (int first = 0; first < std::max(cells, 1); first += per_block) {
    const int last = std::min(cells, first + per_block);
    // Ruler: the time at every 5th cell.
    std::string ruler(static_cast<size_t>(last - first) * width, ' ');
    for (int c = first; c < last; ++c) {
      if (c % 5 != 0) continue;
      const std::string t = FormatNumber(c * unit);
      const size_t at = static_cast<size_t>(c - first) * width;
      if (at + t.size() <= ruler.size()) ruler.replace(at, t.size(), t);
    }
    std::string head = ruler_head;
    head.resize(prefix - 2, ' ');
    while (!ruler.empty() && ruler.back() == ' ') ruler.pop_back();
    os << head << "| " << ruler << "\n";
    for (int r = 0; r < s.stages; ++r) {
      std::string name = "rank " + std::to_string(r);
      name.resize(prefix - 2, ' ');
      std::string part = rows[r].substr(static_cast<size_t>(first) * width, static_cast<size_t>(last - first) * width);
      while (!part.empty() && part.back() == ' ') part.pop_back();
      os << name << "| " << part << "\n";
    }
    if (last < cells) os << "\n";
  }

  // Legend.
  os << "legend: F3 = forward of micro-batch 3; ";
  if (s.kind == ScheduleKind::kZeroBubbleH1) {
    os << "B3 = its input-gradient backward; W3 = its weight-gradient backward\n";
  } else {
    os << "B3 = its backward (input and weight gradients)\n";
  }
  if (s.virtual_stages > 1) {
    std::string letters = "a", numbers = "0";
    for (int c = 1; c < s.virtual_stages; ++c) {
      letters += "/" + std::string(1, c < 26 ? static_cast<char>('a' + c) : '+');
      numbers += "/" + std::to_string(c);
    }
    os << "        suffix " << letters << " = model chunk " << numbers << " of the rank (global chunk = chunk x "
       << s.stages << " + rank)\n";
  }
  os << "        '-' = the action continues; '.' = idle; one cell = " << FormatNumber(unit) << " time unit"
     << (unit == 1 ? "" : "s") << "\n";
  return os.str();
}

}  // namespace baton
