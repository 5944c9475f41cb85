"""Reads an export with the ecosystem's own loaders; run by the readers' interpreter
(torch, transformers, peft: `make readers`), never by the project's.

    python hf_reader.py logits ids.json out.json merged=<hf dir> peft=<base hf dir>,<adapter dir>

For each model: the float32 logits of every position of each row of ids,
and the tokens `generate` adds greedily (max_new_tokens from ids.json).

    python hf_reader.py answers prompts.json out.json <hf dir>

The answers the model gives to each prompt, as the predict stage asks: the
model's own tokenizer (from the export), BOS first, greedy, at most
max_new_tokens (from prompts.json), decoded without special tokens.
"""
import json
import sys


def read(model, ids, new_tokens):
    import torch

    with torch.no_grad():
        batch = torch.tensor(ids, dtype=torch.long)
        logits = model(input_ids=batch).logits.float().numpy().tolist()
        generated = model.generate(input_ids=batch[:1], attention_mask=torch.ones_like(batch[:1]),
                                   max_new_tokens=new_tokens, do_sample=False, min_new_tokens=new_tokens)
    return {"logits": logits, "generated": generated[0, batch.shape[1]:].tolist()}


def answers(prompts_file, out_file, model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    request = json.load(open(prompts_file))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for prompt in request["prompts"]:
            ids = [tokenizer.bos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
            made = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                  max_new_tokens=request["maxNewTokens"], do_sample=False)
            out.append(tokenizer.decode(made[0, len(ids):], skip_special_tokens=True))
    json.dump({"answers": out}, open(out_file, "w"), ensure_ascii=False)


def logits(ids_file, out_file, *models):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    request = json.load(open(ids_file))
    out = {}
    for spec in models:
        kind, _, where = spec.partition("=")
        if kind == "merged":
            model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32)
        elif kind == "peft":
            from peft import PeftModel

            base, adapter = where.split(",")
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                              adapter)
        else:
            raise SystemExit(f"unknown model kind {kind!r}")
        model.eval()
        out[kind] = read(model, request["ids"], request["newTokens"])
    json.dump(out, open(out_file, "w"))


if __name__ == "__main__":
    {"logits": logits, "answers": answers}[sys.argv[1]](*sys.argv[2:])
