// hostile_app's subcommands but the victim: each attacks snapd one way, for a bounded time, and
// returns the process's exit status. attacks.cc: through memif; wire.cc: from the wire.
#ifndef SNAPD_TOOLS_HOSTILE_ATTACKS_H_
#define SNAPD_TOOLS_HOSTILE_ATTACKS_H_

namespace hostile {

int EventfdWrite();
int EventfdRead();
int Idle();
int BadInit();
int SpoofAttack();
int CookieAttack();
int ChainAttack();
int BadDescAttack();
int HugetlbAttack();
int BigRegionsAttack();
int FdTraps();
int MacFlood();
int WireWatch();

}  // namespace hostile

#endif  // SNAPD_TOOLS_HOSTILE_ATTACKS_H_
