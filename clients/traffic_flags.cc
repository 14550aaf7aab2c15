#include "clients/traffic_flags.h"

#include "absl/flags/flag.h"
#include "absl/time/time.h"

ABSL_FLAG(uint64_t, frames, 10000, "Frames to send.");
ABSL_FLAG(uint32_t, size, 64, "Frame size in bytes (at least the headers and 16 bytes).");
ABSL_FLAG(uint32_t, window, 1, "Frames in flight at most (1: ping-pong, with round-trip times).");
ABSL_FLAG(double, rate, 0,
          "Send at most this many frames per second (0: as fast as the window allows).");
ABSL_FLAG(std::string, stop_file, "",
          "Stop sending once this file exists, then wait for the frames in flight (a run of no "
          "set length, ended by its caller).");
ABSL_FLAG(bool, poll, false, "Spin while waiting instead of sleeping on the ring's interrupt.");
ABSL_FLAG(int, lost_after_ms, 0,
          "Give up on the frames in flight when none came back for this long, count them lost, "
          "and go on (0: a lost frame holds its window slot to the end).");
ABSL_FLAG(
    int, gaps_over_ms, 0,
    "Print every stretch longer than this without a frame back (gap: ms, from, to, given up).");
ABSL_FLAG(int, timeout_s, 10, "Give up after this many seconds without progress.");
ABSL_FLAG(double, duration_s, 0,
          "Stop sending after this many seconds (then wait for the frames in flight); 0: send "
          "--frames.");

namespace snap {

LoadOptions LoadOptionsFromFlags() {
  LoadOptions load;
  load.frames = absl::GetFlag(FLAGS_frames);
  load.frame_size = absl::GetFlag(FLAGS_size);
  load.window = absl::GetFlag(FLAGS_window);
  load.rate = absl::GetFlag(FLAGS_rate);
  load.stop_file = absl::GetFlag(FLAGS_stop_file);
  load.poll = absl::GetFlag(FLAGS_poll);
  load.idle_timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s));
  load.send_for = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  load.lost_after = absl::Milliseconds(absl::GetFlag(FLAGS_lost_after_ms));
  load.gaps_over = absl::Milliseconds(absl::GetFlag(FLAGS_gaps_over_ms));
  return load;
}

}  // namespace snap
