"""Chat: a conversation for a base model or a succeeded job, and the reply with the target it came from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatCreate(BaseModel):
    model: str | None = Field(None, description="A model id from GET /api/v1/models, or an absolute path to an "
                                                "HF-format model directory. Exactly one of model / job_id.")
    job_id: str | None = Field(None, description="A succeeded job: its merged model if there is one, else its "
                                                 "adapter on the base model (LoRA), or its trained model.")
    messages: list[ChatMessage] = Field(..., min_length=1, description="The conversation so far, oldest first.")
    max_new_tokens: int = Field(128, ge=1, le=2048, description="Upper bound on the reply length in tokens.")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature; 0 = greedy.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling mass (ignored when greedy).")

    @model_validator(mode="after")
    def _one_target(self) -> ChatCreate:
        if (self.model is None) == (self.job_id is None):
            raise ValueError("give exactly one of 'model' (a base model) or 'job_id' (a succeeded job)")
        return self


class ChatTargetPublic(BaseModel):
    label: str
    kind: Literal["base", "adapter", "merged", "model"]
    model_dir: str
    adapter_dir: str | None = None


class ChatReply(BaseModel):
    text: str
    tokens: int = Field(description="Tokens generated.")
    seconds: float = Field(description="Generation time (model loading excluded).")
    trimmed_turns: int = Field(0, description="Oldest turns left out because the conversation was longer than the "
                                              "model's context (the system prompt and the last message always stay).")
    target: ChatTargetPublic
