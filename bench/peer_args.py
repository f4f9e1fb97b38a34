"""Command-line arguments shared by the PyTorch peers (torch_gpt2_peer.py,
torch_pipeline_peer.py): the GPT-2 model's shape and the MFU peak, named and
defaulted alike so that both describe a model the way baton's configs do."""


def add_model_args(parser, pad_vocab_multiple):
    """The "model" group: --n-layer --n-head --n-embd --vocab-size --pad-vocab-multiple --n-positions."""
    m = parser.add_argument_group("model")
    m.add_argument("--n-layer", type=int, default=12)
    m.add_argument("--n-head", type=int, default=12)
    m.add_argument("--n-embd", type=int, default=768)
    m.add_argument("--vocab-size", type=int, default=50257, help="real vocabulary (tokens are drawn below it)")
    m.add_argument("--pad-vocab-multiple", type=int, default=pad_vocab_multiple,
                   help="pad the embedding/LM-head rows up to a multiple of this (128: 50257 -> 50304); 0 = no padding")
    m.add_argument("--n-positions", type=int, default=1024)
    return m


def add_peak_arg(group, what):
    """--peak-tflops: the dense bf16 peak that MFU divides by."""
    group.add_argument("--peak-tflops", type=float, default=989.0,
                       help=f"dense bf16 peak of {what} for MFU (989 = H100 SXM / H200)")
