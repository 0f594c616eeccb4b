#!/usr/bin/env python3
"""Compiles the PyTorch binding's kernels ahead of time (needs attn-compile, not torch).

A configuration is a dict: {"op": "attention" | "linear_attention" |
"gated_linear_attention", "id": label, **keyword arguments of the matching
attn.spec builder} (dtype, head_dim, head_dim_v, layout, causal, window,
block_size, documents, alibi, softcap, score_mod, mask_mod, scale, tensors;
feature_map, normalize, gate, initial_state, final_state). Its spec and kernel
name are exactly those of the binding's call with the same options, so the
binding finds the kernel in OUT (ATTN_KERNEL_PATH=OUT or attn.add_kernel_dir).

    python3 python/attn/prebuild.py --set gpu-tests --set first-call \\
        -o gpu-kernels/torch/sm_90a --chip sm_90a
    python3 python/attn/prebuild.py --configs my_configs.json -o DIR
    python3 python/attn/prebuild.py --spec-json '{"kind": "attention", ...}' -o DIR

Writes OUT/<name>.json (the manifest, which holds the spec), .ptx, .cubin
(sm_90a), and OUT/prebuild.jsonl (one JSON line per kernel: the
configurations it serves, ok or the compiler's error, the ptxas report; not
*.json, so that tools globbing OUT for manifests, such as
test/gpu/run_gpu_checks.py, see manifests only). Exit status 1 if a kernel
failed, unless --allow-failures.
"""
import argparse
import concurrent.futures
import json
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: python3 python/attn/prebuild.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from attn.kernels import compile_spec, find_compiler  # noqa: E402
from attn.spec import AttnArgumentError, kernel_name, spec_for  # noqa: E402

# What test/gpu/test_torch_ops.py runs: shapes are run-time, so one kernel
# serves every (B, H, S) and GQA ratio of a configuration.
GPU_TEST_CONFIGS = [
    {"id": "dense_bf16_d64", "op": "attention", "dtype": "bf16", "head_dim": 64},
    {"id": "causal_bf16_d128", "op": "attention", "dtype": "bf16", "head_dim": 128,
     "causal": True},
    {"id": "causal_f16_d64_bshd", "op": "attention", "dtype": "f16", "head_dim": 64,
     "layout": "bshd", "causal": True},
    {"id": "dense_bf16_d128_bshd", "op": "attention", "dtype": "bf16", "head_dim": 128,
     "layout": "bshd"},
    # Decoding (attn/splitkv.py): a [B, H, S, D] KV cache's keys split into parts.
    {"id": "dense_bf16_d128", "op": "attention", "dtype": "bf16", "head_dim": 128},
    {"id": "window_bf16_d64", "op": "attention", "dtype": "bf16", "head_dim": 64,
     "causal": True, "window": [100, 0]},
    {"id": "window2_f16_d64", "op": "attention", "dtype": "f16", "head_dim": 64,
     "window": [32, 16]},
    {"id": "softcap_bf16_d128", "op": "attention", "dtype": "bf16", "head_dim": 128,
     "causal": True, "softcap": 30.0},
    {"id": "alibi_bf16_d64", "op": "attention", "dtype": "bf16", "head_dim": 64,
     "causal": True, "alibi": "per_head"},
    {"id": "alibi_batch_f16_d64", "op": "attention", "dtype": "f16", "head_dim": 64,
     "alibi": "per_batch_head"},
    {"id": "block_sparse_bf16_d64", "op": "attention", "dtype": "bf16", "head_dim": 64,
     "block_size": [64, 64]},
    {"id": "document_bf16_d64", "op": "attention", "dtype": "bf16", "head_dim": 64,
     "causal": True, "documents": True},
    # attention_varlen's two kernels: equal query and key lengths (documents +
    # causal), and unequal ones with causal (the per-sequence diagonal as a mask
    # over two offset tensors; the exact expression attention_varlen writes).
    {"id": "varlen_bf16_d64_bshd", "op": "attention", "dtype": "bf16", "head_dim": 64,
     "layout": "bshd", "causal": True, "documents": True},
    {"id": "varlen_unequal_bf16_d64_bshd", "op": "attention", "dtype": "bf16", "head_dim": 64,
     "layout": "bshd", "documents": True, "mask_mod": "koff[k] <= qoff[q] + 0",
     "tensors": {"koff": ["i32", 1], "qoff": ["i32", 1]}},
    {"id": "custom_bf16_d64", "op": "attention", "dtype": "bf16", "head_dim": 64,
     "score_mod": "score + bias[h, k]", "mask_mod": "k <= q + Sk - Sq && q - k < 64",
     "tensors": {"bias": ["f32", 2]}},
    {"id": "scale_f32_d32_dv64", "op": "attention", "dtype": "f32", "head_dim": 32,
     "head_dim_v": 64, "causal": True, "scale": 0.3},
    {"id": "dv_f16_d128_dv64", "op": "attention", "dtype": "f16", "head_dim": 128,
     "head_dim_v": 64, "causal": True},
    {"id": "linear_elu_norm_bf16_d64", "op": "linear_attention", "dtype": "bf16",
     "head_dim": 64, "feature_map": "elu_plus_one", "normalize": True},
    {"id": "linear_state_f32_d32", "op": "linear_attention", "dtype": "f32", "head_dim": 32,
     "initial_state": True, "final_state": True},
    {"id": "linear_relu_f16_d64_bshd", "op": "linear_attention", "dtype": "f16",
     "head_dim": 64, "feature_map": "relu", "layout": "bshd"},
    {"id": "gla_scalar_bf16_d64", "op": "gated_linear_attention", "dtype": "bf16",
     "head_dim": 64, "gate": "scalar", "final_state": True},
    {"id": "gla_vector_f16_d64_bshd", "op": "gated_linear_attention", "dtype": "f16",
     "head_dim": 64, "gate": "vector", "layout": "bshd", "initial_state": True},
    {"id": "gla_head_f32_d32", "op": "gated_linear_attention", "dtype": "f32", "head_dim": 32,
     "gate": "head_constant", "final_state": True},
    # Dk = Dv = 128 vector gates: the two-consumer GLA kernel on sm_90a.
    {"id": "gla_vector_bf16_d128", "op": "gated_linear_attention", "dtype": "bf16",
     "head_dim": 128, "gate": "vector", "initial_state": True, "final_state": True},
]

# What bench/first_call_latency.py times (bf16, D = 128, [B, H, S, D]).
FIRST_CALL_CONFIGS = [
    {"id": "fc_dense", "op": "attention", "dtype": "bf16", "head_dim": 128},
    {"id": "fc_causal", "op": "attention", "dtype": "bf16", "head_dim": 128, "causal": True},
    {"id": "fc_window", "op": "attention", "dtype": "bf16", "head_dim": 128, "causal": True,
     "window": [1023, 0]},
    {"id": "fc_alibi", "op": "attention", "dtype": "bf16", "head_dim": 128, "causal": True,
     "alibi": "per_head"},
    {"id": "fc_softcap", "op": "attention", "dtype": "bf16", "head_dim": 128, "causal": True,
     "softcap": 50.0},
    {"id": "fc_document", "op": "attention", "dtype": "bf16", "head_dim": 128, "causal": True,
     "documents": True},
]

CONFIG_SETS = {"gpu-tests": GPU_TEST_CONFIGS, "first-call": FIRST_CALL_CONFIGS}


def plan(configs):
    """[(spec, [config ids])], one entry per distinct kernel, in first-seen order."""
    by_name = {}
    for i, cfg in enumerate(configs):
        label = cfg.get("id", f"#{i}")
        try:
            spec = cfg if "kind" in cfg else spec_for(cfg)
        except (AttnArgumentError, TypeError) as e:
            raise AttnArgumentError(f"configuration {label}: {e}") from e
        if "kind" in cfg:  # a spec given as is: name it as the binding would
            spec = dict(spec)
            spec["name"] = kernel_name(spec)
        by_name.setdefault(spec["name"], (spec, []))[1].append(label)
    return list(by_name.values())


def _ptxas(manifest_path):
    with open(manifest_path) as f:
        m = json.load(f)
    p = m.get("ptxas") or {}
    return {"kernel": m.get("kernel"), "registers": p.get("registers"),
            "spill_bytes": (p.get("spill_store_bytes") or 0) + (p.get("spill_load_bytes") or 0),
            "stack_frame_bytes": p.get("stack_frame_bytes")}


def prebuild(configs, out_dir, chip="sm_90a", compiler=None, jobs=None, log=print):
    """Compiles every configuration's kernel into out_dir; returns the report rows."""
    compiler = compiler or find_compiler()
    if not compiler:
        raise SystemExit("prebuild: attn-compile not found (build the project or set ATTN_COMPILE)")
    entries = plan(configs)
    os.makedirs(out_dir, exist_ok=True)

    def one(entry):
        spec, ids = entry
        row = {"name": spec["name"], "configs": ids, "chip": chip}
        t0 = time.perf_counter()
        try:
            path = compile_spec(spec, out_dir, chip, compiler)
            row.update(ok=True, **_ptxas(path))
        except Exception as e:  # noqa: BLE001 - recorded, reported below
            row.update(ok=False, error=str(e))
        row["seconds"] = round(time.perf_counter() - t0, 3)
        return row

    with concurrent.futures.ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
        rows = list(pool.map(one, entries))
    for row in rows:
        if row["ok"]:
            log(f"{row['name']}: {chip}, {row['kernel']}, {row['registers']} registers, "
                f"{row['spill_bytes']} B spills, {row['seconds']:.2f} s  ({', '.join(row['configs'])})")
        else:
            log(f"{row['name']}: FAILED ({', '.join(row['configs'])}): {row['error']}")
    with open(os.path.join(out_dir, "prebuild.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps({**row, "compiler": compiler}) + "\n")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", required=True, help="output directory")
    ap.add_argument("--set", action="append", default=[], choices=sorted(CONFIG_SETS),
                    help="a built-in configuration set")
    ap.add_argument("--configs", action="append", default=[],
                    help="a JSON file holding a list of configurations")
    ap.add_argument("--spec-json", action="append", default=[],
                    help="a spec (JSON text; its name is replaced by the binding's)")
    ap.add_argument("--chip", default="sm_90a", choices=["sm_90a", "sm_80"])
    ap.add_argument("--compiler", help="attn-compile (default: as the binding finds it)")
    ap.add_argument("-j", "--jobs", type=int)
    ap.add_argument("--allow-failures", action="store_true",
                    help="exit 0 even if a kernel fails (failures are in prebuild.jsonl)")
    args = ap.parse_args(argv)
    configs = []
    for s in args.set:
        configs += CONFIG_SETS[s]
    for path in args.configs:
        with open(path) as f:
            configs += json.load(f)
    for text in args.spec_json:
        configs.append(json.loads(text))
    if not configs:
        ap.error("nothing to build: give --set, --configs or --spec-json")
    rows = prebuild(configs, args.out, args.chip, args.compiler, args.jobs)
    failed = [r for r in rows if not r["ok"]]
    print(f"prebuilt {len(rows) - len(failed)}/{len(rows)} kernels into {args.out}"
          + (f"; {len(failed)} failed (see {os.path.join(args.out, 'prebuild.jsonl')})"
             if failed else ""))
    return 1 if failed and not args.allow_failures else 0


if __name__ == "__main__":
    sys.exit(main())
