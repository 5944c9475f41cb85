"""Reads an export with the ecosystem's own loaders; run by the readers' interpreter
(torch, transformers, peft: `make readers`), never by the project's.

    python hf_reader.py ids.json out.json merged=<hf dir> peft=<base hf dir>,<adapter dir>

For each model: the float32 logits of every position of each row of ids,
and the tokens `generate` adds greedily (max_new_tokens from ids.json).
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


def main(ids_file, out_file, *models):
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
    main(*sys.argv[1:])
