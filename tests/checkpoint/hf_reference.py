#!/usr/bin/env python3
"""Reference numbers from Hugging Face transformers for hf_logits_parity_test.

Builds a GPT2LMHeadModel with random weights (every tensor perturbed, so no
bias is zero and no norm gain is one), saves it with save_pretrained
(config.json + model.safetensors), draws random tokens and targets, and
writes, as raw little-endian arrays in --out:
  tokens.i32, targets.i32      [batch, seq]
  positions.i32                [count] flat row indices whose logits are kept
  logits.f32                   [count, vocab] fp32 logits at those rows
  loss.f64                     [1] mean cross-entropy over every position
The model runs in fp32 without TF32, on the GPU when there is one.
Exit code 3 when torch or transformers is missing (the test then skips)."""
import argparse
import os
import sys

try:
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
except ImportError as e:  # the C++ test reports this as its skip reason
    print(f"needs torch and transformers: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--positions", type=int, default=1024)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--keep", type=int, default=64, help="rows whose full logits are written")
    p.add_argument("--seed", type=int, default=20261122)
    a = p.parse_args()

    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = GPT2Config(n_layer=a.layers, n_embd=a.hidden, n_head=a.heads, vocab_size=a.vocab, n_positions=a.positions,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new")
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, t in model.named_parameters():
            t.add_(0.02 * torch.randn_like(t))  # biases off zero, gains off one
    model.save_pretrained(a.out, safe_serialization=True)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    g = torch.Generator().manual_seed(a.seed + 1)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g, dtype=torch.int64)
    targets = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g, dtype=torch.int64)
    rows = torch.randperm(a.batch * a.seq, generator=g)[: a.keep].sort().values
    with torch.no_grad():
        logits = model(tokens.to(device)).logits.float().reshape(a.batch * a.seq, -1)
        loss = torch.nn.functional.cross_entropy(logits, targets.to(device).reshape(-1), reduction="mean")
    tokens.numpy().astype("<i4").tofile(os.path.join(a.out, "tokens.i32"))
    targets.numpy().astype("<i4").tofile(os.path.join(a.out, "targets.i32"))
    rows.numpy().astype("<i4").tofile(os.path.join(a.out, "positions.i32"))
    logits[rows.to(device)].cpu().numpy().astype("<f4").tofile(os.path.join(a.out, "logits.f32"))
    np.array([loss.item()], dtype="<f8").tofile(os.path.join(a.out, "loss.f64"))
    print(f"hf_reference: {a.layers} layers, hidden {a.hidden}, loss {loss.item():.6f} on {device}")


if __name__ == "__main__":
    main()
