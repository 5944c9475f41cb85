"""The 15 problem types of the contest data (REFERENCE §2), in seed 000's table order."""

ENGLISH = "english"
ADD = "add"
SUBTRACT = "subtract"
MULTIPLY = "multiply"
DIVIDE = "divide"
SQRT = "sqrt"
POWER = "power"
EQUATION = "equation"
DISCOUNT = "discount"
MEAN = "mean"
MASS = "mass"
AREA = "area"
SALES = "sales"
SIMPLIFY = "simplify"
FUNCTION = "function"
OTHER = "other"  # matched no rule

CONTEST_TYPES = (ENGLISH, ADD, SUBTRACT, MULTIPLY, DIVIDE, SQRT, POWER, EQUATION, DISCOUNT,
                 MEAN, MASS, AREA, SALES, SIMPLIFY, FUNCTION)

# Seed 000's type counts after dedupe of the 809,993-row train.json (548,942 rows).
CONTEST_COUNTS_AFTER_DEDUPE = {
    ENGLISH: 9993, ADD: 90113, SUBTRACT: 89366, MULTIPLY: 89902, DIVIDE: 89966, SQRT: 39227,
    POWER: 39207, EQUATION: 40080, DISCOUNT: 6275, MEAN: 19709, MASS: 100, AREA: 8665,
    SALES: 6266, SIMPLIFY: 45, FUNCTION: 20028,
}
CONTEST_ROWS = 809993

# Seed 000's per-type quotas (97,450 rows; mass and simplify upsampled 10x).
SEED000_QUOTAS = {
    ENGLISH: 6000, ADD: 6000, SUBTRACT: 6000, MULTIPLY: 6000, DIVIDE: 6000, SQRT: 6000,
    POWER: 6000, EQUATION: 12000, DISCOUNT: 6000, MEAN: 12000, MASS: 1000, AREA: 6000,
    SALES: 6000, SIMPLIFY: 450, FUNCTION: 12000,
}

# MMLU/CMMLU rows (seed 002): the contest's rules do not apply to them.
CHOICE = "choice"
