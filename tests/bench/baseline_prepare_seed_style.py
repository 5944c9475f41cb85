"""The seed-style baseline for bench_prepare: seed 000's recipe written the way the
seed's notebook does it (REFERENCE §2): the `json` module line by line, a Python
set of problem+solution strings, a per-row regex loop to classify, random
sampling with upsampling, chain of thought with regexes and float rounding,
the alpaca template, one JSON file written at the end.

usage: baseline_prepare_seed_style.py TRAIN_JSON OUT_JSON
Prints one line: `read_dedupe_classify_seconds=<s> total_seconds=<s> rows=<n>`.
"""
import json
import random
import re
import sys
import time

QUOTAS = {"english": 6000, "add": 6000, "subtract": 6000, "multiply": 6000, "divide": 6000, "sqrt": 6000,
          "power": 6000, "equation": 12000, "discount": 6000, "mean": 12000, "mass": 1000, "area": 6000,
          "sales": 6000, "simplify": 450, "function": 12000}
RULES = [
    ("english", re.compile(r"^[^\u4e00-\u9fa5]")),
    ("sqrt", re.compile(r"^计算.*的平方根")),
    ("power", re.compile(r"^计算.*的\d+次方")),
    ("add", re.compile(r"^计算-?[\d.]+\+-?[\d.]+等于多少")),
    ("subtract", re.compile(r"^计算-?[\d.]+--?[\d.]+等于多少")),
    ("multiply", re.compile(r"^计算-?[\d.]+\*-?[\d.]+等于多少")),
    ("divide", re.compile(r"^计算-?[\d.]+/-?[\d.]+等于多少")),
    ("equation", re.compile(r"^解方程")),
    ("discount", re.compile(r"^商品")),
    ("mean", re.compile(r"^求以下数据的平均值")),
    ("mass", re.compile(r"请计算该物体的质量。$")),
    ("area", re.compile(r"请计算其面积。$")),
    ("sales", re.compile(r"请计算今年的销售额。$")),
    ("simplify", re.compile(r"进行简化。$")),
    ("function", re.compile(r"^当.*时，求函数")),
]
NUM = r"(-?\d+(?:\.\d+)?)"
ALPACA = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
          "request.\n\n### Instruction:\n{instruction}\n\n### Response:")


def classify(problem):
    q = problem.replace(" ", "")
    for kind, pattern in RULES:
        if pattern.search(q):
            return kind
    return "other"


def cot(kind, q, solution):
    if kind in ("add", "subtract", "multiply", "divide"):
        a, op, b = re.search(NUM + r" ([-+*/]) " + NUM, q).groups()
        x, y = float(a), float(b)
        r = {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else float("nan")}[op]
        if op == "-" and b.startswith("-"):
            return f"{a} - {b} = {a} + {b[1:]} = {round(r, 2)}"
        if op == "+" and b.startswith("-"):
            return f"{a} + {b} = {a} - {b[1:]} = {round(r, 2)}"
        return f"{a} {op} {b} = {round(r, 2)}"
    if kind == "sqrt":
        a = float(re.search(NUM, q).group(1))
        return f"√{a} = {round(a ** 0.5, 2)}"
    if kind == "power":
        a, n = re.search(NUM + r" 的 (\d+) 次方", q).groups()
        return f"{a}^{n} = {round(float(a) ** int(n), 2)}"
    if kind == "equation":
        k, b = re.search(NUM + r"x \+ " + NUM, q).groups()
        x = round(-float(b) / float(k), 2)
        return f"{k}x = {-float(b)}\nx = {-float(b)} / {k}\nx = {x}\n方程的解为：{x}"
    if kind == "mean":
        values = [float(v) for v in re.findall(NUM, q)]
        mean = round(sum(values) / len(values), 2)
        return f"{' + '.join(map(str, values))} = {sum(values)}\n{sum(values)} / {len(values)} = {mean}\n平均值为 {mean}"
    if kind in ("area", "mass"):
        a, b = map(float, re.findall(NUM, q)[:2])
        return f"{a} * {b} = {a * b}"
    if kind == "discount":
        a, b = map(float, re.findall(NUM, q)[:2])
        return f"({a} - {b}) / {a} * 100 = {round((a - b) / a * 100, 2)}"
    if kind == "sales":
        a, p = map(float, re.findall(NUM, q)[:2])
        return f"{a} * (1 + {p} / 100) = {round(a * (1 + p / 100), 2)}"
    if kind == "function":
        x, c, n = re.search(r"x = " + NUM + r" 时，求函数 y = " + NUM + r"x\^(\d+)", q).groups()
        return f"y = {c} * {x}^{n} = {float(c) * float(x) ** int(n)}"
    return solution


def main(src, dst):
    start = time.perf_counter()
    data = []
    with open(src, encoding="utf-8") as fh:
        for line in fh:
            data.append(json.loads(line))
    seen, unique = set(), []
    for d in data:
        key = d["problem"] + d["solution"]
        if key not in seen:
            seen.add(key)
            unique.append(d)
    groups = {}
    for d in unique:
        groups.setdefault(classify(d["problem"]), []).append(d)
    classified = time.perf_counter()
    rng = random.Random(42)
    sampled = []
    for kind, n in QUOTAS.items():
        pool = groups.get(kind, [])
        picked = rng.sample(pool, n) if n <= len(pool) else pool * (n // len(pool)) + rng.sample(pool, n % len(pool))
        sampled.extend((kind, d) for d in picked)
    rng.shuffle(sampled)
    out = [{"instruction": ALPACA.format(instruction=d["problem"]), "output": cot(kind, d["problem"], d["solution"])}
           for kind, d in sampled]
    with open(dst, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, indent=4)
    total = time.perf_counter() - start
    print(f"read_dedupe_classify_seconds={classified - start:.3f} total_seconds={total:.3f} rows={len(out)} "
          f"deduped={len(unique)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
