#!/usr/bin/env python3
"""Reference numbers from Hugging Face transformers for hf_roformer_parity_test.

Default mode: builds a RoFormerForMaskedLM with random weights (every trained
tensor perturbed, so no bias is zero and no norm gain is one; the encoder's
matrices scaled to std 1/sqrt(fan_in); token-type row 0 zeroed, as baton has no
token types; the fixed RoPE table left alone), saves it
with save_pretrained (config.json + model.safetensors), reloads it, draws random
tokens with an attention mask that pads the end of the second sequence, and
writes, as raw little-endian arrays in --out:
  tokens.i32      [batch, seq]
  lengths.i32     [batch]  real tokens of each sequence (the rest is padding)
  positions.i32   [count]  flat row indices whose logits are kept (never padding)
  logits.f32      [count, vocab] fp32 logits at those rows

--check DIR: loads DIR (baton's export of the model above) with from_pretrained,
fails if any tensor is missing, unexpected or misshapen or transformers logs a
warning, and compares its logits at the kept rows with logits.f32 in --out.

The model runs in fp32 without TF32, on the GPU when there is one.
Exit code 3 when torch or transformers is missing (the test then skips);
1 with the reason on stderr when a check fails."""
import argparse
import logging
import math
import os
import sys
import warnings

try:
    import numpy as np
    import torch
    from transformers import RoFormerConfig, RoFormerForMaskedLM
except ImportError as e:  # the C++ test reports this as its skip reason
    print(f"needs torch and transformers: {e}", file=sys.stderr)
    sys.exit(3)


class Records(logging.Handler):
    """Collects what transformers logs at WARNING or above."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def fail(message):
    print(f"hf_roformer_reference: {message}", file=sys.stderr)
    sys.exit(1)


def load(path, device, strict):
    """from_pretrained; strict: fail on anything it could not load exactly, or any warning."""
    records = Records()
    logging.getLogger("transformers").addHandler(records)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, info = RoFormerForMaskedLM.from_pretrained(path, output_loading_info=True)
    logging.getLogger("transformers").removeHandler(records)
    for w in caught:
        print(f"python warning while loading {path}: {w.message}")
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    print(f"from_pretrained({path}): {bad or 'every tensor loaded'}; transformers warnings: {records.messages}")
    if strict and bad:
        fail(f"from_pretrained({path}) did not load every tensor exactly: {bad}")
    if strict and records.messages:
        fail(f"from_pretrained({path}) logged warnings: {records.messages}")
    return model.eval().to(device)


def logits_at(model, tokens, lengths, rows, device):
    mask = (torch.arange(tokens.shape[1])[None, :] < lengths[:, None]).to(torch.int64)
    with torch.no_grad():
        out = model(input_ids=tokens.to(device), attention_mask=mask.to(device)).logits.float()
    return out.reshape(tokens.shape[0] * tokens.shape[1], -1)[rows.to(device)].cpu()


def read(out, name, dtype):
    values = np.fromfile(os.path.join(out, name), dtype=dtype)
    return torch.from_numpy(values.astype(np.int64) if dtype == "<i4" else values.copy())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--check", help="a baton export of the model in --out, to load and compare")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=768, help="not 4 hidden, so intermediate_size is read")
    p.add_argument("--vocab", type=int, default=50259, help="GPT-2's vocabulary + [MASK] + [SEP]")
    p.add_argument("--positions", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--pad", type=int, default=28, help="padding at the end of the second sequence")
    p.add_argument("--keep", type=int, default=64, help="rows whose full logits are written")
    p.add_argument("--seed", type=int, default=20261123)
    a = p.parse_args()

    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"

    if a.check:
        tokens = read(a.out, "tokens.i32", "<i4").reshape(a.batch, a.seq)
        lengths = read(a.out, "lengths.i32", "<i4")
        rows = read(a.out, "positions.i32", "<i4")
        want = read(a.out, "logits.f32", "<f4").reshape(rows.shape[0], -1)
        got = logits_at(load(a.check, device, strict=True), tokens, lengths, rows, device)
        err = (got - want).abs().max().item() / want.abs().max().item()
        print(f"hf_roformer_reference: {a.check} loads in transformers; logits relative error {err:.3g}")
        if err > 1e-5:
            fail(f"logits of {a.check} differ from the reference by {err:.3g} (relative to max |logit|)")
        return

    cfg = RoFormerConfig(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers,
                         num_attention_heads=a.heads, intermediate_size=a.ffn, hidden_act="gelu_new",
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         max_position_embeddings=a.positions)
    model = RoFormerForMaskedLM(cfg).eval()
    with torch.no_grad():
        for name, t in model.named_parameters():
            if t.requires_grad:  # not the fixed sinusoidal RoPE table
                t.add_(0.02 * torch.randn_like(t))  # biases off zero, gains off one
        model.roformer.embeddings.token_type_embeddings.weight[0].zero_()
        # The encoder's matrices at std 1/sqrt(fan_in): at the init's 0.02 attention and the MLP
        # hardly move the post-LN residual, and a wrong mask or RoPE would change the logits by
        # about 1% (within bf16's tolerance); at this scale by about 20%.
        for module in model.roformer.encoder.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(1.0 / (module.weight.std().item() * math.sqrt(module.in_features)))
    decoder = model.cls.predictions.decoder
    if decoder.bias is not None and decoder.bias.data_ptr() != model.cls.predictions.bias.data_ptr():
        fail("cls.predictions.decoder.bias is not tied to cls.predictions.bias")
    if decoder.weight.data_ptr() != model.roformer.embeddings.word_embeddings.weight.data_ptr():
        fail("cls.predictions.decoder.weight is not tied to the word embeddings")
    model.save_pretrained(a.out, safe_serialization=True)

    g = torch.Generator().manual_seed(a.seed + 1)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g, dtype=torch.int64)
    lengths = torch.full((a.batch,), a.seq, dtype=torch.int64)
    lengths[1] = a.seq - a.pad
    # Kept rows: half from each sequence's real tokens.
    rows = []
    for b in range(a.batch):
        real = torch.randperm(int(lengths[b]), generator=g)[: a.keep // a.batch]
        rows.append(b * a.seq + real)
    rows = torch.cat(rows).sort().values

    reloaded = load(a.out, device, strict=False)  # what baton reads is what the directory holds
    logits = logits_at(reloaded, tokens, lengths, rows, device)
    in_memory = logits_at(model.to(device), tokens, lengths, rows, device)
    drift = (logits - in_memory).abs().max().item() / logits.abs().max().item()
    if drift > 1e-6:
        fail(f"the reloaded model's logits differ from the saved model's by {drift:.3g} (relative)")
    tokens.numpy().astype("<i4").tofile(os.path.join(a.out, "tokens.i32"))
    lengths.numpy().astype("<i4").tofile(os.path.join(a.out, "lengths.i32"))
    rows.numpy().astype("<i4").tofile(os.path.join(a.out, "positions.i32"))
    logits.numpy().astype("<f4").tofile(os.path.join(a.out, "logits.f32"))
    print(f"hf_roformer_reference: {a.layers} layers, hidden {a.hidden}, {rows.numel()} rows, "
          f"max |logit| {logits.abs().max().item():.4f} on {device}")


if __name__ == "__main__":
    main()
