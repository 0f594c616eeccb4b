"""Finding the kernel for a spec (no torch).

A spec's kernel is `<name>.json` (a manifest written by attn-compile, with its
PTX and cubin beside it), where `<name>` is `spec["name"]` (attn/spec.py:
a hash of the spec). `get_kernel(spec, chip)` looks, in this order:

1. in memory (every kernel loaded by this process, by name and chip);
2. in the ahead-of-time directories: those given to `add_kernel_dir()` (the
   latest first), then those in $ATTN_KERNEL_PATH (os.pathsep-separated);
3. where a compiler is available ($ATTN_COMPILE, else build/bin/attn-compile
   of this checkout, else `attn-compile` on PATH; ATTN_COMPILE=0 disables
   compiling): in the disk cache, $ATTN_CACHE_DIR, else $XDG_CACHE_HOME/attn/torch,
   else ~/.cache/attn/torch, in a subdirectory per chip and compiler build;
   a miss compiles the spec there (in a private directory, then renamed into
   place, the manifest last, so concurrent processes never load half an entry).

A manifest is used only if it was compiled from exactly this spec, for a chip
that runs on the device, and its PTX matches its recorded SHA-256; otherwise
the next place is tried, and the error, if nothing is found, says why each
candidate was passed over and how to prebuild the kernel.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading

from .runtime import AttnError, Kernel
from .spec import canonical_json

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_COMPILER = os.path.join(HERE, "..", "..", "build", "bin", "attn-compile")


class KernelNotFoundError(AttnError, LookupError):
    """No kernel for the spec in any kernel directory, and no compiler to build one."""

    def __init__(self, message):
        super().__init__(4, message)


_added_dirs = []
_loaded = {}   # (name, chip) -> Kernel
_locks = {}
_lock = threading.Lock()
stats = {"memory_hits": 0, "dir_hits": 0, "cache_hits": 0, "compiles": 0}


def add_kernel_dir(path):
    """Searches `path` (a directory of attn-compile output) before the others."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise NotADirectoryError(f"attn.add_kernel_dir: {path} is not a directory")
    with _lock:
        if path in _added_dirs:
            _added_dirs.remove(path)
        _added_dirs.insert(0, path)


def kernel_dirs():
    """The ahead-of-time directories, in search order."""
    env = [os.path.abspath(p) for p in os.environ.get("ATTN_KERNEL_PATH", "").split(os.pathsep) if p]
    return list(_added_dirs) + [p for p in env if p not in _added_dirs]


def clear_memory_cache():
    with _lock:
        _loaded.clear()


def chip_for_capability(capability):
    """The attn target for a CUDA compute capability ($ATTN_CHIP overrides):
    9.0 -> sm_90a (cubin), other 8.0 and newer -> sm_80 (PTX, compiled by the driver)."""
    override = os.environ.get("ATTN_CHIP")
    if override:
        return override
    if capability is None:
        return "sm_90a"
    major, minor = capability
    if (major, minor) == (9, 0):
        return "sm_90a"
    if major >= 8:
        return "sm_80"
    raise AttnError(1, f"compute capability {major}.{minor} is not supported: attn kernels "
                       "need sm_80 or newer")


def _runs_on(manifest, capability):
    """None if the manifest's code runs on a device of this capability, else why not."""
    if capability is None:
        return None
    chip, cubin = manifest.get("chip"), manifest.get("cubin")
    cap = tuple(capability)
    if chip == "sm_90a":
        ok = cap == (9, 0)
    elif chip == "sm_80":
        ok = cap >= (8, 0) and (not cubin or cap[0] == 8)
    else:
        ok = False
    if ok:
        return None
    return (f"compiled for {chip}{' (cubin)' if cubin else ''}, which does not run on "
            f"compute capability {cap[0]}.{cap[1]}")


def _manifest_problem(path, spec, capability):
    """None if `path` is a usable kernel for `spec`, else the reason."""
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        return f"unreadable manifest ({e})"
    if not isinstance(manifest, dict) or manifest.get("format") != "attn.kernel/1":
        return "not an attn kernel manifest"
    if manifest.get("spec") != json.loads(canonical_json(spec)):
        return "compiled from a different spec (a name collision or a stale file)"
    why = _runs_on(manifest, capability)
    if why:
        return why
    directory = os.path.dirname(path)
    try:
        with open(os.path.join(directory, manifest["ptx"]), "rb") as f:
            ptx = f.read()
    except (OSError, KeyError, TypeError) as e:
        return f"PTX unreadable ({e})"
    if hashlib.sha256(ptx).hexdigest() != manifest.get("sha256"):
        return "PTX does not match the manifest's SHA-256 (truncated or corrupt)"
    if manifest.get("cubin") and not os.path.isfile(os.path.join(directory, manifest["cubin"])):
        return f"cubin {manifest['cubin']} missing"
    return None


def find_compiler():
    """Path of attn-compile, or None (see the module docstring)."""
    env = os.environ.get("ATTN_COMPILE")
    if env is not None:
        if env.lower() in ("", "0", "off", "no", "none"):
            return None
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    if os.path.isfile(REPO_COMPILER) and os.access(REPO_COMPILER, os.X_OK):
        return os.path.abspath(REPO_COMPILER)
    return shutil.which("attn-compile")


def _compiler_id(compiler):
    st = os.stat(compiler)
    key = f"{os.path.realpath(compiler)}:{st.st_size}:{st.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def cache_root():
    if os.environ.get("ATTN_CACHE_DIR"):
        return os.environ["ATTN_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "attn", "torch")


def cache_dir(chip, compiler):
    """The disk cache for one chip and one build of the compiler."""
    return os.path.join(cache_root(), f"{chip}-{_compiler_id(compiler)}")


def compile_spec(spec, out_dir, chip, compiler, extra_args=()):
    """Compiles `spec` into `out_dir` with attn-compile (PTX; a cubin for sm_90a).
    Writes into a private directory first and renames the files into place, the
    manifest last (after its dispatch variants'). Returns the manifest's path."""
    name = spec["name"]
    try:
        os.makedirs(out_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=out_dir)
    except OSError as e:
        raise AttnError(4, f"cannot write the kernel cache directory {out_dir}: {e}") from e
    try:
        spec_path = os.path.join(tmp, "spec", name + ".json")
        os.makedirs(os.path.dirname(spec_path))
        with open(spec_path, "w") as f:
            json.dump(spec, f, indent=1)
        build = os.path.join(tmp, "out")
        cmd = [compiler, spec_path, "-o", build, "--chip", chip, "-q", *extra_args]
        if chip == "sm_90a":
            cmd.append("--cubin")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise AttnError(1, f"attn-compile failed for kernel {name} ({chip}):\n"
                               f"{(r.stderr or r.stdout).strip()}\nspec: {canonical_json(spec)}")
        def install(manifest_file):
            with open(os.path.join(build, manifest_file)) as f:
                manifest = json.load(f)
            # Per-sequence-length kernels (the manifest's "dispatch") first:
            # a manifest in place implies its variants are.
            for variant in manifest.get("dispatch", []):
                install(variant["manifest"])
            for key in ("ptx", "cubin"):
                if manifest.get(key):
                    os.replace(os.path.join(build, manifest[key]),
                               os.path.join(out_dir, manifest[key]))
            os.replace(os.path.join(build, manifest_file), os.path.join(out_dir, manifest_file))

        install(name + ".json")
    except OSError as e:
        raise AttnError(4, f"cannot write kernel {name} into {out_dir}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(out_dir, name + ".json")


def _load(path):
    kernel = Kernel(path)
    kernel.manifest_path = path
    kernel.cached_roles = kernel.roles
    kernel.cached_any_strides = kernel.any_strides
    return kernel


def _resolve(spec, chip, capability):
    name = spec["name"]
    passed_over = []
    for d in kernel_dirs():
        path = os.path.join(d, name + ".json")
        if os.path.exists(path):
            why = _manifest_problem(path, spec, capability)
            if why is None:
                stats["dir_hits"] += 1
                return _load(path)
            passed_over.append(f"{path}: {why}")
    compiler = find_compiler()
    if compiler:
        directory = cache_dir(chip, compiler)
        path = os.path.join(directory, name + ".json")
        if os.path.exists(path):
            why = _manifest_problem(path, spec, capability)
            if why is None:
                stats["cache_hits"] += 1
                return _load(path)
        path = compile_spec(spec, directory, chip, compiler)
        stats["compiles"] += 1
        why = _manifest_problem(path, spec, capability)
        if why:
            raise AttnError(1, f"kernel {name} compiled into {path} is unusable: {why}")
        return _load(path)
    dirs = kernel_dirs()
    lines = [f"no kernel {name} ({spec['kind']}, {spec['dtype']}, layout {spec['layout']}) "
             f"for {chip}.",
             "Searched: " + (", ".join(dirs) if dirs else
                             "no kernel directories (set ATTN_KERNEL_PATH or call "
                             "attn.add_kernel_dir)") + "."]
    lines += ["Passed over: " + p for p in passed_over]
    lines += ["No compiler to build it here (attn-compile: set ATTN_COMPILE or build the "
              "project). Prebuild it where the compiler is:",
              f"    python3 python/attn/prebuild.py --spec-json '{canonical_json(spec)}' "
              f"-o DIR --chip {chip}",
              "and add DIR to ATTN_KERNEL_PATH."]
    raise KernelNotFoundError("\n".join(lines))


def get_kernel(spec, chip, capability=None):
    """The loaded kernel for `spec` on `chip` (see the module docstring)."""
    key = (spec["name"], chip)
    kernel = _loaded.get(key)
    if kernel is not None:
        stats["memory_hits"] += 1
        return kernel
    with _lock:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        kernel = _loaded.get(key)
        if kernel is None:
            kernel = _resolve(spec, chip, capability)
            _loaded[key] = kernel
        return kernel
