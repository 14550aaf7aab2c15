// libFuzzer target for the pony journal's recovery (journal.h): a restarted snapd reads memory a
// process that died, in any state, wrote. Any bytes over a journal's records and rings (and, when
// the first byte is odd, its header too): Recover and Read never read outside the journal, and
// what Read accepts holds together.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engines/pony/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snapd::pony;
  if (size < 1) return 0;
  const Journal::Shape shape = {2, 512, 7};
  const size_t bytes = Journal::BytesFor(shape);
  std::vector<uint64_t> words(bytes / 8 + 1);
  uint8_t* memory = reinterpret_cast<uint8_t*>(words.data());
  Journal::Format(memory, shape);
  const size_t from = (data[0] & 1) ? 0 : 32;  // 32: past the header
  const size_t n = std::min(size - 1, bytes - from);
  memcpy(memory + from, data + 1, n);
  auto j = Journal::Recover(memory, bytes, shape);
  if (!j.ok()) return 0;
  for (uint32_t slot = 0; slot < shape.slots; ++slot) {
    const JournalConn rec = j->Get(slot);
    std::vector<JournalMessage> messages;
    std::string assembled, why;
    if (!j->Read(slot, rec, 400, &messages, &assembled, &why)) {
      if (why.empty()) abort();
      continue;
    }
    size_t total = 0;
    for (const JournalMessage& m : messages) {
      if (m.bytes.size() > 400) abort();
      total += m.bytes.size() + 8;
    }
    if (total > shape.ring_bytes || assembled.size() != rec.asm_done) abort();
  }
  return 0;
}
