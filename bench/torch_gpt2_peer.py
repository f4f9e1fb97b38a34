#!/usr/bin/env python3
"""PyTorch peer for baton's GPT-2 throughput: Hugging Face transformers'
GPT2LMHeadModel trained on one GPU the way a tuned PyTorch user would run it.

What runs (defaults in brackets):
  * model: GPT2LMHeadModel built from a GPT2Config (no hub download; runs
    offline): n_layer [12], n_head [12], n_embd [768], vocab [50257, or padded
    up to a multiple with --pad-vocab-multiple, 128 gives 50304],
    n_positions [1024]; SDPA attention, every dropout 0, LM head tied to the
    token embedding (GPT-2), fp32 master weights.
  * step: --grad-accum [1] micro-batches of --batch-size x --seq-len
    [32 x 1024] random tokens (uniform over the real vocabulary, never the pad
    rows), drawn once per step from a seeded generator on the GPU; forward
    under bf16 autocast with labels = inputs (the model shifts them: T - 1
    predictions per sequence, its usual loss); backward; optional global
    gradient-norm clipping [1.0]; fused AdamW (torch.optim.AdamW(fused=True),
    lr 6e-4, betas (0.9, 0.95), weight decay 0.1 on matrices only, nanoGPT's
    grouping); zero_grad(set_to_none=True).
  * torch.compile(model) unless --no-compile; --recompute full turns on
    gradient_checkpointing_enable (non-reentrant) for every block.
  * TF32 allowed for fp32 matmuls (torch.set_float32_matmul_precision("high")),
    as nanoGPT does; under autocast the model's matmuls are bf16 anyway.
  * --warmup-steps [10] untimed steps (they include compilation), then
    --steps [20] timed steps: each step is bracketed by CUDA events (ms_per_step
    median/mean/min/max from them) and the whole timed loop by
    torch.cuda.synchronize() and a wall clock (wall_mean_ms).

MFU (model FLOPs utilisation), the PaLM (Chowdhery et al. 2022, appendix B) /
nanoGPT convention:
    flops_per_token = 6 * N + 12 * n_layer * seq_len * n_embd
    MFU = flops_per_token * tokens_per_s / peak
where N counts every parameter that takes part in a matmul per token: all
parameters except the position embedding (wpe), with the token embedding
(wte, including any pad rows, since the tied LM head multiplies by all of
them) counted once, as the LM head. LayerNorm gains/biases and linear biases
are included (they are a rounding error, nanoGPT includes them too). The
12 L T d term is the attention scores and the weighted sum of values
(forward + backward, no causal halving). Recomputation's extra forward is not
counted (it is not model work). tokens_per_s = tokens_per_step / median step
time, tokens_per_step = grad_accum * batch_size * seq_len. peak: --peak-tflops
[989], the dense bf16 tensor-core peak of an H100 SXM / H200 (no sparsity).

Output: a one-line summary on stdout and, with --json PATH, a JSON record
(device, versions, config, tokens_per_step, ms_per_step, tokens_per_s, mfu,
peak memory from torch.cuda.max_memory_allocated, ...). Single GPU; no
torch.distributed, so NCCL settings do not matter.
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

from peer_args import add_model_args, add_peak_arg

# Never reach the hub: everything is built from a config.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, pad_vocab_multiple=0)
    t = p.add_argument_group("training")
    t.add_argument("--batch-size", "-B", type=int, default=32, help="sequences per micro-batch")
    t.add_argument("--seq-len", "-T", type=int, default=1024)
    t.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    t.add_argument("--warmup-steps", type=int, default=10, help="untimed steps, compilation included")
    t.add_argument("--steps", type=int, default=20, help="timed steps")
    t.add_argument("--recompute", choices=["none", "full"], default="none",
                   help="full: gradient_checkpointing_enable() on every block")
    t.add_argument("--no-compile", action="store_true", help="run eagerly (no torch.compile)")
    t.add_argument("--lr", type=float, default=6e-4)
    t.add_argument("--weight-decay", type=float, default=0.1)
    t.add_argument("--clip-grad-norm", type=float, default=1.0, help="global gradient-norm clipping; 0 = off")
    t.add_argument("--seed", type=int, default=1234)
    o = p.add_argument_group("output")
    add_peak_arg(o, "the GPU")
    o.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    args = p.parse_args(argv)
    for name in ("n_layer", "n_head", "n_embd", "vocab_size", "n_positions", "batch_size", "seq_len", "grad_accum",
                 "steps"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup_steps < 0 or args.pad_vocab_multiple < 0:
        p.error("--warmup-steps and --pad-vocab-multiple must be >= 0")
    if args.n_embd % args.n_head:
        p.error(f"--n-embd {args.n_embd} is not a multiple of --n-head {args.n_head}")
    if args.seq_len > args.n_positions:
        p.error(f"--seq-len {args.seq_len} exceeds --n-positions {args.n_positions}")
    return args


def padded_vocab(vocab, multiple):
    return vocab if multiple <= 0 else (vocab + multiple - 1) // multiple * multiple


def build_model(args, torch, transformers):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=padded_vocab(args.vocab_size, args.pad_vocab_multiple),
        n_positions=args.n_positions,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        summary_first_dropout=0.0,
        use_cache=False,
        tie_word_embeddings=True,
    )
    try:  # the documented way to pick the attention kernel for a model built from a config
        model = GPT2LMHeadModel._from_config(config, attn_implementation="sdpa")
    except (TypeError, ValueError, AttributeError):
        config._attn_implementation = "sdpa"
        model = GPT2LMHeadModel(config)
    attn = getattr(model.config, "_attn_implementation", "unknown")
    if attn != "sdpa":
        sys.exit(f"transformers {transformers.__version__} built the model with attention '{attn}', not sdpa")
    return model


def count_params(model, torch):
    """(total unique parameters, N of the MFU formula, position-embedding parameters)."""
    seen, total = set(), 0
    for p in model.parameters():  # parameters() yields a tied tensor once
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    wpe = model.transformer.wpe.weight.numel()
    return total, total - wpe, wpe


def make_optimizer(model, args, torch):
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)


def main(argv=None):
    args = parse_args(argv)
    import torch
    import transformers

    if not torch.cuda.is_available():
        sys.exit("needs a CUDA GPU (torch.cuda.is_available() is False)")
    device = torch.device("cuda", torch.cuda.current_device())
    torch.manual_seed(args.seed)
    torch.set_float32_matmul_precision("high")

    model = build_model(args, torch, transformers).to(device)
    model.train()
    if args.recompute == "full":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    total_params, mfu_params, wpe_params = count_params(model, torch)
    optimizer = make_optimizer(model, args, torch)
    runner = model if args.no_compile else torch.compile(model)

    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    shape = (args.grad_accum, args.batch_size, args.seq_len)
    tokens_per_step = args.grad_accum * args.batch_size * args.seq_len
    params = [p for p in model.parameters() if p.requires_grad]

    def train_step():
        tokens = torch.randint(0, args.vocab_size, shape, generator=gen, device=device, dtype=torch.long)
        loss_sum = None
        for i in range(args.grad_accum):
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                loss = runner(input_ids=tokens[i], labels=tokens[i]).loss / args.grad_accum
            loss.backward()
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
        if args.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, args.clip_grad_norm, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss_sum

    # Warm-up (compilation happens here).
    t0 = time.perf_counter()
    loss = None
    for _ in range(args.warmup_steps):
        loss = train_step()
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - t0
    warmup_peak = torch.cuda.max_memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)

    # Timed steps: CUDA events per step, and a synchronised wall clock around all of them.
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(args.steps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(args.steps)]
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(args.steps):
        starts[i].record()
        loss = train_step()
        ends[i].record()
    torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - t0) * 1e3 / args.steps
    step_ms = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    final_loss = float(loss.item())
    timed_peak = torch.cuda.max_memory_allocated(device)

    median_ms = statistics.median(step_ms)
    mean_ms = statistics.fmean(step_ms)
    tokens_per_s = tokens_per_step / (median_ms / 1e3)
    flops_per_token = 6 * mfu_params + 12 * args.n_layer * args.seq_len * args.n_embd
    mfu = flops_per_token * tokens_per_s / (args.peak_tflops * 1e12)

    props = torch.cuda.get_device_properties(device)
    name = props.name
    if not any(k in name for k in ("H100", "H200")):
        print(f"note: {name} is not an H100/H200; MFU uses --peak-tflops {args.peak_tflops}", file=sys.stderr)
    result = {
        "benchmark": "torch_gpt2_peer",
        "device": name,
        "device_memory_bytes": props.total_memory,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "config": {
            "n_layer": args.n_layer,
            "n_head": args.n_head,
            "n_embd": args.n_embd,
            "vocab_size": args.vocab_size,
            "padded_vocab_size": model.config.vocab_size,
            "n_positions": args.n_positions,
            "attn_implementation": model.config._attn_implementation,
            "dropout": 0.0,
            "tied_lm_head": True,
        },
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "grad_accum": args.grad_accum,
        "tokens_per_step": tokens_per_step,
        "precision": "bf16 autocast, fp32 master weights, TF32 allowed",
        "compile": not args.no_compile,
        "recompute": args.recompute,
        "optimizer": {"name": "AdamW", "fused": True, "lr": args.lr, "betas": [0.9, 0.95],
                      "weight_decay": args.weight_decay, "clip_grad_norm": args.clip_grad_norm},
        "warmup_steps": args.warmup_steps,
        "warmup_seconds": warmup_s,
        "steps": args.steps,
        "ms_per_step": {"median": median_ms, "mean": mean_ms, "min": min(step_ms), "max": max(step_ms),
                        "wall_mean": wall_ms, "all": step_ms},
        "tokens_per_s": tokens_per_s,
        "params": {"total": total_params, "mfu_counted": mfu_params, "position_embedding": wpe_params},
        "flops_per_token": flops_per_token,
        "flops_formula": "6*N + 12*n_layer*seq_len*n_embd; N = all parameters except wpe (tied wte counted once)",
        "peak_tflops": args.peak_tflops,
        "mfu": mfu,
        "peak_memory_bytes": timed_peak,
        "peak_memory_bytes_warmup": warmup_peak,
        "final_loss": final_loss,
        "seed": args.seed,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    print(f"torch_gpt2_peer: {name}, L{args.n_layer} H{args.n_head} d{args.n_embd} V{model.config.vocab_size}, "
          f"{args.grad_accum}x{args.batch_size}x{args.seq_len} tokens/step, "
          f"{'eager' if args.no_compile else 'compiled'}, recompute={args.recompute}: "
          f"{median_ms:.1f} ms/step (median; mean {mean_ms:.1f}), {tokens_per_s / 1e3:.1f}k tokens/s, "
          f"MFU {100 * mfu:.1f}%, peak {timed_peak / 2**30:.2f} GiB, loss {final_loss:.3f}")
    if not math.isfinite(final_loss):
        sys.exit("loss is not finite")
    return result


if __name__ == "__main__":
    main()
