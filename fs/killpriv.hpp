// FUSE_HANDLE_KILLPRIV_V2 with libfuse 3.14, which does not know it.
//
// WHY. Without it the kernel clears SB_NOSEC on a FUSE mount, so before
// every write(2) it asks the daemon for the file's security.capability
// (file_remove_privs: a GETXATTR through /dev/fuse, two context switches
// and the daemon's time, 3 an entry in a tar x, 11 of a sqlite commit's 43
// requests). With it (INIT flag bit 28, protocol 7.33) the kernel sets
// SB_NOSEC: it asks once, marks the inode S_NOSEC when the file has no
// setuid, setgid or capability, and asks again only after it refreshed the
// inode's attributes (fuse_change_attributes_common clears S_NOSEC). The
// filesystem then drops those privileges itself, told by the kernel per
// request when the caller lacks CAP_FSETID (fs/fuse/file.c, dir.c):
// - WRITE: FUSE_WRITE_KILL_SUIDGID in fuse_write_in.write_flags (the
//   default mode's writes, and -o writeback's when the kernel's cached mode
//   has the bits: it writes through then; an O_DIRECT write carries it
//   with or without the flag negotiated, and is honoured either way: the
//   rule is the same);
// - SETATTR: FATTR_KILL_SUIDGID in fuse_setattr_in.valid, with a size
//   (truncate, O_TRUNC) and, whoever the caller, with a chown of a
//   non-directory;
// - FUSE_OPEN_KILL_SUIDGID in OPEN's and CREATE's open_flags: never acted
//   on here. OPEN carries it only with ATOMIC_O_TRUNC, which we do not ask
//   for (the kernel truncates with a SETATTR, above), and our CREATE only
//   ever makes a new file (an existing name answers ESTALE and the kernel
//   opens it as an existing file), which has nothing to drop, as on a
//   local filesystem (no truncate of a file O_CREAT made).
// The rule is the kernel's: setuid goes, setgid only of a group-executable
// file; security.capability goes on every write, truncate and chown
// (Store::drop_capability; no round trip while the filesystem has no
// security.* attribute). Where the data and the mode change land: write.lua
// drops the bits in the script that writes the data (a gathered write: at
// the flush, in the same script), setattr.lua after a truncate's data
// change and with a chown (a gathered chown after the data: at the flush,
// in the write's script; prelude.lua's attr_fields either way), before the
// reply either way.
//
// HOW, with libfuse 3.14. fuse_session_custom_io (installed right after
// fuse_session_mount, on the same /dev/fuse descriptor; no splice then,
// which we never asked for) lets us see every request as read and every
// reply as written: the INIT request says whether the kernel offers the
// flag, the INIT reply gets bit 28 only then, and each WRITE and SETATTR
// leaves its kill flag in a thread_local for its handler (libfuse's loops,
// single- and multi-threaded, run a request's handler on the thread that
// read it, before that thread reads the next). A kernel that does not
// offer the flag keeps today's behaviour: it asks and drops the bits
// itself.
//
// The kernel keeps the mode it cached after such a write (its reply
// carries no attributes): when a write dropped a bit, the inode's
// attributes are invalidated in the kernel, so that exec and permission
// checks do not use the old mode.
#pragma once

#include <fuse_lowlevel.h>

namespace redisfs::killpriv {

// Installs the interception on `se` (mounted). False if libfuse refused it
// (logged): the mount then runs without the flag.
bool install(fuse_session* se);

// Whether the kernel took FUSE_HANDLE_KILLPRIV_V2 (known after INIT).
bool negotiated();

// The kill flag of the request this thread is handling: its WRITE's
// FUSE_WRITE_KILL_SUIDGID or its SETATTR's FATTR_KILL_SUIDGID.
bool requested();

// Tells the kernel that `ino`'s attributes changed under it (a write
// dropped setuid or setgid).
void mode_dropped(fuse_ino_t ino);

}  // namespace redisfs::killpriv
