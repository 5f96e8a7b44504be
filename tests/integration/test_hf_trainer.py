"""Handing a paper-routed optimizer to Hugging Face's Trainer (README "Training frameworks"): a tiny randomly
initialised LlamaForCausalLM trains for a few steps with ``optimizers=(opt, scheduler)``, the routing survives
(block linears projected, embeddings and lm_head dense) and a checkpoint resumes bit-exactly.
Skipped without the ``hf`` extra (transformers)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

import algorithms  # noqa: E402
from algorithms.grouping import paper_param_groups  # noqa: E402

STEPS = 4


class RandomTokens(torch.utils.data.Dataset):
    def __init__(self, n: int = 32, length: int = 16, vocab: int = 64) -> None:
        gen = torch.Generator().manual_seed(0)
        self.tokens = torch.randint(0, vocab, (n, length), generator=gen)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.tokens[i], "labels": self.tokens[i]}


def tiny_llama():
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=32,
                                      tie_word_embeddings=False)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config)


def trainer_for(model, opt, out_dir, max_steps: int):
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    args = transformers.TrainingArguments(output_dir=str(out_dir), max_steps=max_steps, per_device_train_batch_size=4,
                                          learning_rate=1e-3, report_to=[], save_strategy="no", logging_steps=1,
                                          use_cpu=True, seed=0, data_seed=0, disable_tqdm=True)
    return transformers.Trainer(model=model, args=args, train_dataset=RandomTokens(), optimizers=(opt, scheduler))


def galore(model):
    groups = paper_param_groups("galore_adamw", model, rank=4, update_proj_gap=2)
    return algorithms.make("galore_adamw", groups, lr=1e-3)


def test_trainer_keeps_the_paper_routing_and_trains(tmp_path):
    model = tiny_llama()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = galore(model)
    result = trainer_for(model, opt, tmp_path, STEPS).train()
    assert result.global_step == STEPS and torch.isfinite(torch.tensor(result.training_loss))
    names = {id(p): n for n, p in model.named_parameters()}
    projected = {names[id(p)] for p, st in opt.state.items() if "basis" in st}
    dense = {names[id(p)] for p, st in opt.state.items() if "basis" not in st}
    assert projected == {n for n in names.values() if any(k in n for k in ("q_proj", "k_proj", "v_proj", "o_proj",
                                                                           "gate_proj", "up_proj", "down_proj"))}
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= dense
    for p, st in opt.state.items():
        if "basis" in st:
            assert min(st["exp_avg"].shape) == 4, names[id(p)]  # the moments live in the rank-4 subspace
    assert all(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters()), "every parameter moved"


def test_a_checkpoint_taken_mid_run_resumes_bit_exactly(tmp_path):
    straight = tiny_llama()
    trainer_for(straight, galore(straight), tmp_path / "a", STEPS).train()

    first = tiny_llama()
    opt = galore(first)
    trainer_for(first, opt, tmp_path / "b", STEPS // 2).train()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed = tiny_llama()
    resumed.load_state_dict(saved["model"])
    opt2 = galore(resumed)
    opt2.load_state_dict(saved["opt"])
    # the second half sees the batches the straight run saw at steps 3 and 4
    trainer = trainer_for(resumed, opt2, tmp_path / "c", STEPS)
    trainer.state.global_step = 0
    loader = trainer.get_train_dataloader()
    batches = list(loader)[STEPS // 2:STEPS]
    resumed.train()
    for batch in batches:
        loss = resumed(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(resumed.parameters(), 1.0)  # the Trainer's default max_grad_norm
        opt2.step()
        opt2.zero_grad()
    for (n, a), b in zip(straight.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), n
