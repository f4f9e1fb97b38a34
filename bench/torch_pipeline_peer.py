#!/usr/bin/env python3
"""PyTorch peer for baton's multi-GPU pipeline benchmark: GPT-2 split into
pipeline stages with torch.distributed.pipelining, one process per GPU.

What runs (defaults in brackets):
  * --gpus [2] processes (torch.multiprocessing.spawn), rank r on cuda:r, NCCL
    over tcp://127.0.0.1, NCCL_NVLS_ENABLE=0 unless set.
  * model: GPT-2 from plain torch modules (no Hugging Face): learned position
    embedding, pre-LN blocks (LayerNorm eps 1e-5, causal SDPA attention, GELU
    (tanh) MLP 4x, biases), final LayerNorm, LM head; n_layer/n_head/n_embd
    [12/12/768]; vocab [50257] padded up to a multiple of --pad-vocab-multiple
    [128] -> 50304; no dropout; GPT-2 init; fp32 parameters.
  * chunks: the first = embeddings + its blocks, middle ones = blocks, the
    last = blocks + final LayerNorm + LM head (returns logits); --stage-layers
    "a-b|c-d|..." gives each chunk's inclusive block range [n_layer split
    evenly]. Schedules: 1f1b (Schedule1F1B), gpipe (ScheduleGPipe),
    interleaved (ScheduleInterleaved1F1B), zb (ScheduleInterleavedZeroBubble);
    the last two run --virtual-stages [2] chunks per GPU, listed in global
    chunk order, chunk c on rank c % gpus (the Megatron / baton layout).
  * the LM head is NOT tied to the token embedding (unlike GPT-2 and baton):
    torch.distributed.pipelining cannot tie weights across stages (first and
    last GPU), so the head has its own weight ("tied_embedding": false).
  * precision like baton: fp32 parameters, every stage's forward under
    torch.autocast(bfloat16), the residual stream fp32 inside a stage (as in
    single-GPU autocast); activations cross stages as bf16 (a stage casts its
    output, the next one upcasts). PipelineStage infers shapes at run time.
  * step: batch_size x microbatches sequences of seq_len random tokens below
    the real vocabulary (inputs drawn on the first GPU, independent random
    targets on the last, seeded generators); loss = cross entropy, mean over a
    micro-batch's tokens (the schedule scales gradients by 1/microbatches);
    torch.optim.Adafactor (lr 1e-2, torch's defaults otherwise) on each GPU's
    own parameters, zero_grad(set_to_none=True). baton's AdaFactor follows the
    paper exactly, torch's variant departs from it in details (see its docs):
    not the same update math, but a small part of the step either way.
  * --compile: torch.compile every stage module [off]; --recompute full:
    torch.utils.checkpoint (non-reentrant) around every block [none].
  * --warmup-steps [3] untimed steps, then --steps [10] timed ones: CUDA sync
    + dist.barrier, then time.perf_counter around the step and a CUDA sync; a
    step's time is the maximum over ranks.

MFU follows bench/torch_gpt2_peer.py (PaLM / nanoGPT):
    flops_per_token = 6 * N + 12 * n_layer * seq_len * n_embd
with N = every parameter of the whole model except the position table and
the input token table (a lookup; the LM head is counted once, so N equals the
tied model's N), MFU = flops_per_token * tokens_per_s / (peak * gpus) (per GPU),
tokens_per_s = tokens_per_step / median step time, recomputation not counted.
bubble_theory: (p-1)/(m+p-1) for 1f1b/gpipe, (p-1)/(V m+p-1) for interleaved.

Output: rank 0 prints a one-line summary and, with --json PATH, writes a JSON record (device,
versions, config, stage layout, ms_per_step, tokens_per_s, mfu, per-rank peak memory, ...).
"""

import argparse
import datetime
import inspect
import json
import math
import os
import platform
import socket
import statistics
import sys
import time
import traceback

from peer_args import add_model_args, add_peak_arg

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

SCHEDULES = {"1f1b": "Schedule1F1B", "gpipe": "ScheduleGPipe", "interleaved": "ScheduleInterleaved1F1B",
             "zb": "ScheduleInterleavedZeroBubble"}
MULTI = ("interleaved", "zb")  # schedules with --virtual-stages chunks per GPU


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, pad_vocab_multiple=128)
    d = p.add_argument_group("pipeline")
    d.add_argument("--gpus", type=int, default=2, help="processes / GPUs = pipeline stages")
    d.add_argument("--schedule", choices=list(SCHEDULES), default="1f1b")
    d.add_argument("--virtual-stages", type=int, default=2, help="chunks per GPU (interleaved, zb)")
    d.add_argument("--stage-layers", default="",
                   help='inclusive block range per chunk in global chunk order, "0-11|12-23|..."; default: even')
    d.add_argument("--microbatches", type=int, default=8, help="micro-batches per step")
    t = p.add_argument_group("training")
    t.add_argument("--batch-size", "-B", type=int, default=4, help="sequences per micro-batch")
    t.add_argument("--seq-len", "-T", type=int, default=1024)
    t.add_argument("--warmup-steps", type=int, default=3, help="untimed steps, compilation included")
    t.add_argument("--steps", type=int, default=10, help="timed steps")
    t.add_argument("--recompute", choices=["none", "full"], default="none",
                   help="full: torch.utils.checkpoint around every block")
    t.add_argument("--compile", action="store_true", help="torch.compile every stage module")
    t.add_argument("--lr", type=float, default=1e-2)
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--timeout-s", type=int, default=900, help="NCCL / process-group timeout")
    o = p.add_argument_group("output")
    add_peak_arg(o, "one GPU")
    o.add_argument("--json", metavar="PATH", help="write the results as JSON here (rank 0)")
    args = p.parse_args(argv)
    for name in ("n_layer", "n_head", "n_embd", "vocab_size", "n_positions", "gpus", "virtual_stages",
                 "microbatches", "batch_size", "seq_len", "steps"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup_steps < 0 or args.pad_vocab_multiple < 0 or args.gpus < 2:
        p.error("--warmup-steps, --pad-vocab-multiple must be >= 0, --gpus >= 2 (one GPU: torch_gpt2_peer.py)")
    if args.n_embd % args.n_head:
        p.error(f"--n-embd {args.n_embd} is not a multiple of --n-head {args.n_head}")
    if args.seq_len > args.n_positions:
        p.error(f"--seq-len {args.seq_len} exceeds --n-positions {args.n_positions}")
    if args.schedule not in MULTI:
        args.virtual_stages = 1
    if args.schedule == "zb" and args.compile:
        p.error("--schedule zb does not work with --compile (torch splits the backward into input and weight "
                "parts through the autograd graph, which torch.compile hides)")
    n_chunks = args.gpus * args.virtual_stages
    if args.schedule in ("1f1b", "gpipe") and args.microbatches < args.gpus:
        p.error(f"--microbatches {args.microbatches} must be >= --gpus {args.gpus} for {args.schedule}")
    try:
        args.layers = parse_stage_layers(args.stage_layers, n_chunks, args.n_layer)
    except ValueError as e:
        p.error(f"--stage-layers: {e}")
    return args


def parse_stage_layers(spec, n_chunks, n_layer):
    """[(first, last), ...] inclusive block ranges, one per chunk, contiguous and covering 0..n_layer-1."""
    if not spec:
        if n_layer < n_chunks:
            raise ValueError(f"{n_layer} layers cannot fill {n_chunks} chunks")
        bounds = [c * n_layer // n_chunks for c in range(n_chunks + 1)]  # even split, remainder spread
        return [(bounds[c], bounds[c + 1] - 1) for c in range(n_chunks)]
    ranges = []
    for part in spec.split("|"):
        a, sep, b = part.strip().partition("-")
        if not sep or not a.strip().isdigit() or not b.strip().isdigit():
            raise ValueError(f"'{part}' is not 'first-last'")
        ranges.append((int(a), int(b)))
    if len(ranges) != n_chunks:
        raise ValueError(f"{len(ranges)} ranges given, the schedule needs {n_chunks} (gpus x virtual stages)")
    expect = 0
    for a, b in ranges:
        if a != expect or b < a:
            raise ValueError(f"range {a}-{b} does not continue at block {expect} (ranges must be contiguous)")
        expect = b + 1
    if expect != n_layer:
        raise ValueError(f"the ranges end at block {expect - 1}, the model has blocks 0-{n_layer - 1}")
    return ranges


def padded_vocab(vocab, multiple):
    return vocab if multiple <= 0 else (vocab + multiple - 1) // multiple * multiple


class Block(nn.Module):
    """GPT-2 pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.c_attn, self.attn_proj = nn.LayerNorm(d, eps=1e-5), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln_2, self.c_fc, self.mlp_proj = nn.LayerNorm(d, eps=1e-5), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class StageModule(nn.Module):
    """One pipeline chunk: [embeddings] + blocks [+ final LayerNorm + LM head]."""

    def __init__(self, args, first_layer, last_layer, is_first, is_last):
        super().__init__()
        d, vocab = args.n_embd, padded_vocab(args.vocab_size, args.pad_vocab_multiple)
        self.is_first, self.is_last, self.recompute = is_first, is_last, args.recompute == "full"
        if is_first:
            self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(args.n_positions, d)
        self.blocks = nn.ModuleList(Block(d, args.n_head) for _ in range(first_layer, last_layer + 1))
        if is_last:  # the LM head is untied: see the module docstring
            self.ln_f, self.lm_head = nn.LayerNorm(d, eps=1e-5), nn.Linear(d, vocab, bias=False)
        for name, p in self.named_parameters():  # GPT-2 init: std 0.02, residual projections 0.02/sqrt(2L)
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * args.n_layer))
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, x):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if self.is_first:  # x: token ids [B, T]
                pos = torch.arange(x.shape[1], device=x.device)
                x = self.wte(x) + self.wpe(pos)
            else:  # x: bf16 activations [B, T, d] from the previous stage
                x = x.float()
            for block in self.blocks:
                x = checkpoint(block, x, use_reentrant=False) if self.recompute else block(x)
            if self.is_last:
                return self.lm_head(self.ln_f(x))  # bf16 logits [B, T, vocab]
        return x.to(torch.bfloat16)


def loss_fn(logits, target):
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), target.reshape(-1))


def worker(rank, args, port):
    try:
        run(rank, args, port)
    except BaseException:  # noqa: BLE001 -- any failure must end the process, not leave peers waiting
        print(f"[rank {rank}] failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)  # spawn sees the exit code and terminates the other ranks


def run(rank, args, port):
    from torch.distributed.pipelining import PipelineStage
    from torch.distributed.pipelining import schedules as pp_schedules

    world = args.gpus
    torch.cuda.set_device(rank)
    device = torch.device("cuda", rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=args.timeout_s), device_id=device)
    torch.set_float32_matmul_precision("high")
    schedule_cls = getattr(pp_schedules, SCHEDULES[args.schedule], None)
    for missing, what in ((schedule_cls is None, f"torch.distributed.pipelining.{SCHEDULES[args.schedule]}"),
                          (not hasattr(torch.optim, "Adafactor"), "torch.optim.Adafactor (torch >= 2.5)")):
        if missing:
            raise RuntimeError(f"torch {torch.__version__} has no {what}, needed here")

    # Chunk c lives on rank c % world; this rank's chunks in increasing order.
    n_chunks = len(args.layers)
    my_chunks = [c for c in range(n_chunks) if c % world == rank]
    modules, stages = [], []
    for c in my_chunks:
        torch.manual_seed(args.seed + 1000 * c)  # weights depend on the chunk, not on the rank
        with torch.device(device):
            module = StageModule(args, *args.layers[c], is_first=c == 0, is_last=c == n_chunks - 1)
        modules.append(module)
        runner = torch.compile(module) if args.compile else module
        stages.append(PipelineStage(runner, stage_index=c, num_stages=n_chunks, device=device))
    has_first, has_last = 0 in my_chunks, n_chunks - 1 in my_chunks
    params = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.Adafactor(params, lr=args.lr)

    # Multi-chunk schedules take this rank's list of stages, the others its one stage.
    schedule = schedule_cls(stages if args.schedule in MULTI else stages[0], n_microbatches=args.microbatches,
                            loss_fn=loss_fn)
    # Without return_outputs=False (torch >= 2.9) the last stage keeps every micro-batch's logits.
    step_kwargs = {"return_outputs": False} if "return_outputs" in inspect.signature(schedule.step).parameters else {}

    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed + (0 if has_first else 1))
    shape = (args.batch_size * args.microbatches, args.seq_len)
    losses = []

    def train_step():
        losses.clear()
        kwargs = dict(step_kwargs, losses=losses)
        if has_last:
            kwargs["target"] = torch.randint(0, args.vocab_size, shape, generator=gen, device=device)
        inputs = (torch.randint(0, args.vocab_size, shape, generator=gen, device=device),) if has_first else ()
        schedule.step(*inputs, **kwargs)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def timed_steps(n):
        times = []
        for _ in range(n):
            torch.cuda.synchronize()
            dist.barrier()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            train_step()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return times

    t0 = time.perf_counter()
    timed_steps(args.warmup_steps)
    warmup_s = time.perf_counter() - t0
    warmup_peak = torch.cuda.max_memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    local_times = timed_steps(args.steps)
    timed_peak = torch.cuda.max_memory_allocated(device)

    # Gather: step time = max over ranks; peaks and parameter counts per rank; loss from the last stage.
    step_t = torch.tensor(local_times, dtype=torch.float64, device=device)
    dist.all_reduce(step_t, op=dist.ReduceOp.MAX)
    wte, wpe = [sum(getattr(m, k).weight.numel() for m in modules if m.is_first) for k in ("wte", "wpe")]
    mine = torch.tensor([timed_peak, warmup_peak, sum(p.numel() for p in params), wte, wpe], device=device)
    gathered = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    loss_t = torch.zeros(1, dtype=torch.float64, device=device)
    if has_last and losses:
        loss_t[0] = torch.stack([x.detach().float() for x in losses]).mean().double()
    dist.broadcast(loss_t, src=(n_chunks - 1) % world)
    if rank == 0:
        report(args, [t * 1e3 for t in step_t.tolist()], [g.tolist() for g in gathered], float(loss_t.item()),
               warmup_s, step_kwargs, device)
    dist.barrier()
    dist.destroy_process_group()


def report(args, step_ms, per_rank, final_loss, warmup_s, step_kwargs, device):
    world, V = args.gpus, args.virtual_stages
    total_params, wte, wpe = (sum(r[i] for r in per_rank) for i in (2, 3, 4))
    mfu_params = total_params - wte - wpe  # the input token table is a lookup, the untied head the matmul
    tokens_per_step = args.batch_size * args.microbatches * args.seq_len
    median_ms, mean_ms = statistics.median(step_ms), statistics.fmean(step_ms)
    tokens_per_s = tokens_per_step / (median_ms / 1e3)
    flops_per_token = 6 * mfu_params + 12 * args.n_layer * args.seq_len * args.n_embd
    mfu = flops_per_token * tokens_per_s / (args.peak_tflops * 1e12 * world)
    p, m = world, args.microbatches
    bubble = {"1f1b": (p - 1) / (m + p - 1), "gpipe": (p - 1) / (m + p - 1),
              "interleaved": (p - 1) / (V * m + p - 1), "zb": None}[args.schedule]
    props = torch.cuda.get_device_properties(device)
    peaks = [r[0] for r in per_rank]
    nccl = ".".join(map(str, torch.cuda.nccl.version())) if dist.is_nccl_available() else None
    result = {
        "benchmark": "torch_pipeline_peer", "peer": "torch.distributed.pipelining",
        "device": props.name, "device_memory_bytes": props.total_memory, "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda, "nccl_version": nccl, "python_version": platform.python_version(),
        "gpus": world, "schedule": args.schedule, "schedule_class": SCHEDULES[args.schedule], "stages": world,
        "virtual_stages": V, "microbatches": m, "batch_size": args.batch_size, "seq_len": args.seq_len,
        "n_layer": args.n_layer, "n_head": args.n_head, "n_embd": args.n_embd, "vocab_size": args.vocab_size,
        "padded_vocab_size": padded_vocab(args.vocab_size, args.pad_vocab_multiple),
        "stage_layers": "|".join(f"{a}-{b}" for a, b in args.layers),
        "chunk_layers": [[a, b] for a, b in args.layers], "chunk_rank": [c % world for c in range(len(args.layers))],
        "tied_embedding": False,
        "precision": "bf16 autocast per stage, fp32 parameters, bf16 activations between stages, TF32 allowed",
        "recompute": args.recompute, "compile": args.compile,
        "optimizer": {"name": "torch.optim.Adafactor", "lr": args.lr},
        "last_stage_outputs_kept": not step_kwargs,
        "tokens_per_step": tokens_per_step, "warmup_steps": args.warmup_steps, "warmup_seconds": warmup_s,
        "steps": args.steps,
        "ms_per_step": {"median": median_ms, "mean": mean_ms, "min": min(step_ms), "max": max(step_ms),
                        "all": step_ms},
        "tokens_per_s": tokens_per_s,
        "params": {"total": total_params, "mfu_counted": mfu_params, "token_embedding": wte,
                   "position_embedding": wpe, "per_rank": [r[2] for r in per_rank]},
        "flops_per_token": flops_per_token,
        "flops_formula": "6*N + 12*n_layer*seq_len*n_embd; N = all parameters except wpe and the input wte "
                         "(the untied LM head counted once); mfu is per GPU (divided by gpus)",
        "peak_tflops": args.peak_tflops, "mfu": mfu, "bubble_theory": bubble,
        "peak_memory_bytes": peaks, "peak_memory_bytes_warmup": [r[1] for r in per_rank],
        "final_loss": final_loss, "seed": args.seed,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    print(f"torch_pipeline_peer: {props.name} x{world}, {args.schedule} PP={world} V={V} m={m} "
          f"[{result['stage_layers']}], L{args.n_layer} H{args.n_head} d{args.n_embd}, "
          f"{m}x{args.batch_size}x{args.seq_len} tokens/step, {'compiled' if args.compile else 'eager'}, "
          f"recompute={args.recompute}: {median_ms:.1f} ms/step (median; mean {mean_ms:.1f}), "
          f"{tokens_per_s / 1e3:.1f}k tokens/s, MFU {100 * mfu:.1f}% per GPU, "
          f"peak {max(peaks) / 2**30:.2f} GiB (max over ranks), loss {final_loss:.3f}", flush=True)
    if not math.isfinite(final_loss):
        print("loss is not finite", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    args = parse_args(argv)
    if not torch.cuda.is_available() or torch.cuda.device_count() < args.gpus:
        sys.exit(f"--gpus {args.gpus} but {torch.cuda.device_count() if torch.cuda.is_available() else 0} "
                 "CUDA devices are visible")
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    try:
        mp.spawn(worker, args=(args, free_port()), nprocs=args.gpus, join=True)
    except Exception as e:  # noqa: BLE001 -- a rank failed; its traceback is already on stderr
        sys.exit(f"torch_pipeline_peer failed: {e}")


if __name__ == "__main__":
    main()
