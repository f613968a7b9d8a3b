"""Padding-free packing: per-example losses equal the padded batch's, so packing changes speed, not training."""

import torch
import torch.nn.functional as F
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from backend.engine.data import tokenize_conversation
from backend.engine.model import load_model, load_tokenizer
from tests.engine.tiny_runs import conversations


def _per_example_losses(logits, labels, boundaries):
    """Mean token loss of each example; ``boundaries`` are (row, start, end) slices of the batch."""
    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
    losses = []
    for row, start, end in boundaries:
        lg, lb = shift_logits[row, start:end - 1], shift_labels[row, start:end - 1]
        losses.append(F.cross_entropy(lg.float(), lb, ignore_index=-100, reduction="mean"))
    return torch.stack(losses)


def test_packed_and_padded_batches_give_the_same_per_example_loss(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    # the engine's own loader: it turns the KV cache off, which packed-sequence detection relies on
    model = load_model(tiny_model_dir, torch.float32).eval()
    examples = [tokenize_conversation(tokenizer, c["messages"]) for c in conversations(5)]
    lengths = [len(e["input_ids"]) for e in examples]
    assert len(set(lengths)) > 1  # different lengths, so the padded batch really has padding

    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)(examples)
    packed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(examples)
    assert packed["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in packed
    assert packed["position_ids"][0].tolist() == [p for n in lengths for p in range(n)]

    with torch.no_grad():
        padded_logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
        packed_logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"]).logits
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    padded_losses = _per_example_losses(padded_logits, padded["labels"], [(i, 0, n) for i, n in enumerate(lengths)])
    packed_losses = _per_example_losses(packed_logits, packed["labels"],
                                        [(0, s, s + n) for s, n in zip(starts, lengths)])
    torch.testing.assert_close(packed_losses, padded_losses, atol=1e-5, rtol=1e-5)

    # and no token attends across an example boundary: changing example 0 leaves example 1's logits alone
    altered = packed["input_ids"].clone()
    altered[0, 1: lengths[0]] = tokenizer.pad_token_id
    with torch.no_grad():
        altered_logits = model(input_ids=altered, position_ids=packed["position_ids"]).logits
    second = slice(starts[1], starts[1] + lengths[1])
    torch.testing.assert_close(altered_logits[0, second], packed_logits[0, second])
