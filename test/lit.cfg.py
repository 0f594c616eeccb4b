# lit configuration of the attn test suite. Tools come from the build tree and
# /usr/lib/llvm-22/bin explicitly: never from PATH.
import os
import sys

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "ATTN"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.attn_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "unit", "exec", "Inputs", "gpu"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%shlibext", config.llvm_shlib_ext))
config.substitutions.append(("%examples", os.path.join(config.attn_src_root, "examples")))
config.substitutions.append(("%cuda_home", config.cuda_home))
config.substitutions.append(("%cc", config.c_compiler))
config.substitutions.append(("%attn_include", os.path.join(config.attn_src_root, "include")))

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

tools = [
    ToolSubst("attn-opt", unresolved="fatal"),
    ToolSubst("attn-exec", unresolved="fatal"),
    ToolSubst("attn-compile", unresolved="fatal"),
]
llvm_config.add_tool_substitutions(tools, [config.attn_tools_dir, config.llvm_tools_dir])

# ptxas from the CUDA toolkit (CUDA_HOME at configure time): the gate tests
# need it; attn-compile finds it through CUDA_HOME, which lit must forward.
if os.path.exists(os.path.join(config.cuda_home, "bin", "ptxas")):
    config.available_features.add("ptxas")
config.environment["CUDA_HOME"] = config.cuda_home
