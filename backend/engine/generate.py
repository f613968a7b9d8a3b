"""Generate a chat reply from a model directory (a base, a run's model/ or merged/, or a run's adapter/).

    python -m backend.engine generate --model-dir DIR --prompt "What is the capital of France?"
"""

from __future__ import annotations

from pathlib import Path

import torch


def load_for_chat(model_dir: str | Path):
    """Return ``(model, tokenizer)``; an adapter dir is loaded on top of the base model it names."""
    from transformers import AutoModelForCausalLM

    from backend.engine.model import load_tokenizer

    model_dir = Path(model_dir)
    if (model_dir / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    return model, load_tokenizer(model_dir)


def generate_reply(model, tokenizer, messages: list[dict], max_new_tokens: int = 64,
                   temperature: float = 0.0) -> str:
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
    encoded = {key: value.to(model.device) for key, value in encoded.items()}
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    with torch.no_grad():
        out = model.generate(**encoded, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             **sampling)
    return tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True).strip()
