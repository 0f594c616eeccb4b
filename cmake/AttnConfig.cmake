# find_package(Attn): the attn runtime (C API in attn/attn_runtime.h) for
# programs that launch kernels compiled by attn-compile.
#   target_link_libraries(my_program PRIVATE Attn::attn_runtime)
include("${CMAKE_CURRENT_LIST_DIR}/AttnTargets.cmake")
set(Attn_FOUND TRUE)
