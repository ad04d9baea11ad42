// The FUSE low-level ops of redisfs, one group per file (op_*.cpp), listed
// in op_list.hpp and wired into the table by make_ops() (ops_table.cpp).
// Each op maps the kernel's request onto one Store call and replies exactly
// once (reply.hpp).
#pragma once

#include <fuse_lowlevel.h>

#include <type_traits>

#include "op_list.hpp"

namespace redisfs {

fuse_lowlevel_ops make_ops();

namespace op {

void init(void* userdata, fuse_conn_info* conn);
void destroy(void* userdata);

// One handler per request of op_list.hpp, each of the type of its
// fuse_lowlevel_ops member (see fuse_lowlevel.h for the arguments).
#define REDISFS_DECLARE_OP(name, Id, Guard) std::remove_pointer_t<decltype(fuse_lowlevel_ops::name)> name;
REDISFS_FUSE_OPS(REDISFS_DECLARE_OP)
#undef REDISFS_DECLARE_OP

}  // namespace op
}  // namespace redisfs
