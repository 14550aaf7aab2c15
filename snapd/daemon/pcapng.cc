#include "snapd/daemon/pcapng.h"

#include <algorithm>
#include <cstring>

namespace snapd::pcapng {
namespace {

constexpr uint32_t kSectionHeader = 0x0A0D0D0A;
constexpr uint32_t kInterfaceDescription = 1;
constexpr uint32_t kInterfaceStatistics = 5;
constexpr uint32_t kEnhancedPacket = 6;
constexpr uint16_t kOptEnd = 0, kOptComment = 1;

// One block: type, length, body, options, length again. The lengths are filled in by Finish.
class Block {
 public:
  Block(uint32_t type, std::string* out) : out_(out), start_(out->size()) {
    U32(type);
    U32(0);
  }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  // A timestamp: high 32 bits, then low (nanoseconds: every interface says if_tsresol 9).
  void Time(int64_t ns) {
    U32(static_cast<uint32_t>(static_cast<uint64_t>(ns) >> 32));
    U32(static_cast<uint32_t>(ns));
  }
  void Raw(const void* p, size_t n) { out_->append(static_cast<const char*>(p), n); }
  void Pad() { out_->append((4 - (out_->size() - start_) % 4) % 4, '\0'); }
  void Option(uint16_t code, const void* value, uint16_t len) {
    U16(code);
    U16(len);
    Raw(value, len);
    Pad();
  }
  void Option(uint16_t code, const std::string& s) {
    if (!s.empty())
      Option(code, s.data(), static_cast<uint16_t>(std::min<size_t>(s.size(), 0xfff0)));
  }
  void Option64(uint16_t code, uint64_t v) { Option(code, &v, 8); }
  void OptionTime(uint16_t code, int64_t ns) {
    const uint32_t t[2] = {static_cast<uint32_t>(static_cast<uint64_t>(ns) >> 32),
                           static_cast<uint32_t>(ns)};
    Option(code, t, 8);
  }
  void Finish(bool options) {
    if (options) Option(kOptEnd, nullptr, 0);
    const uint32_t len = static_cast<uint32_t>(out_->size() - start_ + 4);
    U32(len);
    memcpy(&(*out_)[start_ + 4], &len, 4);
  }

 private:
  std::string* out_;
  size_t start_;
};

}  // namespace

void SectionHeader(const std::string& application, std::string* out) {
  Block b(kSectionHeader, out);
  b.U32(0x1A2B3C4D);  // byte order: the reader's check
  b.U16(1);
  b.U16(0);
  b.U64(~uint64_t{0});       // section length: not given
  b.Option(4, application);  // shb_userappl
  b.Finish(true);
}

void Interface(const std::string& name, const std::string& description, uint32_t snaplen,
               std::string* out) {
  Block b(kInterfaceDescription, out);
  b.U16(1);  // LINKTYPE_ETHERNET
  b.U16(0);
  b.U32(snaplen);
  b.Option(2, name);         // if_name
  b.Option(3, description);  // if_description
  const uint8_t nanoseconds = 9;
  b.Option(9, &nanoseconds, 1);  // if_tsresol
  b.Finish(true);
}

void Packet(uint32_t interface, int64_t unix_ns, const uint8_t* data, uint32_t captured,
            uint32_t original, Direction direction, uint64_t dropped, std::string* out) {
  Block b(kEnhancedPacket, out);
  b.U32(interface);
  b.Time(unix_ns);
  b.U32(captured);
  b.U32(original);
  b.Raw(data, captured);
  b.Pad();
  const uint32_t flags = static_cast<uint32_t>(direction);
  b.Option(2, &flags, 4);                   // epb_flags: the direction in bits 0-1
  if (dropped > 0) b.Option64(4, dropped);  // epb_dropcount
  b.Finish(true);
}

void Statistics(uint32_t interface, int64_t start_ns, int64_t end_ns, uint64_t seen,
                uint64_t accepted, uint64_t dropped, uint64_t delivered, const std::string& comment,
                std::string* out) {
  Block b(kInterfaceStatistics, out);
  b.U32(interface);
  b.Time(end_ns);
  b.Option(kOptComment, comment);
  b.OptionTime(2, start_ns);  // isb_starttime
  b.OptionTime(3, end_ns);    // isb_endtime
  b.Option64(4, seen);        // isb_ifrecv
  b.Option64(6, accepted);    // isb_filteraccept
  b.Option64(7, dropped);     // isb_osdrop
  b.Option64(8, delivered);   // isb_usrdeliv
  b.Finish(true);
}

}  // namespace snapd::pcapng
