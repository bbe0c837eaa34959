"""A tiny random-weight llama-architecture GGUF, written with the ``gguf`` package, for tests and benchmarks.

It exercises the real loading and generation path of the local backend (llama.cpp reads the file,
tokenises with its SentencePiece-style vocabulary, applies the chat template, samples tokens) in a
fraction of a second and a few hundred kilobytes, with no download. Its words are random, which is
what the disclosure post-check tests want: a model that never discloses on its own.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_WORDS = ["▁the", "▁a", "▁and", "▁morning", "▁market", "▁coffee", "▁light", "▁city", "▁walk", "▁today",
          "▁new", "▁photo", "▁colour", "▁street", "▁rain", "▁sun", "▁friends", "▁music", "▁river", "▁bread"]


_COMMON = """you your the and for with that this are not never who what when where which will would about from
have has one more post posts text write reply comment comments character virtual human real language languages
persona voice tone style hashtags hashtag emoji topics rules answer plainly first sentence says that in of to is
it be or as at by on an if any use each only words short long platform characters caption""".split()


def write_tiny_gguf(path: Path, *, n_embd: int = 64, n_layers: int = 2, n_ff: int = 128, n_head: int = 4,
                    context: int = 4096, seed: int = 0) -> Path:
    """Write the model to ``path`` and return it (needs ``gguf`` and ``numpy``)."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    # SentencePiece layout: unk, bos, eos, 256 byte-fallback tokens, then whole words and letters
    tokens: list[str] = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    # words and letter pairs keep prompts short (byte-by-byte, a persona prompt would be several thousand tokens)
    pairs = [a + b for a in letters for b in letters]
    pieces = ["▁", *_WORDS, *(f"▁{w}" for w in _COMMON), *letters, *(f"▁{c}" for c in letters), *pairs,
              *(f"▁{p}" for p in pairs), *(c.upper() for c in letters), *(f"▁{c.upper()}" for c in letters),
              *".,:;!?-'\"()#@/0123456789"]
    for piece in dict.fromkeys(pieces):
        tokens.append(piece)
        types.append(gguf.TokenType.NORMAL)
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    n_vocab = len(tokens)

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("ainfluencer-tiny-test")
    writer.add_context_length(context)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    output = weight(n_vocab, n_embd)
    output[:259] = 0.0  # control and byte tokens never win, so the text is words and ends by length
    output[259:] += 0.5 * np.abs(output[259:])
    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for i in range(n_layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
